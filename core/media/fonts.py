"""Fonts: the bundled set, and the facts of any font file as FreeType's consumers see them.

ytap-mcp never depends on system fonts. Bundled, by the names the tools accept (Inter,
OFL-1.1, https://github.com/rsms/inter; licence in fonts/LICENSE-Inter.txt):

* ``inter-display-black`` (Inter Display Black): titles and thumbnails (role ``display``);
* ``inter-bold`` (Inter Bold): captions and subtitles (role ``text``).

A user's own font (``import_asset`` kind=font) is read from the video's folder;
:func:`font_facts` reads what libass matches it by (the Windows-platform family name,
name ID 1, not FreeType's typographic family: Inter Display Black's is "Inter Display
Black", where Pillow says "Inter Display"), its weight and slant, and the vertical metrics
libass sizes it by. :func:`truetype` loads a Pillow font keyed by the file's identity, so
a font re-imported under the same name is never drawn from a stale cache.
"""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

__all__ = [
    "FONT_DIR",
    "BUNDLED_FONTS",
    "FontFacts",
    "bundled_font",
    "font_path",
    "font_facts",
    "truetype",
]

FONT_DIR = Path(__file__).resolve().parent / "fonts"
#: The bundled fonts by the names tools accept.
BUNDLED_FONTS: dict[str, str] = {
    "inter-display-black": "InterDisplay-Black.otf",
    "inter-bold": "Inter-Bold.otf",
}
_ROLES: dict[str, str] = {"display": "inter-display-black", "text": "inter-bold"}


def bundled_font(name: str) -> Path | None:
    """The bundled font called ``name`` (case, spaces and underscores forgiven), or None."""
    key = "-".join(name.strip().lower().replace("_", " ").replace("-", " ").split())
    file = BUNDLED_FONTS.get(key)
    return FONT_DIR / file if file else None


def font_path(name: str = "display") -> Path:
    """Absolute path of a bundled font by role (``display``, ``text``) or by name."""
    path = bundled_font(_ROLES.get(name, name))
    if path is None:
        known = ", ".join([*sorted(_ROLES), *BUNDLED_FONTS])
        raise ValueError(f"unknown bundled font {name!r}; known: {known}")
    return path


@dataclass(frozen=True)
class FontFacts:
    family: str  # name ID 1, Windows platform first: the name libass matches a style's Fontname against
    style: str  # name ID 2 ("Regular", "Bold", ...)
    full_name: str  # name ID 4
    postscript_name: str  # name ID 6: what libass's fontselect log names a memory font by
    weight: int  # OS/2 usWeightClass (400 regular, 700 bold)
    italic: bool
    cell_em: float | None  # (usWinAscent + usWinDescent) / unitsPerEm: libass's font size is this many em

    @property
    def display_name(self) -> str:
        return self.full_name or " ".join(p for p in (self.family, self.style) if p)


def font_facts(path: Path | str) -> FontFacts:
    """Names, weight, slant and libass metrics of a TrueType/OpenType file.

    Raises ValueError when the file is not a single sfnt font with a usable family name.
    """
    data = Path(path).read_bytes()
    try:
        return _facts(data)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"its font tables are malformed ({exc})") from None


def _facts(data: bytes) -> FontFacts:
    if data[:4] not in (b"\x00\x01\x00\x00", b"OTTO", b"true"):
        raise ValueError("it is not a TrueType or OpenType font")
    (count,) = struct.unpack_from(">H", data, 4)
    tables: dict[bytes, int] = {}
    for i in range(count):
        tag, _, offset, _ = struct.unpack_from(">4sIII", data, 12 + 16 * i)
        tables[tag] = offset
    if b"name" not in tables:
        raise ValueError("it has no name table")
    names = _names(data, tables[b"name"])
    family = names.get(1, "")
    if not family:
        raise ValueError("it has no family name")
    weight, italic, cell_em = 400, False, None
    if b"OS/2" in tables:
        os2 = tables[b"OS/2"]
        (weight,) = struct.unpack_from(">H", data, os2 + 4)
        (fs_selection,) = struct.unpack_from(">H", data, os2 + 62)
        italic = bool(fs_selection & 1)
        win_ascent, win_descent = struct.unpack_from(">hh", data, os2 + 74)  # libass reads them as signed
        if b"head" in tables and win_ascent + win_descent > 0:
            (units_per_em,) = struct.unpack_from(">H", data, tables[b"head"] + 18)
            if units_per_em:
                cell_em = (win_ascent + win_descent) / units_per_em
    elif b"head" in tables:
        (mac_style,) = struct.unpack_from(">H", data, tables[b"head"] + 44)
        weight, italic = (700 if mac_style & 1 else 400), bool(mac_style & 2)
    return FontFacts(family=family, style=names.get(2, ""), full_name=names.get(4, ""),
                     postscript_name=names.get(6, ""), weight=weight or 400, italic=italic, cell_em=cell_em)


def _names(data: bytes, offset: int) -> dict[int, str]:
    """Name IDs 1, 2, 4 and 6: Windows platform (English first), else Macintosh Roman."""
    _, count, strings = struct.unpack_from(">HHH", data, offset)
    best: dict[int, tuple[int, str]] = {}
    for i in range(count):
        platform, encoding, language, name_id, length, at = struct.unpack_from(">HHHHHH", data, offset + 6 + 12 * i)
        if name_id not in (1, 2, 4, 6):
            continue
        raw = data[offset + strings + at : offset + strings + at + length]
        if platform == 3 and encoding in (0, 1, 10):
            rank, text = (0 if language == 0x409 else 1), raw.decode("utf-16-be")
        elif platform == 1 and encoding == 0:
            rank, text = 2, raw.decode("mac_roman")
        else:
            continue
        text = " ".join(text.replace("\x00", "").split())
        if text and (name_id not in best or rank < best[name_id][0]):
            best[name_id] = (rank, text)
    return {k: v for k, (_, v) in best.items()}


def truetype(path: Path | str, size: int) -> FreeTypeFont:
    """A Pillow font from a file, cached per (file identity, size).

    The identity (inode, size, mtime) changes when a file is replaced (imports rename a new
    file into place), so a long-running server never draws with the font it loaded before.
    """
    path = str(path)
    st = os.stat(path)
    return _truetype(path, (st.st_ino, st.st_size, st.st_mtime_ns), size)


@functools.lru_cache(maxsize=256)
def _truetype(path: str, identity: tuple[int, int, int], size: int) -> FreeTypeFont:
    from PIL import ImageFont

    return ImageFont.truetype(path, size)
