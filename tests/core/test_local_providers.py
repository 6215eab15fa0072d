"""The local tier through the provider protocol (the media modules have their own tests)."""

from __future__ import annotations

from pathlib import Path

import anyio

from core.config import Settings
from core.media.probe import probe
from core.providers import CallContext, ProviderCatalog, SpeechSpec


def test_local_espeak_speaks_with_the_default_voice_when_given_another_vendors_voice(
    settings: Settings, tmp_path: Path
) -> None:
    provider = ProviderCatalog(settings).get("local:espeak-ng")
    out = tmp_path / "n.wav"
    result = anyio.run(provider.synthesize, SpeechSpec(segments=("Hello there.",), voice="alloy"), out,
                       CallContext(settings=settings))
    assert "en-us" in (result.voice or "") and "alloy" in (result.voice or "")
    info = probe(out)
    assert info.audio and info.audio.sample_rate == 48000 and info.audio.channels == 2
    assert result.segments and result.segments[0].words


def test_local_providers_are_always_available(settings: Settings) -> None:
    catalog = ProviderCatalog(settings)
    for pid in ("local:placeholder", "local:espeak-ng", "local:pillow"):
        provider = catalog.get(pid)
        assert provider.unavailable_reason() is None and provider.paid is False
