"""Capability protocols, FallbackChain, the provider catalog, one module per vendor, the local tier."""

from core.providers.base import (
    CallContext,
    ImageProvider,
    ImageSpec,
    Provider,
    ProviderOutput,
    SpeechProvider,
    SpeechSpec,
    VideoProvider,
    VideoSpec,
)
from core.providers.chain import FallbackChain
from core.providers.registry import DEFAULT_CHAINS, ProviderCatalog

__all__ = [
    "DEFAULT_CHAINS",
    "CallContext",
    "FallbackChain",
    "ImageProvider",
    "ImageSpec",
    "Provider",
    "ProviderCatalog",
    "ProviderOutput",
    "SpeechProvider",
    "SpeechSpec",
    "VideoProvider",
    "VideoSpec",
]
