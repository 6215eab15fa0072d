"""Bundled fonts: ytap-mcp never depends on system fonts.

Inter (OFL-1.1, https://github.com/rsms/inter; licence in fonts/LICENSE-Inter.txt):
``display`` (Inter Display Black) for titles and thumbnails, ``text`` (Inter Bold) for
captions and subtitles.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FONT_DIR", "BUNDLED_FONTS", "font_path"]

FONT_DIR = Path(__file__).resolve().parent / "fonts"
BUNDLED_FONTS: dict[str, str] = {
    "display": "InterDisplay-Black.otf",
    "text": "Inter-Bold.otf",
}


def font_path(name: str = "display") -> Path:
    """Absolute path of a bundled font by role name."""
    try:
        return FONT_DIR / BUNDLED_FONTS[name]
    except KeyError:
        raise ValueError(f"unknown bundled font {name!r}; known: {', '.join(sorted(BUNDLED_FONTS))}") from None
