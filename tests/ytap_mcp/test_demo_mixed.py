"""``ytap-mcp demo --providers``: the second demo mode, a mixed video (issue 14).

The demo runs as a user runs it (a subprocess, the server over stdio through the official
client), with a loopback AUTOMATIC1111 server as the picture source: scenes 1 and 3 are
stills in motion (``motion:sd:default``), scene 2 a title card. The clips are probed and
measured, not taken from the demo's word.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.media.motion import measure_smoothness
from core.media.probe import probe
from tests.vendors import sd_mock as sm
from tests.vendors.loopback import json_reply, loopback_server
from tests.vendors.stills import scenic_png
from ytap_mcp.demo import scene_seconds


@pytest.mark.slow  # a whole 15 s 1080p demo: about 30 s
def test_demo_with_providers_per_scene_makes_a_mixed_video(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "bin").mkdir()
    with loopback_server() as sd:
        seeds = iter(range(100))
        sd.route("POST", sm.TXT2IMG, sticky=lambda req: sm.txt2img_reply(scenic_png(next(seeds), 1344, 768)))
        sd.route("POST", sm.INTERRUPT, sticky=json_reply({}))
        proc = subprocess.run(
            [sys.executable, "-m", "ytap_mcp", "demo", "--home", str(home),
             "--providers", "motion:sd:default, local:placeholder"],
            capture_output=True, text=True, timeout=600, cwd=str(tmp_path),
            env={"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path), "YTAP_SD_BASE_URL": sd.url})
        stills = [r.json()["prompt"] for r in sd.calls("POST", sm.TXT2IMG)]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "scene 1: done by motion:sd:default" in proc.stdout and "scene 2: done by local:placeholder" in proc.stdout
    assert "scene 3: done by motion:sd:default" in proc.stdout
    assert [p.split(",")[0] for p in stills[:2]] == ["A lighthouse on a rocky coast at dawn",
                                                     "A ship at night following a sweeping beam of light across a stormy sea"]

    video = home / "workspaces" / "default" / "videos" / "ytap-demo"
    manifest = json.loads((video / "manifest.json").read_text())
    by_scene = {a["scene_index"]: a for a in manifest["assets"] if a["kind"] == "scene"}
    assert {i: a["provider"] for i, a in by_scene.items()} == {1: "motion:sd:default", 2: "local:placeholder",
                                                              3: "motion:sd:default"}
    # each scene as long as its sentence (the narration made first), to the frame
    narration = next(a for a in manifest["assets"] if a["kind"] == "narration")
    want = scene_seconds({"duration_s": narration["properties"]["duration_s"],
                          "segments": narration["properties"]["segments"]})
    frames = 0
    for i in (1, 2, 3):
        clip = probe(video / "scenes" / f"scene_{i:03d}.mp4", count_frames=True).video
        assert clip is not None and (clip.width, clip.height, clip.fps) == (1920, 1080, 30.0)
        assert clip.frames == round(want[i - 1] * 30), (i, clip.frames, want)
        frames += clip.frames
    moving = measure_smoothness(video / "scenes" / "scene_001.mp4")
    assert moving.smooth, moving.summary()
    final = probe(video / "final_video.mp4", count_frames=True).video
    assert final is not None and (final.width, final.height) == (1920, 1080) and final.frames >= frames
