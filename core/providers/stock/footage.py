"""What the three stock video providers share: search, rank, download, credit.

A subclass says how its API is asked (:meth:`StockVideoProvider.search_request`) and how its
answer reads (:meth:`StockVideoProvider.candidates`); this class does the rest, the same way
for Pexels, Pixabay and Wikimedia Commons:

1. the scene's prompt becomes keyword queries (core.providers.stock.ranking.queries_for);
   each is asked in turn (an answer younger than 24 h is read from the registry's search
   store instead) until a candidate fits (score >= ranking.FITS) or the queries run out;
2. every clip found is ranked; clips the video already uses are left out;
3. the best is downloaded at its best rendition (the smallest covering the output size), and
   when it is shorter than the scene can be slowed to fill, the next best are downloaded to be
   joined; a download that is cut short or is not video is passed over for the next candidate;
4. the answer is raw footage (core.providers.base.Footage: the clips and their credits); the
   scene service's finishing step cuts it to the scene (core.media.fit). The queries, the top
   candidates' scores and the choice go on the attempt (``ProviderOutput.note``).

Nothing found anywhere is ``NothingFound`` naming every query tried: the chain falls back.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio.to_thread

from core.config import Settings
from core.errors import BadOutput, MediaError, NotConfigured, NothingFound
from core.providers._vendor import part_path
from core.providers.base import CallContext, Footage, ProviderOutput, VideoSpec
from core.providers.stock import _http
from core.providers.stock.ranking import FITS, Candidate, Scored, queries_for, rank
from core.schemas import Capability, Credit

if TYPE_CHECKING:
    import httpx

__all__ = ["StockVideoProvider", "USER_AGENT"]

log = logging.getLogger(__name__)

USER_AGENT = "ytap-mcp/0.1 (stock footage search; https://github.com/ytap-mcp)"
_MAX_CLIP_BYTES = 400 * 2**20
_MAX_CLIPS = 3  # joined at most: more cuts than that is a montage, not a scene
_MAX_DOWNLOADS = 5  # candidates tried when downloads fail


class StockVideoProvider:
    capability: ClassVar[Capability] = "video"
    paid: ClassVar[bool] = False
    key_env: ClassVar[str | None] = None
    who: ClassVar[str] = ""  # "Pexels": how messages name the vendor
    rate: ClassVar[_http.RateWindow | None] = None  # the vendor's documented limit, shared by every instance
    timeout_s: ClassVar[float] = 30.0
    connect_timeout_s: ClassVar[float] = 2.0  # offline must fall through fast

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- what a subclass says ---------------------------------------------------------------

    base_setting: ClassVar[str] = ""  # the Settings field holding the endpoint ("pexels_base_url")
    key_setting: ClassVar[str | None] = None  # the Settings field holding the key, if the vendor takes one

    @property
    def base_url(self) -> str:
        return str(getattr(self.settings, self.base_setting))

    def key(self) -> str | None:
        secret = getattr(self.settings, self.key_setting) if self.key_setting else None
        return secret.get() if secret else None

    def client_options(self) -> dict[str, Any]:
        """Extra :func:`_http.client` arguments (the key's header or query parameter)."""
        return {}

    def search_request(self, query: str, spec: VideoSpec) -> tuple[str, dict[str, Any]]:
        """The URL and query parameters of one search (never the key: client_options adds it)."""
        raise NotImplementedError

    def candidates(self, body: Any, query: str) -> list[Candidate]:
        """The clips an answer lists; BadOutput when the answer is not the API's shape."""
        raise NotImplementedError

    def credit(self, c: Candidate) -> Credit:
        raise NotImplementedError

    # --- facts ------------------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        if self.key_env and not self.key():
            return f"{self.key_env} not set"
        return None

    # --- the call ---------------------------------------------------------------------------

    async def generate_video(self, spec: VideoSpec, out: Path, ctx: CallContext) -> ProviderOutput:
        reason = self.unavailable_reason()
        if reason:
            raise NotConfigured(reason)
        min_speed = _min_speed()
        queries = queries_for(spec.prompt, spec.style)
        if not queries:
            raise NothingFound(f"{self.who}: the prompt has no words to search for")
        found: list[Candidate] = []
        asked: list[str] = []
        ranked: list[Scored] = []
        options = self.client_options()
        headers = {"User-Agent": USER_AGENT, **options.pop("headers", {})}
        async with _http.client(timeout_s=self.timeout_s, connect_timeout_s=self.connect_timeout_s, headers=headers,
                                **options) as http:
            for n, query in enumerate(queries):
                ctx.progress(0.05 + 0.1 * n, f"{self.id}: searching for {query!r}")
                hits = self.candidates(await self._search(http, query, spec, ctx), query)
                asked.append(f"{query!r} ({len(hits)} found)")
                found += hits
                ranked = rank(found, width=spec.width, height=spec.height, duration_s=spec.duration_s,
                              prompt=spec.prompt, style=spec.style, used=ctx.used_sources, min_speed=min_speed)
                if ranked and ranked[0].total >= FITS:
                    break
            if not ranked:
                reused = sum(1 for c in found if c.source_id in ctx.used_sources)
                raise NothingFound(f"{self.who} found nothing usable for " + ", ".join(asked)
                                   + (f" ({reused} already used in this video)" if reused else ""))
        # Clips come from CDN hosts (Pexels' are Vimeo's): a client without the key's header or parameter.
        async with _http.client(timeout_s=self.timeout_s, connect_timeout_s=self.connect_timeout_s,
                                headers={"User-Agent": USER_AGENT}) as plain:
            clips, chosen, skipped = await self._download(plain, ranked, spec, out, ctx)
        note = (f"queries: {', '.join(asked)}; top: " + "; ".join(s.describe() for s in ranked[:3])
                + f"; chose {', '.join(s.candidate.source_id for s in chosen)}"
                + (f"; passed over {', '.join(skipped)}" if skipped else ""))
        log.info("%s: %s", self.id, note)
        return ProviderOutput(path=out, provider=self.id, model=self.model, cost_usd=0.0,
                              footage=Footage(clips=clips, credits=[self.credit(s.candidate) for s in chosen]),
                              note=note)

    async def _search(self, http: httpx.AsyncClient, query: str, spec: VideoSpec, ctx: CallContext) -> Any:
        url, params = self.search_request(query, spec)
        cache_key = f"{self.id} {url} " + "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        searches = ctx.searches
        if searches is not None:
            cached = await anyio.to_thread.run_sync(lambda: searches.get(cache_key))
            if cached is not None:
                return cached
        if self.rate is not None:
            self.rate.take(self.who)
        body = await _http.get_json(http, url, params, who=self.who, key_env=self.key_env, cancel=ctx.cancel)
        self.candidates(body, query)  # a malformed answer is not kept for 24 h
        if searches is not None:
            await anyio.to_thread.run_sync(lambda: searches.put(cache_key, body))
        return body

    async def _download(self, http: httpx.AsyncClient, ranked: list[Scored], spec: VideoSpec, out: Path,
                        ctx: CallContext) -> tuple[list[Path], list[Scored], list[str]]:
        """The best clip (into ``out``), and the next best while they are too short together; candidates
        whose download fails are passed over (their reasons returned)."""
        clips: list[Path] = []
        chosen: list[Scored] = []
        skipped: list[str] = []
        lengths: list[float] = []
        for s in ranked[:_MAX_DOWNLOADS + _MAX_CLIPS]:
            if len(clips) >= _MAX_CLIPS or (lengths and _enough(lengths, spec)):
                break
            if len(skipped) >= _MAX_DOWNLOADS:
                break
            if chosen and s.total < chosen[0].total * 0.6:  # a join with an unrelated clip is worse than a slow one
                break
            if not ctx.claim(s.candidate.source_id):  # another scene of this video, made at the same time, has it
                continue
            path = out if not clips else part_path(out, f"stock{len(clips)}", ".media")
            ctx.progress(0.4 + 0.15 * len(clips), f"{self.id}: downloading {s.candidate.source_id}")
            try:
                await _http.download(http, s.rendition.url, path, who=f"{self.who} ({s.candidate.source_id})",
                                     max_bytes=_MAX_CLIP_BYTES, cancel=ctx.cancel)
                duration = await anyio.to_thread.run_sync(lambda: _video_duration(path))
            except (BadOutput, MediaError) as exc:
                path.unlink(missing_ok=True)
                skipped.append(f"{s.candidate.source_id}: {getattr(exc, 'message', exc)}")
                continue
            except BaseException:
                path.unlink(missing_ok=True)
                for c in clips:
                    c.unlink(missing_ok=True)
                raise
            clips.append(path)
            chosen.append(s)
            lengths.append(duration)
        if not clips:
            raise BadOutput(f"{self.who}: no download was usable ({'; '.join(skipped)})")
        return clips, chosen, skipped


def _video_duration(path: Path) -> float:
    """The probed length of a downloaded clip; MediaError when it is not a video."""
    from core.media.probe import probe

    info = probe(path, count_frames=True)  # counted: a file cut inside its media data still has a full index
    v = info.video
    if v is None or not info.duration_s or not v.frames:
        raise MediaError("the download is not a video")
    if v.fps and v.duration_s and v.frames < 0.9 * v.duration_s * v.fps:
        raise MediaError(f"the download is cut short ({v.frames} of {round(v.duration_s * v.fps)} frames)")
    return float(v.frames / v.fps) if v.fps else float(info.duration_s)


def _enough(lengths_s: list[float], spec: VideoSpec) -> bool:
    """Whether the clips downloaded so far make the scene as the cut will plan it (core.media.fit)."""
    from core.media.fit import plan_cuts

    try:
        plan_cuts(lengths_s, spec.duration_s, spec.fps)
    except MediaError:
        return False
    return True


def _min_speed() -> float:
    """The slowest the cut plays a clip (core.media.fit, imported on the first call: it loads ffmpeg's module)."""
    from core.media.fit import MIN_SPEED

    return MIN_SPEED
