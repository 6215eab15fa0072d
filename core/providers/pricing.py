"""The one pricing table: every paid provider's price, its unit, its source and the date read.

Costs are estimates computed from what we sent or received (seconds of video, characters
of text, images); vendors bill on their own meters (tokens for gpt-4o-mini-tts and Gemini
TTS), so each entry says how its unit maps onto the vendor's. Update a price here, with its
source and date, and every report follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Price", "PRICES", "price_for", "cost_usd", "scene_cost_usd"]

Unit = Literal["second", "character", "image"]


@dataclass(frozen=True)
class Price:
    usd_per_unit: float
    unit: Unit
    source: str
    as_of: str
    note: str = ""


PRICES: dict[str, Price] = {
    # --- video: per second of generated video ---
    "google:veo-3.1": Price(
        0.40, "second", "https://cloud.google.com/vertex-ai/generative-ai/pricing#veo", "2026-11-24",
        "Veo 3.1 video with audio, 720p/1080p, Vertex AI",
    ),
    "openai:sora-2": Price(
        0.10, "second", "https://platform.openai.com/docs/pricing", "2026-11-24",
        "sora-2 at 720p; the OpenAI Sora API shut down on 2026-09-24 (opt-in for compatible endpoints)",
    ),
    # Replicate (core.providers.replicate): billed per second of output video. NOT verified against the
    # model pages from this machine (offline): figures as Replicate listed them in 2025; check before relying.
    "replicate:seedance-1-lite": Price(
        0.036, "second", "https://replicate.com/bytedance/seedance-1-lite", "2026-12-05",
        "720p output ($0.018/s at 480p, $0.072/s at 1080p); the adapter asks for 720p",
    ),
    "replicate:seedance-1-pro": Price(
        0.15, "second", "https://replicate.com/bytedance/seedance-1-pro", "2026-12-05", "1080p output",
    ),
    "replicate:hailuo-02": Price(
        0.045, "second", "https://replicate.com/minimax/hailuo-02", "2026-12-05",
        "768p output, $0.27 per 6 s clip; 1080p is $0.08/s",
    ),
    # --- speech: per character of input text ---
    "openai:gpt-4o-mini-tts": Price(
        0.000015, "character", "https://platform.openai.com/docs/pricing", "2026-11-24",
        "billed as $0.60/1M text tokens + $12/1M audio tokens, about $0.015 per minute of speech; "
        "~1000 characters per minute of speech gives $0.000015 per character",
    ),
    "openai:tts-1-hd": Price(0.00003, "character", "https://platform.openai.com/docs/pricing", "2026-11-24",
                             "$30 per 1M characters"),
    "elevenlabs:eleven_multilingual_v2": Price(
        0.0001, "character", "https://elevenlabs.io/pricing/api", "2026-11-24",
        "$0.10 per 1,000 characters (Multilingual v2/v3, API pay-as-you-go)",
    ),
    "google:gemini-3.8-flash-tts": Price(
        0.000014, "character", "https://ai.google.dev/gemini-api/docs/pricing", "2026-11-24",
        "launch pricing to 2026-12-31: $0.50/1M text tokens + $9/1M audio tokens at 25 tokens per second "
        "of audio; ~1000 characters per minute gives about $0.0000136 per character. Announced to double "
        "on 2027-01-01 (about $0.000027 per character): update this entry then",
    ),
    # --- image: per generated image ---
    "openai:gpt-image-2": Price(
        0.063, "image", "https://platform.openai.com/docs/pricing", "2026-11-24",
        "one 1536x1024 image at medium quality. NOT verified against OpenAI's page: secondary sources give "
        "$30/1M image output tokens; the figure kept is gpt-image-1's medium 1536x1024 price, an upper "
        "estimate so the budget errs on the safe side",
    ),
    "google:gemini-3.1-flash-image": Price(
        0.067, "image", "https://ai.google.dev/gemini-api/docs/pricing", "2026-11-24",
        "about 1120 output tokens per 1K image at $60/1M image output tokens",
    ),
    # --- music: per second of music asked for (music_length_ms) ---
    "elevenlabs:music": Price(
        0.0125, "second", "https://docs.venice.ai/models/music", "2026-12-05",
        "$0.75 per minute of Eleven Music. NOT verified against ElevenLabs' own page (its API sells music as plan "
        "minutes); the figure is a reseller's pass-through price, an upper estimate for the budget",
    ),
}


def price_for(provider_id: str) -> Price | None:
    """None for free providers (the local tier, self-hosted servers). A still in motion,
    ``motion:<image id>``, costs what its still costs: one image."""
    return PRICES.get(provider_id.removeprefix("motion:"))


def cost_usd(provider_id: str, units: float) -> float:
    price = price_for(provider_id)
    return round(price.usd_per_unit * units, 6) if price else 0.0


def scene_cost_usd(provider_id: str, duration_s: float) -> float:
    """What one scene of ``duration_s`` costs: per second of video, or one image for a still in motion."""
    price = price_for(provider_id)
    if price is None:
        return 0.0
    return cost_usd(provider_id, 1.0 if price.unit == "image" else duration_s)
