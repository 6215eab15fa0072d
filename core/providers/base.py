"""Capability protocols, the specs providers receive and the output they return.

A provider states its facts as class attributes (``id``, ``capability``, ``key_env``,
``paid``) and implements one async method for its capability. It writes its media to
the path it is given (a temporary name in the final folder) and returns a
:class:`ProviderOutput`; it raises ``core.errors.ProviderError`` subclasses for its own
failures and ``InputError`` for requests no provider could serve.

A provider returns RAW media: the clip as the vendor made it, the picture without any
text on it. What every provider would otherwise repeat (normalising a clip to the scene
format, drawing a thumbnail's title) is a :data:`Finish` step the caller hands to the
:class:`~core.providers.chain.FallbackChain`, which runs it inside each provider's
attempt: a raw output the step cannot use is that attempt's failure, and the chain
falls back to the next provider.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from core.config import Settings, scrub_secrets
from core.schemas import Attempt, Capability, Credit, SegmentTiming

if TYPE_CHECKING:
    from core.media.audio import SegmentAudio

__all__ = [
    "CallContext",
    "VideoSpec",
    "SpeechSpec",
    "ImageSpec",
    "MusicSpec",
    "MusicFacts",
    "ProviderOutput",
    "SpeechParts",
    "Footage",
    "Finish",
    "Provider",
    "VideoProvider",
    "SpeechProvider",
    "ImageProvider",
    "MusicProvider",
    "ClonedVoice",
    "VoiceCloningProvider",
    "CAPABILITY_METHODS",
    "scrub",
]

ProgressFn = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    return None


def _no_checkpoint(key: str, value: Any) -> None:
    return None


def _claim_any(source_id: str) -> bool:
    return True


@dataclass
class CallContext:
    """What a provider may use besides its spec: settings, cancellation, progress."""

    settings: Settings
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: ProgressFn = _no_progress
    # What this video may still spend (YTAP_BUDGET_USD minus what it already cost); None: no cap.
    budget_remaining_usd: float | None = None
    # What this job recorded before (a vendor's job id a killed worker had submitted) and how to record:
    # a provider that submits paid work records its id at once and, finding one, resumes it instead.
    resumed: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: Callable[[str, Any], None] = _no_checkpoint
    # Stock clips this video already uses (Credit.source_id, "pexels:123"): a stock provider picks others.
    used_sources: frozenset[str] = frozenset()
    # The registry's search store (core.assets.search_store: get(key) / put(key, body)): stock searches are
    # kept 24 h; None asks every time.
    searches: Any = None
    # Claims a stock clip for this scene; False when a scene of the same video being made right now holds it.
    claim: Callable[[str], bool] = _claim_any
    # With a budget: hold a paid call's estimate against it across concurrent jobs and workers
    # (core.services.common): hold_budget(provider id, usd) -> (hold id, or None when it does not fit; dollars
    # left), then settle_budget(hold id, what the call really cost). None: budget_remaining_usd alone decides.
    hold_budget: Callable[[str, float], tuple[int | None, float]] | None = None
    settle_budget: Callable[[int, float], None] | None = None


@dataclass(frozen=True)
class VideoSpec:
    prompt: str
    scene_index: int
    duration_s: float
    width: int
    height: int
    fps: int = 30
    aspect_ratio: str = "16:9"
    style: str | None = None
    negative_prompt: str | None = None


@dataclass(frozen=True)
class SpeechSpec:
    segments: tuple[str, ...]
    voice: str | None = None
    speed: float = 1.0
    pitch_semitones: float = 0.0
    instructions: str | None = None
    language: str | None = None  # BCP 47 (the narration service always sets it: given, or detected from the text)


@dataclass(frozen=True)
class ImageSpec:
    """What image APIs take: a picture is asked for, never a title (the caller draws text itself)."""

    prompt: str
    width: int = 1280  # the size the caller will use; a provider asks for its nearest size of that shape
    height: int = 720
    style: str | None = None
    negative_prompt: str | None = None  # what the picture must not show, for providers that take one (SD)
    seed: int | None = None  # a fixed seed, for providers that take one (SD); None: random


@dataclass(frozen=True)
class MusicSpec:
    """A music bed: instrumental, ``duration_s`` long in the end. A provider may make less (its length
    limit, its cost) and say so in :class:`MusicFacts`; the music service loops it out to the length."""

    mood: str
    duration_s: float


@dataclass(frozen=True)
class MusicFacts:
    """What a music provider knows about the track it made (the finishing step reads it)."""

    seamless: bool = False  # the raw track's end runs straight into its start (a loop made as one)
    bpm: float | None = None  # None: the finishing step estimates the tempo from the audio
    beats_per_bar: int = 4
    bars: int | None = None
    chords: tuple[str, ...] = ()  # one progression cycle, when the provider wrote it
    profile: str | None = None  # the provider's own name for the style it chose (local:ambient's mood profile)
    key: str | None = None
    length_s: float | None = None  # what was asked for: audio that decodes much shorter was cut off


@dataclass
class SpeechParts:
    """A speech provider's raw answer: one audio file per part, in the vendor's format, before the master."""

    parts: list[SegmentAudio]
    folder: Path  # the provider's scratch folder holding the parts: removed after the attempt
    speed: float = 1.0  # what the master must still apply (the vendor spoke at the rest)
    pitch_semitones: float = 0.0
    segment_of: list[int] | None = None  # each part's segment (0-based) when a segment was spoken in several


@dataclass
class Footage:
    """A stock provider's raw answer: clips to cut the scene from, in order (the scene's finishing step
    windows, joins and slows them within limits: core.media.fit), with their credits."""

    clips: list[Path]  # the first is ProviderOutput.path; all are removed after the attempt
    credits: list[Credit]


@dataclass
class ProviderOutput:
    """What a provider made. ``segments`` for speech; ``attempts`` filled by a chain.

    A speech provider answers with ``speech`` (its parts, nothing at ``path`` yet) unless it
    writes the master itself; the narration's finishing step joins the parts at ``path``.
    """

    path: Path
    provider: str
    model: str | None
    cost_usd: float = 0.0
    segments: list[SegmentTiming] | None = None
    voice: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    speech: SpeechParts | None = None
    # A picture designed to carry a title (the local card: calm space, its own contrast), not a photo.
    designed: bool = False
    # What the chain's finishing step returned (e.g. the probed clip); None without one.
    finished: Any = None
    music: MusicFacts | None = None  # a music provider's facts about its track
    # Stock footage: the clips and their credits (None for generated media).
    footage: Footage | None = None
    # Why the provider answered with this (the search queries, the candidates' scores): added to the attempt.
    note: str | None = None


# The finishing step a chain runs inside each attempt (blocking: the chain runs it in a worker
# thread): the provider's raw output (``output.path``) -> the finished file at ``out``. It raises
# BadOutput or MediaError for raw media it cannot use; its return value lands in ``output.finished``.
Finish = Callable[["ProviderOutput", Path, "CallContext"], Any]


class Provider(Protocol):
    """Facts and availability. Paid providers also implement ``estimate_cost_usd(spec) -> float``
    (the price of the call about to be made, from core.providers.pricing) so a chain can
    refuse a call that would pass the budget before it is made."""

    id: ClassVar[str]
    capability: ClassVar[Capability]
    model: ClassVar[str | None]
    key_env: ClassVar[str | None]
    paid: ClassVar[bool]

    def unavailable_reason(self) -> str | None:
        """None when it can be called; otherwise why not (e.g. "OPENAI_API_KEY not set")."""
        ...


@runtime_checkable
class VideoProvider(Provider, Protocol):
    async def generate_video(self, spec: VideoSpec, out: Path, ctx: CallContext) -> ProviderOutput: ...


@runtime_checkable
class SpeechProvider(Provider, Protocol):
    async def synthesize(self, spec: SpeechSpec, out: Path, ctx: CallContext) -> ProviderOutput: ...


@runtime_checkable
class ImageProvider(Provider, Protocol):
    async def generate_image(self, spec: ImageSpec, out: Path, ctx: CallContext) -> ProviderOutput: ...


@runtime_checkable
class MusicProvider(Provider, Protocol):
    async def compose_music(self, spec: MusicSpec, out: Path, ctx: CallContext) -> ProviderOutput: ...


@dataclass(frozen=True)
class ClonedVoice:
    """A voice a vendor made from a sample: the id its speech provider speaks it by."""

    voice_id: str
    requires_verification: bool = False
    notes: tuple[str, ...] = ()


@runtime_checkable
class VoiceCloningProvider(Provider, Protocol):
    """A speech provider that can also clone a voice into the vendor account and delete it again.

    A clone lives in one vendor account, so only that vendor's speech providers can speak it.
    ``delete_voice`` answers False when the vendor no longer has the voice.
    """

    async def clone_voice(self, name: str, sample: Path, ctx: CallContext, *, description: str | None = None,
                          remove_background_noise: bool = False) -> ClonedVoice: ...

    async def delete_voice(self, voice_id: str, ctx: CallContext) -> bool: ...


CAPABILITY_METHODS: dict[str, str] = {"video": "generate_video", "speech": "synthesize", "image": "generate_image",
                                      "music": "compose_music"}


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` fit to record: every secret in every form it travels in, and anything credential-shaped
    (bearer tokens, auth headers, key query parameters), removed; cut to 1000 characters."""
    return scrub_secrets(text, secrets)[:1000]
