"""A contact sheet of six stills-in-motion scenes of one video: run by hand, then look at it.

    python benchmarks/motion_contact_sheet.py [--out motion_sheet.png] [--duration 4] [--aspect 16:9]

Six ``generate_scene`` calls through the MCP client (in memory) against a loopback server speaking
the AUTOMATIC1111 API (tests/vendors/sd_mock.py) that paints a different landscape for every
request (tests/vendors/stills.py), so each scene is ``motion:sd:default``. One row per scene: its
first, middle and last frame, labelled outside the frames (the label is the sheet's, not the clip's).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio  # noqa: E402

from core.config import Settings  # noqa: E402
from core.media.ffmpeg import run_ffmpeg  # noqa: E402
from core.media.probe import probe  # noqa: E402
from core.runtime import Runtime  # noqa: E402
from tests.vendors import sd_mock as sm  # noqa: E402
from tests.vendors.loopback import json_reply, loopback_server  # noqa: E402
from tests.vendors.stills import scenic_png  # noqa: E402

PROMPTS = ("a lighthouse on a cliff at dawn", "pine forest in morning mist", "desert canyon at dusk",
           "alpine lake under a full moon", "rolling hills after rain", "a coastal town at sunset")


async def _scenes(rt: Runtime, duration: float, aspect: str) -> list[dict]:
    from mcp import Client

    from ytap_mcp.server import build_server

    out = []
    async with Client(build_server(runtime=rt)) as client:
        for i, prompt in enumerate(PROMPTS, 1):
            env = (await client.call_tool("generate_scene", {"video_id": "sheet", "scene_index": i, "prompt": prompt,
                                                             "duration_s": duration, "aspect_ratio": aspect,
                                                             "wait_seconds": 45})).structured_content
            while env["status"] in ("queued", "running"):
                env = (await client.call_tool("job_status", {"job_id": env["job_id"], "wait_seconds": 45})
                       ).structured_content
            assert env["status"] == "succeeded", env
            out.append(env["result"])
    return out


def _frame(clip: Path, index: int, png: Path) -> None:
    run_ffmpeg(["-i", str(clip), "-vf", f"select=eq(n\\,{index})", "-frames:v", "1", str(png)], what="a frame")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("motion_sheet.png"))
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--aspect", default="16:9", choices=("16:9", "9:16"))
    args = ap.parse_args()
    from PIL import Image, ImageDraw

    with tempfile.TemporaryDirectory(prefix="ytap-sheet-") as tmp, loopback_server() as sd:
        seeds = iter(range(100))
        size = (1344, 768) if args.aspect == "16:9" else (768, 1344)
        sd.route("POST", sm.TXT2IMG, sticky=lambda req: sm.txt2img_reply(scenic_png(next(seeds), *size)))
        sd.route("POST", sm.INTERRUPT, sticky=json_reply({}))
        rt = Runtime.create(Settings.from_env({"YTAP_HOME": tmp, "YTAP_SD_BASE_URL": sd.url}))
        try:
            scenes = anyio.run(_scenes, rt, args.duration, args.aspect)
        finally:
            rt.close()
        tile_w = 480 if args.aspect == "16:9" else 270
        tile_h = tile_w * 9 // 16 if args.aspect == "16:9" else tile_w * 16 // 9
        label_w, pad = 300, 6
        sheet = Image.new("RGB", (label_w + 3 * (tile_w + pad), len(scenes) * (tile_h + pad)), "white")
        draw = ImageDraw.Draw(sheet)
        for row, scene in enumerate(scenes):
            clip = Path(scene["path"])
            frames = probe(clip, count_frames=True).video.frames
            y = row * (tile_h + pad)
            draw.text((6, y + 6), f"scene {scene['scene_index']}\n{scene['provider']}\n{scene['model']}\n"
                                  f"{frames} frames, ${scene['cost_usd']}", fill="black")
            for col, index in enumerate((0, frames // 2, frames - 1)):
                png = Path(tmp) / f"{row}-{col}.png"
                _frame(clip, index, png)
                with Image.open(png) as im:
                    sheet.paste(im.convert("RGB").resize((tile_w, tile_h)), (label_w + col * (tile_w + pad), y))
            print(f"scene {scene['scene_index']}: {scene['provider']} {scene['model']} {scene['width']}x"
                  f"{scene['height']} {scene['fps']} fps {scene['duration_s']} s, ${scene['cost_usd']}")
        sheet.save(args.out)
    print(f"contact sheet: {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
