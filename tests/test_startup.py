"""Start-up stays light: building the server imports no vendor SDK (each costs about a second)."""

from __future__ import annotations

import subprocess
import sys


def test_startup_builds_the_server_without_importing_vendor_sdks(tmp_path) -> None:
    code = (
        "import sys\n"
        "from core.config import Settings\n"
        "from ytap_mcp.server import build_server\n"
        f"srv = build_server(Settings.from_env({{'YTAP_HOME': {str(tmp_path)!r}}}))\n"
        "srv.runtime.close()\n"
        "print(sorted(m for m in ('openai', 'elevenlabs', 'google.genai', 'av', 'replicate') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout
