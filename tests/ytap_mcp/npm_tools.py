"""Shared by test_inspector.py and test_conformance.py: the official npm tools, pinned and cached,
and a ytap-mcp HTTP server subprocess on a free loopback port.

``npm_tools()`` installs, once, into a cache outside the repository
(``$YTAP_TEST_NPM_CACHE``, else ``$XDG_CACHE_HOME/ytap-mcp-tests/npm``, else
``~/.cache/ytap-mcp-tests/npm``), in a folder named by a hash of the pins:

- ``@modelcontextprotocol/inspector`` (the Inspector CLI is ``inspector --cli``),
- ``@modelcontextprotocol/conformance`` (``conformance server --url ...``),
- ``node-<os>-<cpu>@22`` from npm when the ``node`` on PATH is older than 22.19.0: the inspector's
  ``engines`` ask for ``>=22.19.0`` and the conformance suite's dependencies for ``>=22``, while CI
  has Node 20.

Every later call finds the stamp file and runs nothing. ``--ignore-scripts``: the only install
script in the tree is the inspector's ``postinstall``, a no-op when it is installed as a dependency.
The tests are skipped only when ``node`` or ``npm`` is absent; an install that fails is a failure.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
CONFORMANCE = "@modelcontextprotocol/conformance@0.2.0-alpha.12"
NODE_MAJOR = "22"
MIN_NODE = (22, 19, 0)  # @modelcontextprotocol/inspector@2.12.0: "engines": {"node": ">=22.19.0"}
INSTALL_TIMEOUT_S = 480
_STAMP = ".ytap-installed.json"


@dataclass(frozen=True)
class NpmTools:
    node: Path  # a Node >= 22.19 (the system one if recent enough, else node-<os>-<cpu>@22 from npm)
    inspector: Path  # the inspector's launcher script (its `inspector` bin)
    conformance: Path  # the conformance suite's CLI script (its `conformance` bin)
    prefix: Path

    def inspector_cli(self, *args: str) -> list[str]:
        return [str(self.node), str(self.inspector), "--cli", *args]

    def conformance_cli(self, *args: str) -> list[str]:
        return [str(self.node), str(self.conformance), *args]

    def env(self, home: Path) -> dict[str, str]:
        """A clean environment for the tools: no provider keys (so the server they spawn stays on the
        local tiers), a private HOME (the inspector keeps ~/.mcp-inspector there), this Node first on PATH."""
        home.mkdir(parents=True, exist_ok=True)
        path = os.pathsep.join([str(self.node.parent), os.environ.get("PATH", "/usr/bin:/bin")])
        return {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", "NO_COLOR": "1"}


def cache_root() -> Path:
    if os.environ.get("YTAP_TEST_NPM_CACHE"):
        return Path(os.environ["YTAP_TEST_NPM_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ytap-mcp-tests" / "npm"


def _node_version(node: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"v(\d+)\.(\d+)\.(\d+)", out.strip())
    return tuple(int(x) for x in m.groups()) if m else None


def _node_package() -> str:
    oses = {"Linux": "linux", "Darwin": "darwin"}
    cpus = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
    os_name, cpu = oses.get(platform.system()), cpus.get(platform.machine().lower())
    if not os_name or not cpu:
        pytest.skip(f"no Node >= {'.'.join(map(str, MIN_NODE))} on PATH and no node-<os>-<cpu> npm package "
                    f"for {platform.system()}/{platform.machine()}")
    return f"node-{os_name}-{cpu}"


@functools.cache
def npm_tools() -> NpmTools:
    """The pinned tools, installed on first use (idempotent, safe across concurrent test processes)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed for the MCP Inspector CLI and the conformance suite "
                    f"(node: {node or 'not found'}, npm: {npm or 'not found'})")
    specs = [INSPECTOR, CONFORMANCE]
    version = _node_version(node)
    node_pkg = None
    if version is None or version < MIN_NODE:
        node_pkg = _node_package()
        specs.append(f"{node_pkg}@{NODE_MAJOR}")
    key = hashlib.sha256(json.dumps(specs).encode()).hexdigest()[:12]
    root = cache_root()
    prefix = root / key
    modules = prefix / "node_modules"
    tools = NpmTools(
        node=(modules / node_pkg / "bin" / "node") if node_pkg else Path(node),
        inspector=modules / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js",
        conformance=modules / "@modelcontextprotocol" / "conformance" / "dist" / "index.js",
        prefix=prefix,
    )
    wanted = [tools.node, tools.inspector, tools.conformance]
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest process may be installing the same pins
        stamp = prefix / _STAMP
        if not (stamp.is_file() and json.loads(stamp.read_text()) == specs and all(p.is_file() for p in wanted)):
            prefix.mkdir(parents=True, exist_ok=True)
            cmd = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact",
                   "--loglevel=error", "--prefix", str(prefix), *specs]
            started = time.monotonic()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            missing = [str(p) for p in wanted if not p.is_file()]
            if proc.returncode != 0 or missing:
                pytest.fail(f"`{' '.join(cmd)}` failed (exit {proc.returncode}; missing {missing}):\n"
                            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}", pytrace=False)
            stamp.write_text(json.dumps(specs))
            print(f"installed {specs} into {prefix} in {time.monotonic() - started:.1f}s", file=sys.stderr)
    got = _node_version(str(tools.node))
    if got is None or got < MIN_NODE:
        pytest.fail(f"{tools.node} is Node {got}, the inspector needs >= {MIN_NODE}", pytrace=False)
    return tools


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def ytap_http_server(tmp_path: Path, transport: str = "streamable-http") -> Iterator[str]:
    """``python -m ytap_mcp serve`` on a free loopback port, no provider keys; yields the endpoint URL
    (``.../mcp`` or ``.../sse``) and stops the process (terminate, then kill) on the way out."""
    port = free_port()
    env = {"YTAP_HOME": str(tmp_path / "home"), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "YTAP_LOG_LEVEL": "WARNING"}
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ytap_mcp", "serve", "--transport", transport,
                                 "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert proc.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, "server did not listen within 30 s:\n" + log_path.read_text()
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}{'/mcp' if transport == 'streamable-http' else '/sse'}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
