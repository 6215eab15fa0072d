"""Fit, not first hit: the search queries a scene's prompt gives, and the score of each clip found.

Stock users' most frequent complaint is footage unrelated to the narration (MoneyPrinterTurbo
#501, #680, #734, #1019, #1056): the first hit of the whole prompt is rarely the right clip.
So:

- :func:`queries_for` turns the prompt (and style) into short keyword queries, subject first:
  the prompt is cut into phrases at prepositions and punctuation; the first phrase that does
  not open with a preposition is the subject ("a golden retriever running"), the last word of
  each other phrase the setting ("beach", "sunset"); filler, camera and style words
  ("cinematic", "4k", "aerial shot") are dropped. The first query is subject + setting, then
  the subject's nouns, then its head noun with the setting: broader each time, asked only
  while nothing found fits.
- :func:`score` rates one candidate for the scene in [0, 1], from its relevance (the prompt's
  content words in the clip's tags, title or page slug), orientation (landscape for 16:9,
  portrait for 9:16), resolution (its best rendition covers the output size: never upscaled
  when a larger exists) and duration (covers the scene; a shorter one is joined or slowed by
  core.media.fit, within limits). A clip the video already uses is never offered again.
- :func:`pick_rendition` takes, of a clip's renditions, the smallest that covers the output
  (1080p for a 1080p scene, not 4K), else the largest there is.

Pure functions: the providers feed them what each API answered; benchmarks/stock_ranking.py
prints what they decide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Rendition", "Candidate", "Scored", "queries_for", "content_words", "pick_rendition", "score", "rank",
           "FITS", "MAX_QUERIES"]

MAX_QUERIES = 3
# A candidate at least this good ends the search: no broader query is asked.
FITS = 0.7
# Of the score: what the clip shows matters most; a wrong shape or a small file is cropped or soft.
_WEIGHTS = {"relevance": 0.4, "orientation": 0.25, "resolution": 0.2, "duration": 0.15}

_STOP = frozenset("""
a an the this that these those of and or but with without to from for in on at by over under into onto near
through across along around above below behind beside between during after before while as is are was were be
being been it its their his her our your my some any very into out up down off about against among upon than
then there here where when who whom which what how slowly quickly gently softly one two three few many much
just only also again still
""".split())
_PREPOSITIONS = frozenset("""
of with without to from for in on at by over under into onto near through across along around above below
behind beside between during after before while against among upon
""".split())
# Camera, style and quality words: they describe the shot, not what is in it; stock tags rarely carry them.
_STYLE = frozenset("""
cinematic film filmic footage video clip shot shots scene scenes camera closeup close-up wide aerial drone
establishing pan panning tracking dolly zoom zooming slow motion timelapse time-lapse lapse 4k 8k hd uhd 1080p
realistic photorealistic hyperrealistic style styled beautiful stunning epic dramatic moody vibrant detailed
high quality view angle shallow depth field bokeh lighting light golden-hour professional stock b-roll broll
""".split())
_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*", re.UNICODE)


@dataclass(frozen=True)
class Rendition:
    width: int
    height: int
    url: str
    quality: str | None = None  # the vendor's label ("hd", "uhd", "large"), shown only


@dataclass
class Candidate:
    """One clip a search found, in the vendor-neutral shape the score reads."""

    source_id: str  # "pexels:123": never used twice in one video
    page_url: str
    duration_s: float
    renditions: list[Rendition]
    words: str  # tags, title, page slug: what the clip is said to show
    author: str | None = None
    author_url: str | None = None
    license: str = ""
    license_url: str | None = None
    query: str = ""  # the query that found it
    position: int = 0  # 0-based place in that query's results


@dataclass
class Scored:
    candidate: Candidate
    rendition: Rendition
    total: float
    parts: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        p = self.parts
        c = self.candidate
        return (f"{c.source_id} {self.total:.2f} (relevance {p['relevance']:.2f}, orientation {p['orientation']:.2f}, "
                f"resolution {p['resolution']:.2f} {self.rendition.width}x{self.rendition.height}, "
                f"duration {p['duration']:.2f} {c.duration_s:g} s)")


def content_words(text: str) -> list[str]:
    """The words of ``text`` that say what is in the picture, lower-case, in order, once each."""
    out: list[str] = []
    for w in _WORD.findall(text.lower()):
        if w in _STOP or w in _STYLE or w.isdigit() or len(w) < 2 or w in out:
            continue
        out.append(w)
    return out


def queries_for(prompt: str, style: str | None = None, *, limit: int = MAX_QUERIES) -> list[str]:
    """Keyword queries for a scene, the most specific first (see the module's docstring). The style is
    read only for content words the prompt lacks ("underwater" in a style), never for camera words."""
    phrases: list[tuple[bool, list[str]]] = []  # (starts with a preposition, its content words)
    for part in re.split(r"[,;:.!?()]", prompt.lower()):
        current: list[str] = []
        lead = False
        for w in _WORD.findall(part):
            if w == "of" and not lead and not content_words(" ".join(current)):
                current = []  # "close-up of X", "a view of X": only camera words before it, X is the subject
                continue
            if w in _PREPOSITIONS:
                if current or lead:
                    phrases.append((lead, current))
                current, lead = [], True
            else:
                current.append(w)
        phrases.append((lead, current))
    phrases = [(lead, content_words(" ".join(ws))) for lead, ws in phrases]
    phrases = [(lead, ws) for lead, ws in phrases if ws]
    if not phrases:
        return []
    at = next((i for i, (lead, _) in enumerate(phrases) if not lead), 0)
    subject = phrases[at][1][-3:]  # "tall old grey stone lighthouse": the last words hold the noun
    nouns = [w for w in subject if not _verbish(w)] or subject
    head = nouns[-1:]
    setting = [ws[-1] for i, (_, ws) in enumerate(phrases) if i != at and ws[-1] not in subject]
    extra = [w for w in content_words(style or "") if w not in subject and w not in setting]
    candidates = [subject + setting[:1] + extra[:1], nouns, head + setting[:1], setting[:2]]
    queries: list[str] = []
    for words in candidates:
        q = " ".join(dict.fromkeys(words)).strip()
        if q and q not in queries:
            queries.append(q)
    return queries[:limit]


def _verbish(word: str) -> bool:
    """A participle ("running", "poured"), which a stock search matches worse than the thing doing it."""
    return len(word) > 4 and word.endswith(("ing", "ed"))


def pick_rendition(renditions: Sequence[Rendition], width: int, height: int) -> Rendition | None:
    """The smallest rendition whose cover-fit into ``width`` x ``height`` needs no upscaling; else the
    largest (a small clip is upscaled only when nothing larger exists). None without renditions."""
    usable = [r for r in renditions if r.width > 0 and r.height > 0 and r.url]
    if not usable:
        return None
    covering = [r for r in usable if _cover_scale(r, width, height) <= 1.0]
    if covering:
        return min(covering, key=lambda r: r.width * r.height)
    return max(usable, key=lambda r: r.width * r.height)


def _cover_scale(r: Rendition, width: int, height: int) -> float:
    return max(width / r.width, height / r.height)


def score(c: Candidate, *, width: int, height: int, duration_s: float, prompt_words: Sequence[str],
          min_speed: float) -> Scored | None:
    """The candidate's fit for a ``width`` x ``height`` scene of ``duration_s``; None when it has no
    usable rendition."""
    r = pick_rendition(c.renditions, width, height)
    if r is None or c.duration_s <= 0:
        return None
    said = set(content_words(c.words))
    wanted = list(prompt_words)[:6]
    stems = {_stem(s) for s in said}
    relevance = sum(1.0 / (1 + 0.25 * i) for i, w in enumerate(wanted) if w in said or _stem(w) in stems)
    relevance /= max(1e-9, sum(1.0 / (1 + 0.25 * i) for i in range(len(wanted)))) if wanted else 1.0
    relevance = 0.9 * relevance + 0.1 / (1 + c.position)  # the vendor's own order breaks ties
    want_portrait = height > width
    is_portrait, is_square = r.height > r.width, r.height == r.width
    orientation = 1.0 if is_portrait == want_portrait and not is_square else (0.5 if is_square else 0.15)
    up = _cover_scale(r, width, height)
    resolution = 1.0 if up <= 1.0 else max(0.0, 1.0 / up) ** 2
    if c.duration_s >= duration_s:
        duration = 1.0
    elif c.duration_s >= duration_s * min_speed:
        duration = 0.8  # slowed a little
    else:
        duration = 0.5 * c.duration_s / duration_s  # needs another clip joined
    parts = {"relevance": relevance, "orientation": orientation, "resolution": resolution, "duration": duration}
    total = sum(_WEIGHTS[k] * v for k, v in parts.items())
    return Scored(c, r, round(total, 4), {k: round(v, 3) for k, v in parts.items()})


def rank(candidates: Sequence[Candidate], *, width: int, height: int, duration_s: float, prompt: str,
         style: str | None, used: frozenset[str], min_speed: float) -> list[Scored]:
    """The candidates not already in the video, best first (one entry per clip)."""
    words = content_words(prompt) + [w for w in content_words(style or "") if w not in content_words(prompt)]
    seen: set[str] = set()
    scored: list[Scored] = []
    for c in candidates:
        if c.source_id in used or c.source_id in seen:
            continue
        seen.add(c.source_id)
        s = score(c, width=width, height=height, duration_s=duration_s, prompt_words=words, min_speed=min_speed)
        if s is not None:
            scored.append(s)
    return sorted(scored, key=lambda s: -s.total)


def _stem(word: str) -> str:
    """A crude English stem, so "dogs" finds "dog" and "running" finds "run"."""
    for suffix in ("ing", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 3 and word[-1] == word[-2] else word
