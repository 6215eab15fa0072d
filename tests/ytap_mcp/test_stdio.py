"""The server as MCP clients really launch it: a subprocess speaking MCP on stdio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from core.media.probe import is_faststart, probe
from tests.mcp_helpers import CONTRACT_TOOLS

REPO = Path(__file__).resolve().parents[2]


def test_stdio_python_m_ytap_mcp_lists_tools_with_schemas(tmp_path: Path) -> None:
    errlog = (tmp_path / "server.err").open("w")
    params = StdioServerParameters(command=sys.executable, args=["-m", "ytap_mcp"],
                                   env={"YTAP_HOME": str(tmp_path / "home")}, cwd=str(tmp_path))

    async def main() -> list:
        async with Client(params, mode="legacy") as client:
            tools = (await client.list_tools()).tools
            report = await client.call_tool("provider_report", {})
            assert not report.is_error
            return tools

    import mcp.client.stdio as stdio_mod

    original = stdio_mod.stdio_client

    def with_errlog(server, errlog_=errlog):  # keep the server's stderr out of the test output
        return original(server, errlog=errlog_)

    stdio_mod.stdio_client = with_errlog
    try:
        tools = anyio.run(main)
    finally:
        stdio_mod.stdio_client = original
        errlog.close()
    assert {t.name for t in tools} == CONTRACT_TOOLS
    assert all(t.input_schema["type"] == "object" and t.output_schema for t in tools)


def test_stdio_stdout_carries_only_protocol(tmp_path: Path) -> None:
    """An initialize over a raw pipe: every stdout line must be JSON-RPC, logs go to stderr."""
    init = (
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "ytap_mcp"],
        input=init,
        capture_output=True,
        text=True,
        timeout=60,
        env={"YTAP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "YTAP_LOG_LEVEL": "DEBUG"},
        cwd=str(REPO),
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert lines, proc.stderr[-2000:]
    assert all(ln.startswith('{"jsonrpc":"2.0"') or ln.startswith('{"id"') or ln.startswith("{") for ln in lines)
    assert '"serverInfo"' in lines[0] and '"ytap"' in lines[0]


@pytest.mark.slow
def test_stdio_demo_makes_a_youtube_ready_video(tmp_path: Path) -> None:
    # No keys, and no ffmpeg on PATH: the build imageio-ffmpeg ships (tests/test_ffmpeg_builds.py: a system one).
    (tmp_path / "bin").mkdir()
    demo_and_check(tmp_path, {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)})


def demo_and_check(tmp_path: Path, env: dict[str, str]) -> None:
    """``ytap-mcp demo`` with ``env`` exits 0 and leaves a YouTube-ready video, thumbnail and report."""
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-m", "ytap_mcp", "demo", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Provider report" in proc.stdout
    video = home / "workspaces" / "default" / "videos" / "ytap-demo"
    info = probe(video / "final_video.mp4", count_frames=True)
    assert info.video and info.audio
    assert (info.video.codec, info.video.profile, info.video.pix_fmt) == ("h264", "High", "yuv420p")
    assert (info.video.width, info.video.height, info.video.fps) == (1920, 1080, 30.0)
    scenes = sorted((video / "scenes").glob("scene_*.mp4"))
    assert len(scenes) == 3
    total = sum(probe(s).duration_s for s in scenes)
    narration = probe(video / "audio" / "narration.wav").duration_s
    expected = max(total, narration)  # the last frame holds while narration runs on
    assert abs(info.video.frames / 30 - total) <= 1 / 30 or info.video.frames / 30 >= narration
    assert abs(info.video.duration_s - info.audio.duration_s) <= 1 / 30 + 0.025
    assert info.video.duration_s >= expected - 1 / 30
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 48000, 2)
    assert is_faststart(video / "final_video.mp4")
    from PIL import Image

    with Image.open(video / "thumbnail.jpg") as im:
        assert (im.format, im.size) == ("JPEG", (1280, 720))
    assert (video / "thumbnail.jpg").stat().st_size < 2 * 1024 * 1024


def test_demo_scenes_last_as_long_as_their_sentences() -> None:
    from ytap_mcp.demo import scene_seconds

    narration = {"duration_s": 14.2, "segments": [{"start_s": 0.12, "end_s": 4.1}, {"start_s": 4.5, "end_s": 9.0},
                                                  {"start_s": 9.3, "end_s": 13.9}]}
    assert scene_seconds(narration) == [4.5, 4.8, 4.9]  # a pause stays on the scene before; the last to the end
    assert scene_seconds({"duration_s": 5.0, "segments": [{"start_s": 0.0}, {"start_s": 0.4}]}) == [1.0, 4.6]
