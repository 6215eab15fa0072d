"""Rebuild the bundled fallback fonts: subsets of Noto (OFL-1.1) for the scripts Inter lacks.

Run by hand, never imported by the server (the wheel ships the font files it writes); fontTools,
a dev dependency, is imported only when it runs.
Run from the repository root, with fontTools installed (``pip install -e '.[dev]'``) and the
Debian packages ``fonts-noto-core`` and ``fonts-noto-cjk`` installed (the sources)::

    python -m core.media.font_subsets

What it keeps, and why:

* Arabic, Hebrew, Devanagari, Thai (Noto Sans <script> Bold): every glyph the font has for
  its script's blocks (the fonts are small), and every layout feature, so HarfBuzz still
  joins Arabic, forms Devanagari conjuncts and places Thai marks. Merged with Noto Sans
  Bold's Latin (Basic Latin, Latin-1, Latin Extended-A, with its kerning; ~54 kB): a title
  or caption in these scripts often carries a Latin word ("Python", "iPhone 16"), and Pillow
  draws a line in one face, so the face must have both. Where both fonts have a character
  (digits, punctuation), the script font's glyph is kept. The CJK fonts have Latin already.
* CJK (Noto Sans CJK Bold, one face per region, because a Han character's shape differs
  between Japan, mainland China, Taiwan and Korea): the characters of the national
  standard character sets that Python's codecs enumerate, with no word list needed:
  JIS X 0208 for Japanese (kana, 6,355 kanji: every joyo kanji but a handful), GB 2312 for
  Simplified Chinese (6,763 hanzi, 99.99 % of modern text), Big5 level 1 for Traditional
  Chinese (5,401 common characters), KS X 1001's 2,350 Hangul syllables for Korean (the
  syllables of modern text; its hanja are left out, Han characters in Korean text fall back
  to the other CJK faces). A character outside these sets is refused before drawing, by
  name, never drawn as a box (core.media.fonts.missing_characters).

Each subset gets its own family name (``<Noto family> ytap``), so libass, which also sees
the system's fonts, can only ever match the bundled file; the copyright, licence and a
description of what was taken stay in its name table.
"""

from __future__ import annotations

import sys
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fontTools import subset
    from fontTools.ttLib import TTFont

HERE = Path(__file__).resolve().parent / "fonts"
NOTO = Path("/usr/share/fonts/truetype/noto")
NOTO_CJK = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")

COMMON = [*range(0x20, 0x7F), 0xA0, *range(0x2000, 0x2070), 0x25CC]  # ASCII, general punctuation, dotted circle
#: What the small script faces take from Noto Sans Bold: Basic Latin, Latin-1, Latin Extended-A, the euro sign.
LATIN_SOURCE = NOTO / "NotoSans-Bold.ttf"
LATIN = [*range(0x20, 0x7F), *range(0xA0, 0x180), *range(0x2000, 0x2070), 0x20AC]


def _r(a: int, b: int) -> list[int]:
    return list(range(a, b + 1))


def _codec_set(codec: str, lead: range, trail: range) -> list[int]:
    """Every character a double-byte codec maps (lead x trail bytes)."""
    out = []
    for hi in lead:
        for lo in trail:
            try:
                ch = bytes([hi, lo]).decode(codec)
            except UnicodeDecodeError:
                continue
            if len(ch) == 1:
                out.append(ord(ch))
    return out


def _jis_x_0208() -> list[int]:
    return _codec_set("euc_jp", range(0xA1, 0xF5), range(0xA1, 0xFF))


def _gb2312() -> list[int]:
    return _codec_set("gb2312", range(0xA1, 0xF8), range(0xA1, 0xFF))


def _big5_level1() -> list[int]:
    # Symbols (0xA140-0xA3BF) and the 5,401 frequent characters (0xA440-0xC67E).
    trail = [*range(0x40, 0x7F), *range(0xA1, 0xFF)]
    return [cp for cp in _codec_set("big5", range(0xA1, 0xC7), trail) if chr(cp).encode("big5") <= b"\xc6\x7e"]


def _ks_x_1001_hangul() -> list[int]:
    return [cp for cp in _codec_set("euc_kr", range(0xA1, 0xFF), range(0xA1, 0xFF))
            if not 0x4E00 <= cp <= 0x9FFF and not 0xF900 <= cp <= 0xFAFF]  # no hanja


CJK_COMMON = [*_r(0x3000, 0x303F), *_r(0xFF00, 0xFFEF)]

#: (output file, source, collection index or None, new family, code points, what it covers)
SUBSETS = [
    ("NotoSansArabic-Bold.subset.ttf", NOTO / "NotoSansArabic-Bold.ttf", None, "Noto Sans Arabic ytap",
     [*COMMON, *_r(0x0600, 0x06FF), *_r(0x0750, 0x077F), *_r(0x08A0, 0x08FF), *_r(0xFB50, 0xFDFF),
      *_r(0xFE70, 0xFEFF)], "Arabic"),
    ("NotoSansHebrew-Bold.subset.ttf", NOTO / "NotoSansHebrew-Bold.ttf", None, "Noto Sans Hebrew ytap",
     [*COMMON, *_r(0x0590, 0x05FF), *_r(0xFB1D, 0xFB4F)], "Hebrew"),
    ("NotoSansDevanagari-Bold.subset.ttf", NOTO / "NotoSansDevanagari-Bold.ttf", None, "Noto Sans Devanagari ytap",
     [*COMMON, *_r(0x0900, 0x097F), *_r(0xA8E0, 0xA8FF), *_r(0x1CD0, 0x1CFF), 0x20B9], "Devanagari"),
    ("NotoSansThai-Bold.subset.ttf", NOTO / "NotoSansThai-Bold.ttf", None, "Noto Sans Thai ytap",
     [*COMMON, *_r(0x0E00, 0x0E7F)], "Thai"),
    ("NotoSansCJKjp-Bold.subset.otf", NOTO_CJK, 0, "Noto Sans CJK JP ytap",
     [*COMMON, *CJK_COMMON, *_r(0x3040, 0x30FF), *_r(0x31F0, 0x31FF), *_jis_x_0208()],
     "kana and the JIS X 0208 kanji"),
    ("NotoSansCJKsc-Bold.subset.otf", NOTO_CJK, 2, "Noto Sans CJK SC ytap",
     [*COMMON, *CJK_COMMON, *_gb2312()], "the GB 2312 hanzi"),
    ("NotoSansCJKtc-Bold.subset.otf", NOTO_CJK, 3, "Noto Sans CJK TC ytap",
     [*COMMON, *CJK_COMMON, *_big5_level1()], "the Big5 level-1 hanzi"),
    ("NotoSansCJKkr-Bold.subset.otf", NOTO_CJK, 1, "Noto Sans CJK KR ytap",
     [*COMMON, *CJK_COMMON, *_r(0x1100, 0x11FF), *_r(0x3130, 0x318F), *_ks_x_1001_hangul()],
     "the KS X 1001 Hangul syllables and jamo"),
]


def _load(source: Path, index: int | None) -> TTFont:
    from fontTools.ttLib import TTCollection, TTFont

    if index is None:
        return TTFont(source)
    return TTCollection(source).fonts[index]


def _rename(font: TTFont, family: str, covers: str, source_name: str) -> None:
    name = font["name"]
    style = "Bold"
    ps = family.replace(" ", "") + "-" + style
    kept = {0, 7, 8, 9, 11, 12, 13, 14}
    name.names = [n for n in name.names if n.nameID in kept]
    for nid, text in ((1, family), (2, style), (3, f"{ps};ytap-mcp subset"), (4, f"{family} {style}"),
                      (5, "subset by ytap-mcp core/media/font_subsets.py"), (6, ps),
                      (10, f"Subset of {source_name} ({covers}) under the SIL Open Font License 1.1")):
        name.setName(text, nid, 3, 1, 0x409)
        name.setName(text, nid, 1, 0, 0)
    if "CFF " in font:
        cff = font["CFF "].cff
        cff.fontNames = [ps]
        top = cff.topDictIndex[0]
        top.FullName, top.FamilyName = f"{family} {style}", family


# CJK faces keep what horizontal text needs: alternates (aalt, jp78/jp90, hwid/fwid), other
# regions' forms (locl) and vertical forms would double the glyphs kept.
_CJK_FEATURES = ["ccmp", "liga", "calt", "kern", "mark", "mkmk", "ljmo", "vjmo", "tjmo"]


def _options(cjk: bool) -> subset.Options:
    from fontTools import subset

    options = subset.Options()
    # Every feature of the small script fonts: joining, conjuncts, mark positioning.
    options.layout_features = _CJK_FEATURES if cjk else ["*"]
    options.layout_scripts = ["*"]
    options.name_IDs = ["*"]
    options.name_languages = [0x409, 0]
    options.hinting = False  # drawn large on video; the hints are a third of a TrueType font
    options.notdef_outline = True
    options.glyph_names = False
    options.drop_tables += ["DSIG", "vhea", "vmtx", "VORG"]  # no vertical text here
    return options


def _subset(font: TTFont, cps: list[int], *, cjk: bool) -> TTFont:
    from fontTools import subset

    sub = subset.Subsetter(_options(cjk=cjk))
    sub.populate(unicodes=sorted(set(cps)))
    sub.subset(font)
    return font


def _with_latin(font: TTFont) -> TTFont:
    """``font`` merged with Noto Sans Bold's Latin (same 1000 units per em); ``font`` first, so its glyphs
    win where both have a character."""
    import tempfile

    from fontTools.merge import Merger
    from fontTools.ttLib import TTFont

    latin = _subset(TTFont(LATIN_SOURCE), LATIN, cjk=False)
    with tempfile.TemporaryDirectory(prefix="ytap-fonts-") as tmp:
        first, second = Path(tmp) / "script.ttf", Path(tmp) / "latin.ttf"
        font.save(first)
        latin.save(second)
        return Merger().merge([str(first), str(second)])


def build(out_dir: Path = HERE) -> list[tuple[str, int]]:
    sizes = []
    for file, source, index, family, cps, covers in SUBSETS:
        font = _load(source, index)
        source_name = font["name"].getDebugName(4)
        font = _subset(font, cps, cjk=index is not None)
        if index is None:  # the small script faces: with Latin (the CJK ones have it)
            font = _with_latin(font)
            covers += ", with Noto Sans Bold's Latin"
        _rename(font, family, covers, source_name)
        out = out_dir / file
        font.save(out)
        sizes.append((file, out.stat().st_size))
    return sizes


if __name__ == "__main__":
    total = 0
    for file, size in build():
        total += size
        sys.stderr.write(f"{file}: {size / 1e6:.2f} MB\n")
    sys.stderr.write(f"total: {total / 1e6:.2f} MB\n")
