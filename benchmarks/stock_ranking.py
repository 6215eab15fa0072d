"""Stock ranking shown: for three scene prompts, the queries pexels:video makes and the top three candidates.

A loopback server speaks Pexels' /videos/search JSON over a small catalogue of plausible results
(page slugs, orientations, lengths and renditions as Pexels lists them) and answers a query with
every clip sharing a word with it, in catalogue order, as a keyword search would; every rendition
link serves one real 8 s clip (longer than the 5 s scene: one clip is chosen, no join). The real
provider runs (search, rank, download); what it decided
is the note it puts on the attempt.

Run: .venv/bin/python benchmarks/stock_ranking.py [--aspect 16:9|9:16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import parse_qs

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings  # noqa: E402
from core.providers.base import CallContext, VideoSpec  # noqa: E402
from core.providers.stock.pexels import PexelsVideoProvider  # noqa: E402
from tests.vendors import stock_mock as sm  # noqa: E402
from tests.vendors.loopback import Request, json_reply, loopback_server  # noqa: E402

PROMPTS = [
    "A golden retriever running on a beach at sunset",
    "Aerial drone shot of a busy city street at night, cinematic 4k",
    "Close-up of coffee being poured into a white cup",
]
# (id, page slug, seconds, renditions as (width, height, quality)): what a keyword search would turn up.
CATALOGUE = [
    (1001, "golden-retriever-dog-playing-in-a-park", 14, [(1920, 1080, "hd"), (960, 540, "sd")]),
    (1002, "dog-running-on-the-beach-at-sunset", 9, [(3840, 2160, "uhd"), (1920, 1080, "hd"), (640, 360, "sd")]),
    (1003, "golden-retriever-running-on-a-sandy-beach", 6, [(1080, 1920, "hd"), (540, 960, "sd")]),
    (1004, "sunset-over-the-sea-beach-waves", 20, [(1920, 1080, "hd")]),
    (1005, "golden-retriever-puppy-close-up", 4, [(1280, 720, "hd")]),
    (1006, "golden-retriever-running-beach-slow-motion", 3, [(1280, 720, "hd"), (640, 360, "sd")]),
    (2001, "busy-city-street-at-night-with-traffic", 15, [(3840, 2160, "uhd"), (1920, 1080, "hd")]),
    (2002, "aerial-view-of-a-city-at-night", 12, [(1920, 1080, "hd")]),
    (2003, "people-walking-on-a-busy-street", 10, [(1080, 1920, "hd")]),
    (2004, "city-street-timelapse-night-lights", 8, [(1280, 720, "hd")]),
    (2005, "empty-street-in-a-small-town", 11, [(1920, 1080, "hd")]),
    (3001, "pouring-coffee-into-a-white-cup", 7, [(1920, 1080, "hd"), (1280, 720, "hd")]),
    (3002, "barista-making-coffee-in-a-cafe", 18, [(1920, 1080, "hd")]),
    (3003, "coffee-beans-falling-close-up", 5, [(3840, 2160, "uhd")]),
    (3004, "white-cup-of-tea-on-a-table", 9, [(1920, 1080, "hd")]),
    (3005, "coffee-being-poured-vertical", 6, [(1080, 1920, "hd")]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aspect", choices=("16:9", "9:16"), default="16:9")
    args = parser.parse_args()
    width, height = (1920, 1080) if args.aspect == "16:9" else (1080, 1920)
    with tempfile.TemporaryDirectory() as tmp, loopback_server() as server:
        clip = sm.serve_file(server, "clip.mp4", sm.make_clip(Path(tmp) / "clip.mp4", 160, 90, 8))

        def search(req: Request) -> object:
            words = set(parse_qs(req.query)["query"][0].split())
            hits = [sm.pexels_video(vid, slug, secs, [(w, h, clip, q) for w, h, q in files])
                    for vid, slug, secs, files in CATALOGUE if words & set(slug.split("-"))]
            return json_reply(sm.pexels_search(hits))

        server.route("GET", "/videos/search", sticky=search)
        settings = Settings.from_env({"YTAP_HOME": tmp, "PEXELS_API_KEY": "benchmark", "PEXELS_BASE_URL": server.url})
        provider = PexelsVideoProvider(settings)
        for n, prompt in enumerate(PROMPTS, 1):
            spec = VideoSpec(prompt=prompt, scene_index=n, duration_s=5.0, width=width, height=height,
                             aspect_ratio=args.aspect)
            out = Path(tmp) / f"raw{n}.mp4"
            ctx = CallContext(settings=settings, cancel=threading.Event())
            result = anyio.run(lambda: provider.generate_video(spec, out, ctx))  # noqa: B023 - run at once
            note = result.note or ""
            queries, rest = note.split("; top: ", 1)
            top, chose = rest.split("; chose ", 1)
            print(f"\n{prompt!r} ({args.aspect} {width}x{height}, 5 s)")
            print(f"  {queries}")
            for line in top.split("; "):
                print(f"  {line}")
            print(f"  chose {chose}")
            for clip_path in result.footage.clips if result.footage else []:
                clip_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
