"""``pexels:video``: stock footage from Pexels (https://www.pexels.com/api/documentation/#videos-search).

``GET {PEXELS_BASE_URL}/videos/search?query=&orientation=&size=&per_page=`` with the key in the
``Authorization`` header answers ``{"page", "per_page", "total_results", "url", "videos": [...]}``;
each video has ``id``, ``width``, ``height``, ``url`` (its page, whose slug says what it shows),
``duration`` (whole seconds), ``user`` (``name``, ``url``) and ``video_files`` (renditions:
``quality``, ``file_type``, ``width``, ``height``, ``link``). 200 requests an hour by default.
The Pexels licence asks for no attribution but welcomes a visible credit, so one is recorded.
"""

from __future__ import annotations

from typing import Any, ClassVar

from core.errors import BadOutput
from core.providers.base import VideoSpec
from core.providers.stock import _http
from core.providers.stock.footage import StockVideoProvider
from core.providers.stock.ranking import Candidate, Rendition
from core.schemas import Credit

__all__ = ["PexelsVideoProvider", "SEARCH_PATH"]

SEARCH_PATH = "/videos/search"
LICENSE = "Pexels License"
LICENSE_URL = "https://www.pexels.com/license/"


class PexelsVideoProvider(StockVideoProvider):
    id: ClassVar[str] = "pexels:video"
    model: ClassVar[str | None] = "video"
    key_env: ClassVar[str | None] = "PEXELS_API_KEY"
    key_setting: ClassVar[str | None] = "pexels_api_key"
    base_setting: ClassVar[str] = "pexels_base_url"
    who: ClassVar[str] = "Pexels"
    rate: ClassVar[_http.RateWindow | None] = _http.RateWindow(200, 3600.0)
    per_page: ClassVar[int] = 15

    def client_options(self) -> dict[str, Any]:
        return {"headers": {"Authorization": self.key() or ""}}

    def search_request(self, query: str, spec: VideoSpec) -> tuple[str, dict[str, Any]]:
        return self.base_url + SEARCH_PATH, {
            "query": query,
            "orientation": "portrait" if spec.height > spec.width else "landscape",
            "size": "medium" if max(spec.width, spec.height) <= 1920 else "large",  # medium: Full HD or more
            "per_page": self.per_page,
        }

    def candidates(self, body: Any, query: str) -> list[Candidate]:
        videos = body.get("videos") if isinstance(body, dict) else None
        if not isinstance(videos, list):
            raise BadOutput("Pexels answered without a videos list")
        out = []
        for i, v in enumerate(videos):
            try:
                files = [Rendition(int(f["width"] or 0), int(f["height"] or 0), str(f["link"]), f.get("quality"))
                         for f in v.get("video_files") or []
                         if str(f.get("file_type", "video/mp4")).startswith("video/")]
                user = v.get("user") or {}
                page = str(v["url"])
                out.append(Candidate(
                    source_id=f"pexels:{int(v['id'])}", page_url=page, duration_s=float(v.get("duration") or 0),
                    renditions=files, words=" ".join([_slug_words(page), " ".join(map(str, v.get("tags") or []))]),
                    author=user.get("name"), author_url=user.get("url"), license=LICENSE, license_url=LICENSE_URL,
                    query=query, position=i))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise BadOutput(f"Pexels answered with a video of the wrong shape ({type(exc).__name__}: {exc})"
                                ) from None
        return out

    def credit(self, c: Candidate) -> Credit:
        by = f" by {c.author}" if c.author else ""
        return Credit(text=f"Video{by} from Pexels: {c.page_url}", required=False, license=c.license,
                      license_url=c.license_url, author=c.author, source_url=c.page_url, source_id=c.source_id)


def _slug_words(page_url: str) -> str:
    """``https://www.pexels.com/video/dog-running-on-a-beach-856107/`` -> ``dog running on a beach``."""
    slug = page_url.rstrip("/").rsplit("/", 1)[-1]
    return " ".join(w for w in slug.split("-") if not w.isdigit())
