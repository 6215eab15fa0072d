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
from collections.abc import Callable
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
    "right_to_left",
    "RIGHT_TO_LEFT_SCRIPTS",
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


# --- every script: the fallback faces, coverage, and line breaking -------------------------------

#: The faces drawn where the chosen font lacks a character (subsets of Noto Sans Bold, OFL-1.1,
#: licence in fonts/LICENSE-Noto.txt, rebuilt by core/media/font_subsets.py (python -m core.media.font_subsets)), by what they cover.
FALLBACK_FONTS: dict[str, str] = {
    "arabic": "NotoSansArabic-Bold.subset.ttf",
    "hebrew": "NotoSansHebrew-Bold.subset.ttf",
    "devanagari": "NotoSansDevanagari-Bold.subset.ttf",
    "thai": "NotoSansThai-Bold.subset.ttf",
    "cjk-jp": "NotoSansCJKjp-Bold.subset.otf",
    "cjk-sc": "NotoSansCJKsc-Bold.subset.otf",
    "cjk-tc": "NotoSansCJKtc-Bold.subset.otf",
    "cjk-kr": "NotoSansCJKkr-Bold.subset.otf",
}
#: Scripts whose letters change shape with their neighbours or run right to left: drawn only
#: through HarfBuzz and FriBiDi (Pillow's raqm layout; libass has both built in).
COMPLEX_SCRIPTS = ("arabic", "hebrew", "devanagari", "thai")

_SCRIPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0590, 0x05FF, "hebrew"), (0xFB1D, 0xFB4F, "hebrew"),
    (0x0600, 0x08FF, "arabic"), (0xFB50, 0xFDFF, "arabic"), (0xFE70, 0xFEFF, "arabic"),
    (0x0900, 0x097F, "devanagari"), (0xA8E0, 0xA8FF, "devanagari"),
    (0x0E00, 0x0E7F, "thai"),
    (0x3040, 0x30FF, "kana"), (0x31F0, 0x31FF, "kana"), (0xFF66, 0xFF9F, "kana"),
    (0x1100, 0x11FF, "hangul"), (0x3130, 0x318F, "hangul"), (0xAC00, 0xD7AF, "hangul"),
    (0x3400, 0x9FFF, "han"), (0xF900, 0xFAFF, "han"), (0x20000, 0x3FFFF, "han"),
    (0x3000, 0x303F, "cjk-punct"), (0xFF00, 0xFF65, "cjk-punct"),
)


def script_of(ch: str) -> str | None:
    """The script ``ch`` belongs to among those that need a fallback face (None: any other)."""
    cp = ord(ch)
    for lo, hi, name in _SCRIPT_RANGES:
        if lo <= cp <= hi:
            return name
    return None


#: The scripts written right to left among those the bundled faces cover.
RIGHT_TO_LEFT_SCRIPTS = frozenset({"arabic", "hebrew"})


def right_to_left(text: str) -> bool:
    """Whether ``text`` runs right to left as a whole: its first letter is Arabic or Hebrew (the base
    direction FriBiDi and libass give a paragraph, rule P2 of the Unicode bidi algorithm, for letters)."""
    for ch in text:
        if ch.isalpha():
            return script_of(ch) in RIGHT_TO_LEFT_SCRIPTS
    return False


def _cjk_order(text: str, language: str | None) -> list[str]:
    """The CJK faces to try, the one whose Han forms suit the text first."""
    lang = (language or "").lower().replace("_", "-")
    scripts = {script_of(c) for c in text}
    if lang.startswith("ja") or "kana" in scripts:
        first = "cjk-jp"
    elif lang.startswith("ko") or "hangul" in scripts:
        first = "cjk-kr"
    elif lang.startswith(("zh-hant", "zh-tw", "zh-hk", "zh-mo")):
        first = "cjk-tc"
    else:
        first = "cjk-sc"
    return [first, *(k for k in ("cjk-sc", "cjk-tc", "cjk-jp", "cjk-kr") if k != first)]


@functools.lru_cache(maxsize=32)
def _coverage(path: str, identity: tuple[int, int, int]) -> frozenset[int]:
    from core.media.text import _mapped_code_points

    return frozenset(_mapped_code_points(Path(path).read_bytes()))


def coverage(path: Path | str) -> frozenset[int]:
    """Every code point ``path`` maps to a glyph of its own (its cmap), read once per file version."""
    st = os.stat(path)
    return _coverage(str(path), (st.st_ino, st.st_size, st.st_mtime_ns))


def _drawn(ch: str) -> bool:
    """Whether ``ch`` needs a glyph (spaces and invisible format characters do not)."""
    import unicodedata

    return not (ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf"))


def missing_characters(text: str, path: Path | str) -> list[str]:
    """The characters of ``text`` that ``path`` has no glyph for, each once, in order."""
    have = coverage(path)
    seen: dict[str, None] = {}
    for ch in text:
        if _drawn(ch) and ord(ch) not in have:
            seen.setdefault(ch)
    return list(seen)


def needs_complex_layout(text: str) -> bool:
    return any(script_of(c) in COMPLEX_SCRIPTS for c in text)


def candidate_faces(text: str, primary: Path, language: str | None = None) -> list[Path]:
    """``primary``, then the fallback faces, most suitable for ``text`` first."""
    scripts = {script_of(c) for c in text}
    order = [k for k in COMPLEX_SCRIPTS if k in scripts] + _cjk_order(text, language)
    order += [k for k in FALLBACK_FONTS if k not in order]
    return [Path(primary), *(FONT_DIR / FALLBACK_FONTS[k] for k in order)]


def face_for(text: str, primary: Path, language: str | None = None) -> Path:
    """The first face that draws every character of ``text``: ``primary``, else a bundled fallback.

    Raises :class:`~core.errors.InputError` naming the characters when no single face has them
    all (drawing them would show boxes), or when ``text`` needs shaping this Pillow cannot do.
    """
    for face in candidate_faces(text, primary, language):
        if not missing_characters(text, face):
            break
    else:
        from core.errors import InputError

        missing = missing_characters(text, primary)
        lacking = [c for c in missing if all(ord(c) not in coverage(f) for f in candidate_faces(c, primary))]
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in (lacking or missing)[:8])
        why = ("no bundled font has " + shown) if lacking else (
            "no one bundled font has all of its characters (it mixes scripts: " + shown + ")")
        raise InputError(f"the text {text[:40]!r} cannot be drawn without boxes: {why}")
    if face != Path(primary) and needs_complex_layout(text):
        require_complex_layout(text)
    return face


def require_complex_layout(text: str) -> None:
    """Raise unless Pillow can shape and order ``text`` (its raqm layout loads FriBiDi at run time)."""
    from PIL import features

    if not features.check("raqm"):
        from core.errors import MediaError

        raise MediaError(f"the text {text[:40]!r} is in a script that must be shaped (Arabic, Hebrew, Devanagari, "
                         "Thai), and Pillow's complex text layout is unavailable: Pillow's wheels load FriBiDi "
                         "from the system; install it (Debian/Ubuntu: apt-get install libfribidi0)")


# Characters a line may not start with (closing punctuation, small kana) or end with (opening).
_NO_START = set("、。，．・：；？！」』）】〕〉》”’ー…ゃゅょっャュョッぁぃぅぇぉァィゥェォ,.!?:;)]}%")
_NO_END = set("「『（【〔〈《“‘([{")
_PHRASED = {"kana": "ja", "han": "zh", "thai": "th"}


@functools.lru_cache(maxsize=8)
def _budoux(kind: str):  # -> budoux.Parser
    import budoux

    return {"ja": budoux.load_default_japanese_parser, "zh-hans": budoux.load_default_simplified_chinese_parser,
            "zh-hant": budoux.load_default_traditional_chinese_parser, "th": budoux.load_default_thai_parser}[kind]()


def _phrases(chunk: str, language: str | None) -> list[str]:
    """Where ``chunk`` (text without spaces) may break: BudouX's phrases for Japanese, Chinese
    and Thai (a small model shipped in its wheel, no dictionary), the whole chunk otherwise."""
    scripts = {script_of(c) for c in chunk}
    lang = (language or "").lower()
    if "kana" in scripts or lang.startswith("ja") and "han" in scripts:
        kind = "ja"
    elif "han" in scripts:
        kind = "zh-hant" if lang.startswith(("zh-hant", "zh-tw", "zh-hk")) else "zh-hans"
    elif "thai" in scripts:
        kind = "th"
    else:
        return [chunk]
    pieces = [p for p in _budoux(kind).parse(chunk) if p]
    # Kinsoku: closing punctuation stays with what precedes it, opening with what follows.
    out: list[str] = []
    for p in pieces:
        if out and (p[0] in _NO_START or out[-1][-1] in _NO_END):
            out[-1] += p
        else:
            out.append(p)
    return out


def break_lines(text: str, max_width: float, width: Callable[[str], float], *, language: str | None = None
                ) -> list[str]:
    """``text`` broken greedily into lines no wider than ``max_width`` (``width`` measures a line).

    Breaks fall at spaces, and inside unspaced Japanese, Chinese and Thai at phrase boundaries
    (:func:`_phrases`); a piece wider than a line is split between characters (never before a
    combining mark, never so a line starts with closing punctuation).
    """
    from core.media.text import break_token

    def fits(s: str) -> bool:
        return width(s) <= max_width

    lines: list[str] = []
    current = ""
    for w_i, word in enumerate(text.split()):
        for p_i, phrase in enumerate(_phrases(word, language)):
            glue = " " if p_i == 0 and current else ""
            for piece in [phrase] if fits(phrase) else break_token(phrase, fits):
                if current and fits(current + glue + piece):
                    current = current + glue + piece
                elif not current:
                    current = piece
                else:
                    lines.append(current)
                    current = piece
                glue = ""
    if current:
        lines.append(current)
    return lines
