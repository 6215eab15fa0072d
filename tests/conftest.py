from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import config
from core.config import Settings
from core.errors import Unavailable
from core.providers.resilience import RetryPolicy
from core.providers.testing import ScriptedProvider
from core.runtime import Runtime
from ytap_mcp.server import YtapServer, build_server


@pytest.fixture(autouse=True)
def _no_real_commons(monkeypatch: pytest.MonkeyPatch) -> None:
    """commons:video needs no key, so every default video chain asks it: never the real one from a test
    (``.invalid`` never resolves: the attempt fails at once, as offline)."""
    monkeypatch.setattr(config, "DEFAULT_COMMONS_BASE_URL", "http://commons.invalid")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a private YTAP_HOME and no keys, whatever the developer's environment holds."""
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home")})


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.create(settings)
    yield rt
    rt.close()


@pytest.fixture
def no_vendor_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No vendor key or base URL from the developer's environment (SDKs read some themselves), and
    loopback never through a proxy: for tests whose vendors are loopback servers."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ELEVENLABS_", "GOOGLE_", "GEMINI_", "YTAP_SD_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def failing_video() -> ScriptedProvider:
    return ScriptedProvider("test:down", "video", [Unavailable("HTTP 503 from vendor")] * 5)


@pytest.fixture
def server(settings: Settings, failing_video: ScriptedProvider) -> Iterator[YtapServer]:
    """The MCP server over ``settings`` (a module may override that fixture), plus the failing ``test:down``."""
    rt = Runtime.create(settings, extra_providers=[failing_video])
    rt.catalog.retry = RetryPolicy(attempts=1)  # retries have their own tests; keep these fast and exact
    srv = build_server(runtime=rt)
    yield srv
    rt.close()
