"""The official MCP Inspector CLI (npm @modelcontextprotocol/inspector, pinned in npm_tools) against the server.

- ``tools/list --strict`` in both protocol eras over stdio (``--protocol-era legacy``: the
  ``initialize`` handshake; ``--protocol-era modern``: pinned to 2026-07-28, ``server/discover``),
  checking the era really negotiated with ``--method initialize``;
- a tool call (provider_report) over stdio in both eras;
- submit-then-poll over streamable HTTP: one CLI invocation starts generate_scene with
  ``wait_seconds=0``, later invocations (each a new process, so a new connection) poll job_status
  until the job has succeeded.

Each invocation is ``node <inspector> --cli ... --format json``: one JSON object
``{"result": ...}`` on stdout; ``--strict`` writes its schema-portability report on stderr and exits 6
on an error-severity problem.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.mcp_helpers import CONTRACT_TOOLS

from .npm_tools import NpmTools, npm_tools, ytap_http_server

MODERN = "2026-07-28"
ERAS = ["legacy", "modern"]

pytestmark = pytest.mark.slow  # each case launches the server and Node (5-12 s)


@pytest.fixture(scope="module")
def tools() -> NpmTools:
    return npm_tools()


def _inspector(tools: NpmTools, tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = tools.inspector_cli(*args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env=tools.env(tmp_path / "inspector-home"))
    print("$", " ".join(cmd[1:]), f"\n[exit {proc.returncode}]\n{proc.stdout[:1500]}\n{proc.stderr[-3000:]}")
    return proc


def _stdio_target(tmp_path: Path) -> list[str]:
    """Inspector arguments that launch the server on stdio with a private YTAP_HOME."""
    return ["-e", f"YTAP_HOME={tmp_path / 'home'}", "-e", "YTAP_LOG_LEVEL=WARNING", "--cwd", str(tmp_path),
            "--", sys.executable, "-m", "ytap_mcp"]


def _result(proc: subprocess.CompletedProcess) -> Any:
    assert proc.returncode == 0, f"inspector exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)["result"]


@pytest.mark.parametrize("era", ERAS)
def test_inspector_tools_list_strict_stdio(tools: NpmTools, tmp_path: Path, era: str) -> None:
    init = _result(_inspector(tools, tmp_path, "--method", "initialize", "--protocol-era", era, "--format", "json",
                              *_stdio_target(tmp_path)))
    assert init["serverInfo"]["name"] == "ytap"
    assert (init["protocolVersion"] == MODERN) == (era == "modern"), init["protocolVersion"]

    proc = _inspector(tools, tmp_path, "--method", "tools/list", "--strict", "--protocol-era", era, "--format", "json",
                      *_stdio_target(tmp_path))
    listed = _result(proc)["tools"]
    assert {t["name"] for t in listed} == CONTRACT_TOOLS and len(listed) == len(CONTRACT_TOOLS)
    assert all(t["inputSchema"]["type"] == "object" and t.get("outputSchema") for t in listed)
    # --strict exits 6 on any error-severity problem and prints a summary when it found anything at all;
    # a schema set with no problems prints nothing.
    report = proc.stderr.strip()
    assert report == "" or report.splitlines()[-1].startswith("0 errors, 0 warnings"), proc.stderr


@pytest.mark.parametrize("era", ERAS)
def test_inspector_tool_call_provider_report_stdio(tools: NpmTools, tmp_path: Path, era: str) -> None:
    result = _result(_inspector(tools, tmp_path, "--method", "tools/call", "--tool-name", "provider_report",
                                "--protocol-era", era, "--format", "json", *_stdio_target(tmp_path)))
    assert result.get("isError") is not True
    report = result["structuredContent"]
    assert report["totals"]["cost_usd"] == 0
    local = {p["id"] for p in report["providers"] if p["configured"]}
    assert {"local:placeholder", "local:espeak-ng", "local:pillow"} <= local
    assert json.loads(result["content"][0]["text"]) == report


@pytest.mark.parametrize("era", ERAS)
def test_inspector_submit_then_poll_over_http(tools: NpmTools, tmp_path: Path, era: str) -> None:
    with ytap_http_server(tmp_path) as url:
        common = ["--transport", "http", "--protocol-era", era, "--format", "json", "--method", "tools/call"]
        args = {"video_id": "inspector", "scene_index": 1, "prompt": "a lighthouse at dusk", "duration_s": 1,
                "wait_seconds": 0}
        submitted = _result(_inspector(tools, tmp_path, *common, "--tool-name", "generate_scene",
                                       "--tool-args-json", json.dumps(args), url))
        env = submitted["structuredContent"]
        # modern: the Inspector declares the tasks extension by default, so the call is answered with a task,
        # which it follows to the end itself (@modelcontextprotocol/ext-tasks): what it prints is the final envelope
        assert env["status"] in (("queued", "running") if era == "legacy" else ("succeeded",)), env
        job_id = env["job_id"]
        polls = 0
        while env["status"] in ("queued", "running"):
            polls += 1
            assert polls <= 6, env
            polled = _result(_inspector(tools, tmp_path, *common, "--tool-name", "job_status",
                                        "--tool-args-json", json.dumps({"job_id": job_id, "wait_seconds": 20}), url))
            env = polled["structuredContent"]
            assert env["job_id"] == job_id
    assert env["status"] == "succeeded", env
    assert env["result"]["provider"] == "local:placeholder" and env["result"]["duration_s"] == 1
    assert Path(env["result"]["path"]).is_file()
