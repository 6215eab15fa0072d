"""``pixabay:video``: stock footage from Pixabay (https://pixabay.com/api/docs/#api_search_videos).

``GET {PIXABAY_BASE_URL}/api/videos/?key=&q=&per_page=&safesearch=true`` answers ``{"total",
"totalHits", "hits": [...]}``; each hit has ``id``, ``pageURL``, ``tags`` ("dog, beach, sea"),
``duration`` (seconds), ``user`` and ``videos`` (renditions ``large``/``medium``/``small``/``tiny``,
each ``url``, ``width``, ``height``, ``size``; ``large`` is empty when the clip has none).

Pixabay's rules: 100 requests a minute; search results cached for 24 hours (the registry's search
store does); no hotlinking (clips are downloaded). The key travels in the QUERY STRING: it is added
below the HTTP client (_http.QueryKeyTransport), so no logged URL, error, result, registry row or
file ever holds it. Its licence asks for no attribution; a credit is recorded as a courtesy.
"""

from __future__ import annotations

from typing import Any, ClassVar

from core.errors import BadOutput
from core.providers.base import VideoSpec
from core.providers.stock import _http
from core.providers.stock.footage import StockVideoProvider
from core.providers.stock.ranking import Candidate, Rendition
from core.schemas import Credit

__all__ = ["PixabayVideoProvider", "SEARCH_PATH"]

SEARCH_PATH = "/api/videos/"
LICENSE = "Pixabay Content License"
LICENSE_URL = "https://pixabay.com/service/license-summary/"
_SIZES = ("large", "medium", "small", "tiny")


class PixabayVideoProvider(StockVideoProvider):
    id: ClassVar[str] = "pixabay:video"
    model: ClassVar[str | None] = "video"
    key_env: ClassVar[str | None] = "PIXABAY_API_KEY"
    key_setting: ClassVar[str | None] = "pixabay_api_key"
    base_setting: ClassVar[str] = "pixabay_base_url"
    who: ClassVar[str] = "Pixabay"
    rate: ClassVar[_http.RateWindow | None] = _http.RateWindow(100, 60.0)
    per_page: ClassVar[int] = 20

    def client_options(self) -> dict[str, Any]:
        return {"query_key": ("key", self.key() or "")}

    def search_request(self, query: str, spec: VideoSpec) -> tuple[str, dict[str, Any]]:
        return self.base_url + SEARCH_PATH, {
            "q": query[:100],  # the API's limit
            "video_type": "film",
            "safesearch": "true",
            "per_page": self.per_page,
        }

    def candidates(self, body: Any, query: str) -> list[Candidate]:
        hits = body.get("hits") if isinstance(body, dict) else None
        if not isinstance(hits, list):
            raise BadOutput("Pixabay answered without a hits list")
        out = []
        for i, h in enumerate(hits):
            try:
                videos = h.get("videos") or {}
                files = [Rendition(int(f.get("width") or 0), int(f.get("height") or 0), str(f.get("url") or ""), size)
                         for size in _SIZES if isinstance(f := videos.get(size), dict)]
                out.append(Candidate(
                    source_id=f"pixabay:{int(h['id'])}", page_url=str(h["pageURL"]),
                    duration_s=float(h.get("duration") or 0), renditions=files, words=str(h.get("tags") or ""),
                    author=h.get("user") or None, license=LICENSE, license_url=LICENSE_URL, query=query, position=i))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise BadOutput(f"Pixabay answered with a hit of the wrong shape ({type(exc).__name__}: {exc})"
                                ) from None
        return out

    def credit(self, c: Candidate) -> Credit:
        by = f" by {c.author}" if c.author else ""
        return Credit(text=f"Video{by} from Pixabay: {c.page_url}", required=False, license=c.license,
                      license_url=c.license_url, author=c.author, source_url=c.page_url, source_id=c.source_id)
