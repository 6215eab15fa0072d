"""The product without its optional extras: `pip install -e '.[dev]'` alone, as the README's first command.

CI installs `[scale-test]` too (for tests/scaleout), so here the extras' packages are made
unimportable in a child process (``sys.modules[name] = None``, what Python does for a package that
is not there) and the whole tool path runs: the server's tools list and a narration job, which
locates ffmpeg and so imports every module of ``core`` to collect what ffmpeg must have.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]
EXTRAS = ("temporalio", "psycopg", "psycopg_pool", "kokoro_onnx", "onnxruntime", "sudachipy")

CHILD = """
import sys
for name in {extras!r}:
    sys.modules[name] = None
import json, anyio
from mcp import Client
from core.config import Settings
from core.media.ffmpeg import collected_needs
from core.runtime import Runtime
from ytap_mcp.server import build_server

async def main():
    rt = Runtime.create(Settings.from_env({{"YTAP_HOME": {home!r}}}))
    try:
        async with Client(build_server(runtime=rt)) as client:
            tools = (await client.list_tools()).tools
            env = (await client.call_tool("synthesize_narration", {{"video_id": "v", "text": "Hello there.",
                                                                   "wait_seconds": 40}})).structured_content
    finally:
        rt.close()
    return {{"tools": len(tools), "status": env["status"], "error": env.get("error"),
             "needs": sorted(collected_needs())}}

print(json.dumps(anyio.run(main)))
"""


def test_the_tools_work_without_the_optional_extras(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD.format(extras=EXTRAS, home=str(tmp_path / "home"))],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "succeeded", out["error"]
    assert out["tools"] >= 13
    assert "core.media.assembly" in " ".join(out["needs"]) or len(out["needs"]) >= 5
    assert not any(n.startswith("core.scaleout") for n in out["needs"])
