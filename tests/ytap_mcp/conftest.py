from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.config import Settings
from core.errors import Unavailable
from core.providers.resilience import RetryPolicy
from core.providers.testing import ScriptedProvider
from core.runtime import Runtime
from ytap_mcp.server import YtapServer, build_server


@pytest.fixture
def failing_video() -> ScriptedProvider:
    return ScriptedProvider("test:down", "video", [Unavailable("HTTP 503 from vendor")] * 5)


@pytest.fixture
def server(settings: Settings, failing_video: ScriptedProvider) -> Iterator[YtapServer]:
    rt = Runtime.create(settings, extra_providers=[failing_video])
    rt.catalog.retry = RetryPolicy(attempts=1)  # retries have their own tests; keep these fast and exact
    srv = build_server(runtime=rt)
    yield srv
    rt.close()
