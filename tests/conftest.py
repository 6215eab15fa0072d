from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import Settings
from core.runtime import Runtime


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a private YTAP_HOME and no keys, whatever the developer's environment holds."""
    return Settings.from_env({"YTAP_HOME": str(tmp_path / "home")})


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.create(settings)
    yield rt
    rt.close()
