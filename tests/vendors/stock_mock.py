"""The stock APIs' answers, in their documented JSON shapes, and real clips for a loopback server to serve.

- Pexels ``GET /videos/search`` (https://www.pexels.com/api/documentation/#videos-search):
  ``{"page", "per_page", "total_results", "url", "videos": [{"id", "width", "height", "url",
  "image", "duration", "user": {"id", "name", "url"}, "video_files": [{"id", "quality",
  "file_type", "width", "height", "fps", "link"}], "video_pictures": [...]}]}``.
- Pixabay ``GET /api/videos/?key=…`` (https://pixabay.com/api/docs/#api_search_videos):
  ``{"total", "totalHits", "hits": [{"id", "pageURL", "type", "tags", "duration", "videos":
  {"large"|"medium"|"small"|"tiny": {"url", "width", "height", "size", "thumbnail"}}, "views",
  "downloads", "likes", "comments", "user_id", "user", "userImageURL"}]}``.
- Wikimedia Commons ``GET /w/api.php?action=query&generator=search&prop=imageinfo&formatversion=2``:
  ``{"batchcomplete": true, "query": {"pages": [{"pageid", "ns": 6, "title", "index",
  "imageinfo": [{"size", "width", "height", "duration", "url", "descriptionurl", "mime",
  "mediatype", "extmetadata": {"LicenseShortName": {"value", "source", "hidden"}, ...}}]}]}}``.

Clips are real MP4/WebM files made by ffmpeg (a test pattern with a coloured box, so a frame
shows which clip a scene was cut from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.media.ffmpeg import run_ffmpeg
from tests.vendors.loopback import LoopbackServer, Reply

__all__ = ["make_clip", "serve_file", "pexels_video", "pexels_search", "pixabay_hit", "pixabay_search",
           "commons_page", "commons_search"]


def make_clip(path: Path, width: int, height: int, seconds: float, colour: str = "red", *, webm: bool = False) -> bytes:
    """A real clip (test pattern, ``colour`` box in the middle, a tone), its bytes."""
    codec = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"] if webm else \
        ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart"]
    audio = ["-c:a", "libopus"] if webm else ["-c:a", "aac"]
    box = min(width, height) // 3
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r=25:d={seconds},"
                f"drawbox=x=(iw-{box})/2:y=(ih-{box})/2:w={box}:h={box}:c={colour}:t=fill",
                "-f", "lavfi", "-i", f"sine=f=440:r=48000:d={seconds}", "-threads", "2", *codec, *audio,
                "-shortest", str(path)], what="making a stock test clip")
    return path.read_bytes()


def serve_file(server: LoopbackServer, name: str, data: bytes, *, mime: str = "video/mp4", **reply: Any) -> str:
    """Serve ``data`` at /media/<name> (every time); its URL."""
    server.route("GET", f"/media/{name}", sticky=Reply(body=data, headers={"content-type": mime}, **reply))
    return f"{server.url}/media/{name}"


def pexels_video(vid: int, slug: str, duration: int, files: list[tuple[int, int, str, str]], *,
                 user: str = "Jane Doe", tags: list[str] | None = None) -> dict[str, Any]:
    """``files``: (width, height, link, quality) per rendition."""
    w, h = max(((f[0], f[1]) for f in files), key=lambda s: s[0] * s[1])
    return {
        "id": vid, "width": w, "height": h, "url": f"https://www.pexels.com/video/{slug}-{vid}/",
        "image": f"https://images.pexels.com/videos/{vid}/free-video-{vid}.jpg", "full_res": None,
        "tags": tags or [], "duration": duration,
        "user": {"id": 1000 + vid, "name": user, "url": f"https://www.pexels.com/@{user.lower().replace(' ', '-')}"},
        "video_files": [{"id": vid * 10 + i, "quality": q, "file_type": "video/mp4", "width": fw, "height": fh,
                         "fps": 25, "link": link, "size": 1000}
                        for i, (fw, fh, link, q) in enumerate(files)],
        "video_pictures": [{"id": vid, "nr": 0, "picture": f"https://images.pexels.com/videos/{vid}/pictures/0.jpg"}],
    }


def pexels_search(videos: list[dict[str, Any]], query: str = "q") -> dict[str, Any]:
    return {"page": 1, "per_page": 15, "total_results": len(videos), "videos": videos,
            "url": f"https://www.pexels.com/search/videos/{query}/"}


def pixabay_hit(hid: int, tags: str, duration: int, sizes: dict[str, tuple[int, int, str]], *,
                user: str = "Coverr-Free-Footage") -> dict[str, Any]:
    """``sizes``: {"large"|"medium"|"small"|"tiny": (width, height, url)}; a missing size is sent empty."""
    videos = {s: {"url": "", "width": 0, "height": 0, "size": 0, "thumbnail": ""}
              for s in ("large", "medium", "small", "tiny")}
    for s, (w, h, url) in sizes.items():
        videos[s] = {"url": url, "width": w, "height": h, "size": 100000, "thumbnail": url + ".jpg"}
    return {"id": hid, "pageURL": f"https://pixabay.com/videos/{tags.split(',')[0].strip()}-{hid}/", "type": "film",
            "tags": tags, "duration": duration, "videos": videos, "views": 1, "downloads": 1, "likes": 1,
            "comments": 0, "user_id": 1281706, "user": user, "userImageURL": ""}


def pixabay_search(hits: list[dict[str, Any]]) -> dict[str, Any]:
    return {"total": len(hits), "totalHits": len(hits), "hits": hits}


def commons_page(pageid: int, name: str, width: int, height: int, duration: float, url: str, *,
                 licence: str = "CC BY 4.0", artist: str = '<a href="//commons.wikimedia.org/wiki/User:Ann">Ann</a>',
                 licence_url: str | None = "https://creativecommons.org/licenses/by/4.0", mime: str = "video/webm",
                 description: str = "") -> dict[str, Any]:
    meta = {"LicenseShortName": {"value": licence, "source": "commons-desc-page", "hidden": ""},
            "Artist": {"value": artist, "source": "commons-desc-page"},
            "ObjectName": {"value": name.rsplit(".", 1)[0].replace("_", " "), "source": "mediawiki-metadata"},
            "ImageDescription": {"value": description, "source": "commons-desc-page"}}
    if licence_url:
        meta["LicenseUrl"] = {"value": licence_url, "source": "commons-desc-page", "hidden": ""}
    return {"pageid": pageid, "ns": 6, "title": f"File:{name}", "index": pageid % 100,
            "imageinfo": [{"size": 123456, "width": width, "height": height, "duration": duration, "url": url,
                           "descriptionurl": f"https://commons.wikimedia.org/wiki/File:{name}",
                           "descriptionshorturl": f"https://commons.wikimedia.org/w/index.php?curid={pageid}",
                           "mime": mime, "mediatype": "VIDEO", "extmetadata": meta}]}


def commons_search(pages: list[dict[str, Any]]) -> dict[str, Any]:
    if not pages:  # the API leaves "query" out when the search finds nothing
        return {"batchcomplete": True}
    return {"batchcomplete": True, "continue": {"gsroffset": len(pages), "continue": "gsroffset||"},
            "query": {"pages": pages}}
