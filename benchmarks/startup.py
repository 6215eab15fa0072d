"""Start-up: spawn `python -m ytap_mcp` (stdio) -> `initialize` answered. Median of N runs.

Target (BENCHMARKS.md): < 1 s median of 10. Also reports the import time of the MCP SDK
alone in the same run, the floor no server built on it can go below.
Run: .venv/bin/python benchmarks/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

INIT = ('{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}\n')


def spawn_to_initialize(home: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ytap_mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={"YTAP_HOME": home, "PATH": "/usr/bin:/bin"})
    assert proc.stdin and proc.stdout
    proc.stdin.write(INIT)
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    proc.kill()
    proc.wait()
    assert '"serverInfo"' in line, line
    return elapsed


def import_only(module: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        spawn_to_initialize(home)  # warm the OS file cache and the registry file
        ours, sdk, bare = [], [], []
        for _ in range(args.runs):  # interleaved so load changes hit all three alike
            ours.append(spawn_to_initialize(home))
            sdk.append(import_only("mcp.server.mcpserver"))
            bare.append(import_only("sys"))
    print(f"spawn -> initialize answered: median {statistics.median(ours) * 1000:.0f} ms "
          f"(min {min(ours) * 1000:.0f}, max {max(ours) * 1000:.0f}) over {args.runs} runs (target < 1000 ms)")
    print(f"python -c 'import mcp.server.mcpserver': median {statistics.median(sdk) * 1000:.0f} ms; "
          f"bare interpreter: median {statistics.median(bare) * 1000:.0f} ms")
    print("vendor SDKs imported at start-up: none (checked by tests/test_startup.py)")


if __name__ == "__main__":
    main()
