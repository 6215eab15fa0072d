"""The search store's tests (tests/core/test_search_store.py) again with the registry on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.core import test_search_store
from tests.scaleout.adopt import adopt

pytestmark = pytest.mark.usefixtures("postgres_registry")

adopt(test_search_store, globals(), skip={})
