"""The demo once more with Debian 12's ffmpeg 5.1 on PATH (what `apt install ffmpeg` gives).

A distribution's older ffmpeg is the one most users already have; ytap must either work with
it or pass it over. .ci/run installs Debian's package when apt-get can; on a machine without
it this test is skipped (the demo with the bundled build runs in tests/ytap_mcp/test_stdio.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ytap_mcp.test_stdio import demo_and_check

SYSTEM_FFMPEG = Path("/usr/bin/ffmpeg")
# Where Debian's packages can be unpacked with `dpkg -x` without installing them system-wide
# (a machine whose PATH must keep its own ffmpeg); run through a wrapper that sets LD_LIBRARY_PATH.
UNPACKED_ROOT = Path("/opt/deb-ffmpeg")


def _version(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        out = subprocess.run([*argv, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30,
                             env=env).stdout
    except OSError:
        return ""
    return out.splitlines()[0] if out else ""


def _is_debian_51(first_line: str) -> bool:
    return first_line.startswith("ffmpeg version 5.1.") and "deb12" in first_line


def _debian_ffmpeg_dir(tmp_path: Path) -> Path | None:
    """A folder holding only an ``ffmpeg`` that is Debian 12's 5.1, or None."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if _is_debian_51(_version([str(SYSTEM_FFMPEG)])):
        (bin_dir / "ffmpeg").symlink_to(SYSTEM_FFMPEG)
        return bin_dir
    unpacked = UNPACKED_ROOT / "usr" / "bin" / "ffmpeg"
    libs = UNPACKED_ROOT / "usr" / "lib" / "x86_64-linux-gnu"
    if unpacked.exists() and _is_debian_51(_version([str(unpacked)], {"LD_LIBRARY_PATH": str(libs)})):
        wrapper = bin_dir / "ffmpeg"
        wrapper.write_text(f'#!/bin/sh\nLD_LIBRARY_PATH="{libs}" exec "{unpacked}" "$@"\n')
        wrapper.chmod(0o755)
        return bin_dir
    return None


def test_demo_with_debian_51_ffmpeg_on_path(tmp_path: Path) -> None:
    bin_dir = _debian_ffmpeg_dir(tmp_path)
    if bin_dir is None:
        pytest.skip(f"Debian 12's ffmpeg 5.1 is not here: neither {SYSTEM_FFMPEG} (.ci/run installs it with "
                    f"`apt-get install -y ffmpeg` when it can) nor unpacked under {UNPACKED_ROOT}")
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path)}
    doctor = subprocess.run([sys.executable, "-m", "ytap_mcp", "doctor"], capture_output=True, text=True, timeout=120,
                            env={**env, "YTAP_HOME": str(tmp_path / "home")}, cwd=str(tmp_path))
    ffmpeg_lines = [ln for ln in doctor.stdout.splitlines() if ln.strip().startswith("ffmpeg")]
    # Chosen because it has everything, not passed over for the bundled build.
    assert ffmpeg_lines and f"{bin_dir / 'ffmpeg'} (from PATH, version 5.1." in ffmpeg_lines[0], doctor.stdout
    assert "on PATH has every filter, option and encoder ytap uses" in ffmpeg_lines[1]
    demo_and_check(tmp_path, env)
