"""``commons:video``: free-licensed footage from Wikimedia Commons (MediaWiki Action API, no key).

``GET {YTAP_COMMONS_BASE_URL}/w/api.php?action=query&format=json&formatversion=2&generator=search
&gsrsearch=<query> filetype:video&gsrnamespace=6&prop=imageinfo&iiprop=url|size|mime|extmetadata
&iiextmetadatafilter=...`` answers ``{"query": {"pages": [{"title": "File:…", "index",
"imageinfo": [{"url", "descriptionurl", "width", "height", "duration", "mime", "extmetadata":
{"LicenseShortName": {"value"}, "Artist": {"value": HTML}, "LicenseUrl": {"value"}, ...}}]}]}}``
(``pages`` is an object keyed by page id without ``formatversion=2``; both are read).

Only licences that allow reuse in a monetised video are taken: CC0, public domain, CC BY (any
version); CC BY-SA only when ``YTAP_COMMONS_ALLOW_SA`` is set (share-alike binds the whole video
to the same licence: the user's choice). NC and ND licences, GFDL and unknown ones are left out.
The licence and author are read from the file's own metadata; CC BY and BY-SA credits are required.
"""

from __future__ import annotations

import html
import re
from typing import Any, ClassVar

from core.errors import BadOutput
from core.providers.base import VideoSpec
from core.providers.stock.footage import StockVideoProvider
from core.providers.stock.ranking import Candidate, Rendition
from core.schemas import Credit

__all__ = ["CommonsVideoProvider", "API_PATH", "allowed_license"]

API_PATH = "/w/api.php"
_TAGS = re.compile(r"<[^>]+>")
_EXTMETADATA = "LicenseShortName|LicenseUrl|Artist|ObjectName|ImageDescription|Categories"


def allowed_license(short_name: str, *, allow_sa: bool) -> bool:
    """Whether a Commons licence (its LicenseShortName) allows reuse in a monetised video."""
    n = " ".join(short_name.lower().replace("_", " ").split())
    if not n or "nc" in n.replace("-", " ").split() or "nd" in n.replace("-", " ").split():
        return False
    if n.startswith("cc0") or n in ("public domain", "pd", "pdm") or n.startswith(("public domain", "pd-", "pd ")):
        return True
    if re.fullmatch(r"cc[ -]by( \d(\.\d)?)?( [a-z-]+)?", n):
        return True
    return allow_sa and re.fullmatch(r"cc[ -]by[ -]sa( \d(\.\d)?)?( [a-z-]+)?", n) is not None


class CommonsVideoProvider(StockVideoProvider):
    id: ClassVar[str] = "commons:video"
    model: ClassVar[str | None] = "video"
    who: ClassVar[str] = "Wikimedia Commons"
    base_setting: ClassVar[str] = "commons_base_url"
    per_page: ClassVar[int] = 20

    def search_request(self, query: str, spec: VideoSpec) -> tuple[str, dict[str, Any]]:
        return self.base_url + API_PATH, {
            "action": "query", "format": "json", "formatversion": "2",
            "generator": "search", "gsrsearch": f"{query} filetype:video", "gsrnamespace": "6",
            "gsrlimit": self.per_page,
            "prop": "imageinfo", "iiprop": "url|size|mime|mediatype|extmetadata", "iiextmetadatafilter": _EXTMETADATA,
        }

    def candidates(self, body: Any, query: str) -> list[Candidate]:
        if not isinstance(body, dict) or ("query" not in body and "batchcomplete" not in body):
            error = body.get("error") if isinstance(body, dict) else None
            info = f": {error.get('info')}" if isinstance(error, dict) else ""
            raise BadOutput(f"Wikimedia Commons answered without a query result{info}")
        pages = (body.get("query") or {}).get("pages") or []
        if isinstance(pages, dict):
            pages = list(pages.values())
        if not isinstance(pages, list):
            raise BadOutput("Wikimedia Commons answered with pages of the wrong shape")
        pages = sorted(pages, key=lambda p: p.get("index", 0) if isinstance(p, dict) else 0)
        out = []
        for i, p in enumerate(pages):
            try:
                info = (p.get("imageinfo") or [None])[0]
                if not info or not str(info.get("mime", "")).startswith("video/"):
                    continue
                meta = info.get("extmetadata") or {}
                licence = _meta(meta, "LicenseShortName")
                if not allowed_license(licence, allow_sa=self.settings.commons_allow_sa):
                    continue
                title = str(p["title"])
                out.append(Candidate(
                    source_id=f"commons:{p.get('pageid') or title}", page_url=str(info["descriptionurl"]),
                    duration_s=float(info.get("duration") or 0),
                    renditions=[Rendition(int(info.get("width") or 0), int(info.get("height") or 0), str(info["url"]))],
                    words=" ".join([title.removeprefix("File:").rsplit(".", 1)[0].replace("_", " "),
                                    *(_meta(meta, k) for k in ("ObjectName", "ImageDescription", "Categories"))]),
                    author=_meta(meta, "Artist") or None, license=licence,
                    license_url=_meta(meta, "LicenseUrl") or None, query=query, position=i))
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                raise BadOutput(f"Wikimedia Commons answered with a file of the wrong shape "
                                f"({type(exc).__name__}: {exc})") from None
        return out

    def credit(self, c: Candidate) -> Credit:
        name = c.page_url.rsplit("File:", 1)[-1].replace("_", " ")
        by = f" by {c.author}" if c.author else ""
        licence = c.license + (f" ({c.license_url})" if c.license_url else "")
        required = c.license.lower().replace("-", " ").startswith("cc by")
        return Credit(text=f'"{name}"{by}, {licence}, via Wikimedia Commons: {c.page_url}', required=required,
                      license=c.license, license_url=c.license_url, author=c.author, source_url=c.page_url,
                      source_id=c.source_id)


def _meta(meta: dict[str, Any], name: str) -> str:
    """An extmetadata value as plain text (Artist and descriptions are HTML)."""
    value = (meta.get(name) or {}).get("value", "") if isinstance(meta.get(name), dict) else ""
    return " ".join(html.unescape(_TAGS.sub(" ", str(value))).split())
