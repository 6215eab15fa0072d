"""Provider ids -> classes, and the default chain of each capability (DESIGN §3).

Adding a provider touches three places: its class in ``core/providers/<vendor>.py``, one
line in ``_FACTORIES``, its id in ``DEFAULT_CHAINS``. One provider's id comes from the
settings: the self-hosted Stable Diffusion server's, ``sd:<YTAP_SD_MODEL>`` (core.providers.sd,
light to import: httpx is loaded on its first call); it leads the image chain when
``YTAP_SD_BASE_URL`` is set. Vendor modules are imported only when their provider is
first built, so start-up never pays for an SDK import. A
:class:`ProviderCatalog` keeps the instances it built (SDK clients stay referenced and
reused) and accepts ready-made extra providers (test doubles, plug-ins).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Sequence

from core.config import Settings
from core.errors import UnknownProvider
from core.providers.base import Provider
from core.providers.chain import FallbackChain
from core.providers.resilience import ConcurrencyLimits, HealthBoard, RetryPolicy
from core.providers.sd import sd_provider_id
from core.schemas import Capability

__all__ = ["DEFAULT_CHAINS", "POLICIES", "QUALITY", "VOICE_CLONERS", "ProviderCatalog"]

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
    "local:espeak-ng": ("speech", "core.providers.local:LocalEspeakSpeechProvider"),
    "local:pillow": ("image", "core.providers.local:LocalPillowImageProvider"),
}
# Registered under sd:<model>, the model read from the settings (sd_provider_id).
_SD_FACTORY: tuple[Capability, str] = ("image", "core.providers.sd:StableDiffusionImageProvider")

# DESIGN §3. openai:sora-2 is registered but opt-in: OpenAI shut the Sora API down on 2026-09-24.
DEFAULT_CHAINS: dict[Capability, tuple[str, ...]] = {
    "video": ("google:veo-3.1", "local:placeholder"),
    "speech": (
        "openai:gpt-4o-mini-tts",
        "elevenlabs:eleven_multilingual_v2",
        "google:gemini-3.8-flash-tts",
        "local:espeak-ng",
    ),
    "image": ("openai:gpt-image-2", "google:gemini-3.1-flash-image", "local:pillow"),
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
}
# Reference request per capability, to compare prices in one unit: 8 s of video, one
# minute of speech (~1000 characters), one image.
_REFERENCE_UNITS = {"video": 8.0, "speech": 1000.0, "image": 1.0}
POLICIES = ("order", "cheapest", "quality", "balanced")


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
        with self._lock:
            if provider_id not in self._instances:
                module_name, cls_name = self._factories[provider_id][1].split(":")
                cls = getattr(importlib.import_module(module_name), cls_name)
                self._instances[provider_id] = cls(self.settings)
            return self._instances[provider_id]

    def chain_ids(self, capability: Capability, override: Sequence[str] | None = None) -> list[str]:
        """The ids of a chain: the per-call list, else the environment's, else the default."""
        configured = {
            "video": self.settings.video_providers,
            "speech": self.settings.speech_providers,
            "image": self.settings.image_providers,
        }[capability]
        ids = list(dict.fromkeys(override or configured or self.default_chain(capability)))
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

    def default_chain(self, capability: Capability) -> tuple[str, ...]:
        """DEFAULT_CHAINS, with the user's own Stable Diffusion server first for images when it is configured
        (free, local, and set up on purpose: it should be asked before a paid vendor)."""
        chain = DEFAULT_CHAINS[capability]
        if capability == "image" and self.settings.sd_base_url:
            chain = (sd_provider_id(self.settings), *chain)
        return chain

    def ranked_ids(self, capability: Capability, override: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
        """The chain in the order the policy gives, with why each provider is where it is.

        ``order`` (default) keeps the configured order. ``cheapest`` sorts by the price of a
        reference request, ``quality`` by quality score, ``balanced`` by quality per dollar
        (quality - 0.5 * price in dollars of the reference request). A per-call ``providers``
        list is always used as given. Providers cooling down move behind the healthy ones;
        the local tier stays last, the floor that always works.
        """
        from core.providers.pricing import cost_usd

        ids = self.chain_ids(capability, override)
        policy = self.settings.chain_policy
        if override or policy == "order":
            return ids, {}
        unit = _REFERENCE_UNITS[capability]

        def price(pid: str) -> float:
            return cost_usd(pid, unit)

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

    def chain(self, capability: Capability, override: Sequence[str] | None = None) -> FallbackChain:
        ids, why = self.ranked_ids(capability, override)
        return FallbackChain(
            capability,
            [self.get(i) for i in ids],
            decisions=why,
            retry=self.retry,
            health=self.health,
            limits=self.limits,
        )
