"""The registry's search store: a stock provider's answer to one query, kept 24 hours, then asked again."""

from __future__ import annotations

from core.assets.search_store import SEARCH_TTL_S
from core.runtime import Runtime


def test_search_store_keeps_an_answer_for_a_day(runtime: Runtime) -> None:
    store = runtime.registry.searches
    assert SEARCH_TTL_S == 24 * 3600
    assert store.get("pixabay:video q=dog") is None
    store.put("pixabay:video q=dog", {"hits": [{"id": 1, "tags": "dog, beach"}]})
    assert store.get("pixabay:video q=dog") == {"hits": [{"id": 1, "tags": "dog, beach"}]}
    store.put("pixabay:video q=dog", {"hits": []})  # asked again: the newer answer replaces it
    assert store.get("pixabay:video q=dog") == {"hits": []}
    assert store.get("pixabay:video q=cat") is None


def test_search_store_an_answer_older_than_a_day_is_gone(runtime: Runtime) -> None:
    store = runtime.registry.searches
    store.put("pexels:video query=sea", {"videos": []})
    with runtime.registry.db.tx() as tx:
        tx.execute("UPDATE searches SET created_at=? WHERE search_key=?",
                   ("2000-01-01T00:00:00.000Z", "pexels:video query=sea"))
    assert store.get("pexels:video query=sea") is None
    store.put("pexels:video query=sky", {"videos": []})  # storing sweeps what expired
    keys = [r["search_key"] for r in runtime.registry.db.query("SELECT search_key FROM searches")]
    assert keys == ["pexels:video query=sky"]
