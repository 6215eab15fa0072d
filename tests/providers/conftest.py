"""Vendor adapters are tested against loopback servers speaking each vendor's wire format."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.vendors.loopback import LoopbackServer, loopback_server


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A loopback vendor (127.0.0.1, stopped after the test); this folder's ``server``, not the MCP server's."""
    with loopback_server() as s:
        yield s
