"""Provider ids -> classes, and the default chain of each capability (DESIGN §3).

Adding a provider touches three places: its class in ``core/providers/<vendor>.py``, one
line in ``_FACTORIES``, its id in ``DEFAULT_CHAINS``. One provider's id comes from the
settings: the self-hosted Stable Diffusion server's, ``sd:<YTAP_SD_MODEL>`` (core.providers.sd,
light to import: httpx is loaded on its first call); it leads the image chain when
``YTAP_SD_BASE_URL`` is set. Vendor modules are imported only when their provider is
first built, so start-up never pays for an SDK import. A
:class:`ProviderCatalog` keeps the instances it built (SDK clients stay referenced and
reused) and accepts ready-made extra providers (test doubles, plug-ins).

Every image provider but the local card is also a video provider, ``motion:<image id>``
(core.providers.motion: its still, moved by a slow camera), built around the image provider's
instance. In a video chain, :data:`MOTION_TIER` stands for ``motion:<id>`` of each provider of
the image chain (local card excepted), in that chain's order.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Sequence

from core.config import Settings
from core.errors import UnknownProvider
from core.providers.base import Provider
from core.providers.chain import FallbackChain
from core.providers.motion import MOTION_PREFIX, can_move, motion_id
from core.providers.resilience import ConcurrencyLimits, HealthBoard, RetryPolicy
from core.providers.sd import sd_provider_id
from core.schemas import Capability

__all__ = ["video_tier", "DEFAULT_CHAINS", "MOTION_TIER", "AGGREGATOR_DEFAULT", "POLICIES", "QUALITY", "VOICE_CLONERS", "ProviderCatalog"]

# id -> (capability, "module:Class")
_FACTORIES: dict[str, tuple[Capability, str]] = {
    "google:veo-3.1": ("video", "core.providers.google:GoogleVeoVideoProvider"),
    "openai:sora-2": ("video", "core.providers.openai:OpenAIVideoProvider"),
    "openai:gpt-4o-mini-tts": ("speech", "core.providers.openai:OpenAISpeechProvider"),
    "openai:tts-1-hd": ("speech", "core.providers.openai:OpenAITTSHDSpeechProvider"),
    "elevenlabs:eleven_multilingual_v2": ("speech", "core.providers.elevenlabs:ElevenLabsSpeechProvider"),
    "google:gemini-3.8-flash-tts": ("speech", "core.providers.google:GeminiSpeechProvider"),
    "openai:gpt-image-2": ("image", "core.providers.openai:OpenAIImageProvider"),
    "google:gemini-3.1-flash-image": ("image", "core.providers.google:GeminiImageProvider"),
    "local:placeholder": ("video", "core.providers.local:LocalPlaceholderVideoProvider"),
    "replicate:seedance-1-lite": ("video", "core.providers.replicate:SeedanceLiteVideoProvider"),
    "replicate:seedance-1-pro": ("video", "core.providers.replicate:SeedanceProVideoProvider"),
    "replicate:hailuo-02": ("video", "core.providers.replicate:HailuoVideoProvider"),
    "local:espeak-ng": ("speech", "core.providers.local:LocalEspeakSpeechProvider"),
    "local:kokoro": ("speech", "core.providers.kokoro:LocalKokoroSpeechProvider"),
    "local:pillow": ("image", "core.providers.local:LocalPillowImageProvider"),
    "elevenlabs:music": ("music", "core.providers.elevenlabs_music:ElevenLabsMusicProvider"),
    "local:ambient": ("music", "core.providers.local:LocalAmbientMusicProvider"),
    "pexels:video": ("video", "core.providers.stock.pexels:PexelsVideoProvider"),
    "pixabay:video": ("video", "core.providers.stock.pixabay:PixabayVideoProvider"),
    "commons:video": ("video", "core.providers.stock.commons:CommonsVideoProvider"),
}
# Registered under sd:<model>, the model read from the settings (sd_provider_id).
_SD_FACTORY: tuple[Capability, str] = ("image", "core.providers.sd:StableDiffusionImageProvider")

_MOTION_FACTORY: tuple[Capability, str] = ("video", "core.providers.motion:MotionVideoProvider")
# In a video chain: motion:<id> of every provider of the image chain but the local card (see default_chain).
MOTION_TIER = "motion:*"
AGGREGATOR_DEFAULT = "replicate:seedance-1-lite"  # the video aggregator's default model (core.providers.replicate)

# DESIGN §3. openai:sora-2 is registered but opt-in: OpenAI shut the Sora API down on 2026-09-24.
# Video: AI video, then stills in motion, then stock footage (free: keyed tiers first, Commons needs no key),
# then the placeholder card.
DEFAULT_CHAINS: dict[Capability, tuple[str, ...]] = {
    "video": ("google:veo-3.1", AGGREGATOR_DEFAULT, MOTION_TIER, "pexels:video", "pixabay:video", "commons:video",
              "local:placeholder"),
    "speech": (
        "openai:gpt-4o-mini-tts",
        "elevenlabs:eleven_multilingual_v2",
        "google:gemini-3.8-flash-tts",
        "local:kokoro",
        "local:espeak-ng",
    ),
    "image": ("openai:gpt-image-2", "google:gemini-3.1-flash-image", "local:pillow"),
    "music": ("elevenlabs:music", "local:ambient"),
}


# Vendors a workspace voice can be cloned with (clone_voice): vendor -> the provider that clones,
# deletes and speaks it. The clone lives in that vendor's account: only providers whose id starts
# with "<vendor>:" can speak it (core/services/voices.py narrows the speech chain to them).
VOICE_CLONERS: dict[str, str] = {"elevenlabs": "elevenlabs:eleven_multilingual_v2"}


# Quality scores (0..1) for the "quality" and "balanced" chain policies: our judgement of
# output quality for YouTube use, per capability, as of 2026-11. The local tiers are the floor.
QUALITY: dict[str, float] = {
    "google:veo-3.1": 0.95,
    "openai:sora-2": 0.85,
    "elevenlabs:eleven_multilingual_v2": 0.95,
    "openai:gpt-4o-mini-tts": 0.85,
    "google:gemini-3.8-flash-tts": 0.85,
    "openai:tts-1-hd": 0.75,
    "openai:gpt-image-2": 0.9,
    "google:gemini-3.1-flash-image": 0.85,
    "replicate:seedance-1-pro": 0.85,
    "replicate:seedance-1-lite": 0.78,
    "replicate:hailuo-02": 0.8,
    # Stills in motion: a real picture of the scene, but nothing in it moves.
    "motion:openai:gpt-image-2": 0.6,
    "motion:google:gemini-3.1-flash-image": 0.58,
    # Stock footage: real moving footage, free, but searched, not made for the scene.
    "pexels:video": 0.55,
    "pixabay:video": 0.5,
    "commons:video": 0.35,
    "elevenlabs:music": 0.9,
    # Local tiers sort after every paid one whatever their score; among them a neural voice beats espeak-ng.
    "local:kokoro": 0.6,
}
# Reference request per capability, to compare prices in one unit: 8 s of video, one
# minute of speech (~1000 characters), one image, one minute of music.
_REFERENCE_UNITS = {"video": 8.0, "speech": 1000.0, "image": 1.0, "music": 60.0}
POLICIES = ("order", "cheapest", "quality", "balanced")


# Video tiers, by id prefix (anything else is AI video): what provider_report shows an agent mixing tiers.
_VIDEO_TIERS = {MOTION_PREFIX: "stills_in_motion", "local:": "placeholder", "pexels:": "stock", "pixabay:": "stock",
                "commons:": "stock"}


def video_tier(provider_id: str) -> str:
    return next((tier for prefix, tier in _VIDEO_TIERS.items() if provider_id.startswith(prefix)), "ai_video")


class ProviderCatalog:
    def __init__(
        self,
        settings: Settings,
        extra: Iterable[Provider] = (),
        *,
        retry: RetryPolicy | None = None,
        health: HealthBoard | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.health = health or HealthBoard()
        self.limits = ConcurrencyLimits(overrides=dict(settings.provider_concurrency))
        self._instances: dict[str, Provider] = {p.id: p for p in extra}
        self._factories = {**_FACTORIES, sd_provider_id(settings): _SD_FACTORY}
        self._capabilities: dict[str, Capability] = {i: c for i, (c, _) in self._factories.items()}
        self._capabilities.update({p.id: p.capability for p in extra})
        for image_id in [i for i, c in self._capabilities.items() if c == "image" and can_move(i)]:
            self._factories[motion_id(image_id)] = _MOTION_FACTORY
            self._capabilities[motion_id(image_id)] = "video"
        self._lock = threading.Lock()

    def known_ids(self, capability: Capability | None = None) -> list[str]:
        return sorted(i for i, c in self._capabilities.items() if capability is None or c == capability)

    def capability_of(self, provider_id: str) -> Capability:
        try:
            return self._capabilities[provider_id]
        except KeyError:
            raise UnknownProvider(
                f"unknown provider {provider_id!r}; known providers: {', '.join(self.known_ids())}"
            ) from None

    def get(self, provider_id: str) -> Provider:
        self.capability_of(provider_id)  # raises UnknownProvider listing the known ids
        # A still in motion is built around its image provider's instance (got first: the lock is not re-entrant).
        moved = provider_id.startswith(MOTION_PREFIX) and provider_id not in self._instances
        image = self.get(provider_id.removeprefix(MOTION_PREFIX)) if moved else None
        with self._lock:
            if provider_id not in self._instances:
                module_name, cls_name = self._factories[provider_id][1].split(":")
                cls = getattr(importlib.import_module(module_name), cls_name)
                self._instances[provider_id] = cls(self.settings) if image is None else cls(self.settings, image)
            return self._instances[provider_id]

    def chain_ids(self, capability: Capability, override: Sequence[str] | None = None) -> list[str]:
        """The ids of a chain: the per-call list, else the environment's, else the default."""
        configured = {
            "video": self.settings.video_providers,
            "speech": self.settings.speech_providers,
            "image": self.settings.image_providers,
            "music": self.settings.music_providers,
        }[capability]
        ids = list(dict.fromkeys(self._expand(override or configured or self.default_chain(capability))))
        if not ids:
            raise UnknownProvider(
                f"the {capability} chain is empty; known {capability} providers: "
                f"{', '.join(self.known_ids(capability))}"
            )
        for pid in ids:
            cap = self.capability_of(pid)
            if cap != capability:
                raise UnknownProvider(
                    f"{pid!r} is a {cap} provider, not a {capability} one; known {capability} providers: "
                    f"{', '.join(self.known_ids(capability))}"
                )
        return ids

    def _expand(self, ids: Sequence[str]) -> list[str]:
        """``ids`` with MOTION_TIER replaced by motion:<id> of each provider of the image chain (local card excepted)."""
        if MOTION_TIER not in ids:
            return list(ids)
        moved = [motion_id(i) for i in self.chain_ids("image") if can_move(i)]
        return [m for i in ids for m in (moved if i == MOTION_TIER else [i])]

    def default_chain(self, capability: Capability) -> tuple[str, ...]:
        """DEFAULT_CHAINS, with the user's own Stable Diffusion server first for images when it is configured
        (free, local, and set up on purpose: it should be asked before a paid vendor)."""
        chain = DEFAULT_CHAINS[capability]
        if capability == "image" and self.settings.sd_base_url:
            chain = (sd_provider_id(self.settings), *chain)
        return chain

    def ranked_ids(self, capability: Capability, override: Sequence[str] | None = None, *,
                   resolved: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
        """The chain in the order the policy gives, with why each provider is where it is.

        ``order`` (default) keeps the configured order. ``cheapest`` sorts by the price of a
        reference request, ``quality`` by quality score, ``balanced`` by quality per dollar
        (quality - 0.5 * price in dollars of the reference request). A per-call ``providers``
        list is always used as given. Providers cooling down move behind the healthy ones;
        the local tier stays last, the floor that always works. ``resolved``: the ids
        :meth:`chain_ids` already gave for ``override`` (a plan's), not resolved again.
        """
        from core.providers.pricing import cost_usd, scene_cost_usd

        ids = list(resolved) if resolved is not None else self.chain_ids(capability, override)
        policy = self.settings.chain_policy
        if override or policy == "order":
            return ids, {}
        unit = _REFERENCE_UNITS[capability]

        def price(pid: str) -> float:
            return scene_cost_usd(pid, unit) if capability == "video" else cost_usd(pid, unit)

        def score(pid: str) -> float:
            q = QUALITY.get(pid, 0.0 if pid.startswith("local:") else 0.5)
            if policy == "cheapest":
                return -price(pid)
            if policy == "quality":
                return q
            return q - 0.5 * price(pid)

        def key(pid: str) -> tuple[int, int, float]:
            local = pid.startswith("local:")
            cooling = self.health.cooling_down(pid) is not None
            return (int(local), int(cooling), -score(pid))

        ranked = sorted(ids, key=key)
        why = {
            pid: f"{policy} policy: score {score(pid):.3f} (quality {QUALITY.get(pid, 0.0):.2f}, "
                 f"${price(pid):.4f} per reference request)"
                 + ("; cooling down" if self.health.cooling_down(pid) else "")
            for pid in ranked
        }
        return ranked, why

    def chain(self, capability: Capability, override: Sequence[str] | None = None, *,
              resolved: Sequence[str] | None = None) -> FallbackChain:
        ids, why = self.ranked_ids(capability, override, resolved=resolved)
        return FallbackChain(
            capability,
            [self.get(i) for i in ids],
            decisions=why,
            retry=self.retry,
            health=self.health,
            limits=self.limits,
        )
