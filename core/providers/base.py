"""Capability protocols, the specs providers receive and the output they return.

A provider states its facts as class attributes (``id``, ``capability``, ``key_env``,
``paid``) and implements one async method for its capability. It writes its media to
the path it is given (a temporary name in the final folder) and returns a
:class:`ProviderOutput`; it raises ``core.errors.ProviderError`` subclasses for its own
failures and ``InputError`` for requests no provider could serve.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

from core.config import Settings, scrub_secrets
from core.schemas import Attempt, Capability, SegmentTiming

__all__ = [
    "CallContext",
    "VideoSpec",
    "SpeechSpec",
    "ImageSpec",
    "ProviderOutput",
    "Provider",
    "VideoProvider",
    "SpeechProvider",
    "ImageProvider",
    "ClonedVoice",
    "VoiceCloningProvider",
    "CAPABILITY_METHODS",
    "scrub",
]

ProgressFn = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    return None


@dataclass
class CallContext:
    """What a provider may use besides its spec: settings, cancellation, progress."""

    settings: Settings
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: ProgressFn = _no_progress
    # What this video may still spend (YTAP_BUDGET_USD minus what it already cost); None: no cap.
    budget_remaining_usd: float | None = None


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


@dataclass(frozen=True)
class ImageSpec:
    title: str
    subtitle: str | None = None
    prompt: str | None = None
    style: str | None = None
    font: Path | None = None  # the title's font file (checked by the service); None: the bundled display face
    negative_prompt: str | None = None  # what the picture must not show, for providers that take one (SD)
    seed: int | None = None  # a fixed seed, for providers that take one (SD); None: random


@dataclass
class ProviderOutput:
    """What a provider made. ``segments`` for speech; ``attempts`` filled by a chain."""

    path: Path
    provider: str
    model: str | None
    cost_usd: float = 0.0
    segments: list[SegmentTiming] | None = None
    voice: str | None = None
    attempts: list[Attempt] = field(default_factory=list)


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


CAPABILITY_METHODS: dict[str, str] = {"video": "generate_video", "speech": "synthesize", "image": "generate_image"}


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` fit to record: every secret in every form it travels in, and anything credential-shaped
    (bearer tokens, auth headers, key query parameters), removed; cut to 1000 characters."""
    return scrub_secrets(text, secrets)[:1000]
