"""The look of a thumbnail: palettes chosen from the title and the style's words.

``style`` is free text. Words steer the design: palette words (``dark``, ``bright``,
``red``, ``blue``, ``green``, ``purple``, ``pink``, ``orange``, ``gold``, ``teal``,
``warm``, ``cool``, ``tech``, ``mono`` ...), ``caps``/``upper`` or ``nocaps``/``lower``
(titles are upper-cased by default), ``center``/``left``, ``plain`` (no highlighted
word), ``yellow`` (whole title in the highlight colour). Anything else only seeds the hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["RGB", "Palette", "PALETTES", "choose_palette"]

RGB = tuple[int, int, int]

_STROKE_RGB: RGB = (10, 10, 14)
_WHITE: RGB = (255, 255, 255)


@dataclass(frozen=True)
class Palette:
    name: str
    tags: frozenset[str]
    dark: RGB  # deep end of the gradient, also the tint of the text scrim
    mid: RGB  # vivid end of the gradient
    glow: RGB  # soft light
    accent: RGB  # shapes and the subtitle pill
    highlight: RGB  # the emphasised title word


def _hex(s: str) -> RGB:
    s = s.lstrip("#")
    return (int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16))


def _pal(name: str, tags: str, dark: str, mid: str, glow: str, accent: str, highlight: str = "#ffd60a") -> Palette:
    return Palette(name, frozenset(tags.split()), _hex(dark), _hex(mid), _hex(glow), _hex(accent), _hex(highlight))


PALETTES: tuple[Palette, ...] = (
    _pal("ocean", "blue cool tech", "#050d24", "#1d4ed8", "#38bdf8", "#22d3ee"),
    _pal("cyber", "tech purple dark cool", "#07031a", "#6d28d9", "#22d3ee", "#22d3ee", "#ffe14d"),
    _pal("crimson", "red warm dark", "#1a0306", "#c1121f", "#ff6b35", "#ffba08"),
    _pal("sunset", "warm orange bright pink", "#2b0a3d", "#e4572e", "#ffb627", "#ff3c8e", "#ffd23f"),
    _pal("emerald", "green cool", "#021a12", "#059669", "#a3e635", "#a3e635", "#fde047"),
    _pal("magenta", "pink purple bright warm", "#1f0322", "#be185d", "#f472b6", "#fb7185", "#fde047"),
    _pal("teal", "teal blue cool tech green", "#031b24", "#0e7490", "#2dd4bf", "#5eead4", "#ffd166"),
    _pal("gold", "gold warm dark yellow orange", "#0c0a09", "#92400e", "#f59e0b", "#fbbf24", "#ffd60a"),
    _pal("noir", "mono dark red", "#050505", "#2a2a30", "#ef4444", "#ef4444", "#ffd60a"),
    _pal("royal", "purple blue dark", "#0f0c29", "#4338ca", "#a78bfa", "#f472b6", "#ffd60a"),
    _pal("sky", "bright blue cool", "#0c4a6e", "#0ea5e9", "#fef08a", "#facc15", "#ffe14d"),
    _pal("lava", "orange red warm bright", "#260b00", "#ea580c", "#fde047", "#facc15", "#ffd60a"),
)

_SYNONYMS: dict[str, str] = {
    "dark": "dark", "night": "dark", "moody": "dark", "black": "mono", "noir": "mono", "mono": "mono",
    "minimal": "mono", "monochrome": "mono", "grey": "mono", "gray": "mono",
    "bright": "bright", "light": "bright", "vivid": "bright", "fun": "bright", "colorful": "bright",
    "colourful": "bright", "kids": "bright", "pop": "bright",
    "red": "red", "crimson": "red", "fire": "red", "blue": "blue", "ocean": "blue", "sea": "blue",
    "tech": "tech", "technology": "tech", "science": "tech", "code": "tech", "coding": "tech",
    "ai": "tech", "cyber": "tech", "futuristic": "tech", "space": "tech", "digital": "tech",
    "warm": "warm", "cozy": "warm", "cool": "cool", "cold": "cool", "calm": "cool",
    "green": "green", "nature": "green", "eco": "green", "forest": "green",
    "purple": "purple", "violet": "purple", "pink": "pink", "orange": "orange",
    "gold": "gold", "luxury": "gold", "money": "gold", "finance": "gold", "yellow": "yellow",
    "teal": "teal", "cyan": "teal",
}

def _style_words(style: str | None) -> list[str]:
    return re.findall(r"[a-z0-9]+", (style or "").lower())


def _seed(title: str, style: str | None) -> bytes:
    return hashlib.sha256(f"{(style or '').strip().lower()}\x00{title}".encode()).digest()


def choose_palette(title: str, style: str | None = None) -> Palette:
    """The palette for this title + style: style words narrow the choice, the hash picks."""
    tags = {_SYNONYMS[w] for w in _style_words(style) if w in _SYNONYMS}
    candidates: Sequence[Palette] = PALETTES
    if tags:
        scored = [(len(tags & p.tags), p) for p in PALETTES]
        best = max(s for s, _ in scored)
        if best:
            candidates = [p for s, p in scored if s == best]
    return candidates[_seed(title, style)[0] % len(candidates)]
