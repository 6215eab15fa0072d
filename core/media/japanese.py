"""Japanese as the local voices can say it: kanji read out as kana.

espeak-ng reads kana, digits and punctuation in Japanese, but it has no kanji dictionary: it
says "Chinese letter" for each kanji, and Kokoro, which phonemizes through espeak-ng, would do
the same. A narration in Japanese is mostly kanji. With the optional ``ja`` extra
(``pip install 'ytap-mcp[ja]'``: SudachiPy and its small dictionary, Apache-2.0, ~44 MB), each
morpheme is replaced by its reading in katakana before the engine sees the text, the way a
Japanese TTS front end does:

- the topic and direction particles are said as spoken: は -> ワ, へ -> エ (を is read "o" already);
- long vowels in nouns are written as spoken: トウキョウ -> トーキョー, センセイ -> センセー (verbs
  keep theirs: オモウ is "omou");
- a Latin word the dictionary knows is said from its katakana reading (Google -> グーグル);
  digits, punctuation and unknown Latin words stay as written: espeak-ng reads Japanese numbers
  itself ("2024" -> "nisen nijuu yon"), the dictionary's readings of numbers go digit by digit,
  and an unknown word is spelled;
- morphemes are separated by spaces, so the engine's word events fall on them.

:class:`Spoken` keeps, for every position of the spoken text, the position in the written text
it came from, so word events still land on the caption's characters.
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
import unicodedata
from dataclasses import dataclass

from core.errors import NotConfigured

__all__ = ["Spoken", "needs_reading", "readings_unavailable", "reading_for", "spoken", "EXTRA_HINT"]

EXTRA_HINT = "pip install 'ytap-mcp[ja]'"

# A SudachiPy tokenizer refuses to be used by two threads at once ("Tokenizer is already in use"), and two
# narrations can run at once: one tokenizer, one user at a time (a sentence takes well under a millisecond).
_TOKENIZER_LOCK = threading.Lock()
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f\u3005\u3006]")  # + 々 〆
_LATIN = re.compile(r"[A-Za-z]")
_SPOKEN_PARTICLES = {"は": "ワ", "へ": "エ"}
_O_ROW = set("オコゴソゾトドノホボポモヨョロヲ")
_E_ROW = set("エケゲセゼテデネヘベペメレ")


def needs_reading(text: str) -> bool:
    """Whether ``text`` has a kanji, which the engine cannot read."""
    return _HAN.search(text) is not None


def reading_for(text: str) -> Spoken | None:
    """What the engine should say for Japanese ``text``: its reading, or None to say it as written (kana and
    digits alone; or Latin words when there is no dictionary, which the engine then spells). Raises
    NotConfigured for kanji without the ``ja`` extra."""
    if needs_reading(text) or (_LATIN.search(text) and readings_unavailable() is None):
        return spoken(text)
    return None


def readings_unavailable() -> str | None:
    """None when readings can be made here; otherwise why not (and how to get them)."""
    try:
        _tokenizer()
    except ImportError:
        return f"Japanese text with kanji needs readings for the local voices: {EXTRA_HINT}"
    except Exception as exc:  # noqa: BLE001 - a broken dictionary install: said, not raised
        return f"the Japanese dictionary does not load ({type(exc).__name__}: {exc}); reinstall with {EXTRA_HINT}"
    return None


@functools.cache
def _tokenizer():  # -> sudachipy.Tokenizer
    from sudachipy import Dictionary

    dictionary = Dictionary(dict="small")
    # SudachiPy 0.7 names it tokenizer(); 0.6 has only create().
    return dictionary.tokenizer() if hasattr(dictionary, "tokenizer") else dictionary.create()


@dataclass(frozen=True)
class Spoken:
    """The text to give the engine, and where each of its pieces came from in the written text."""

    text: str
    starts: tuple[int, ...]  # positions in ``text`` where a piece begins, ascending
    origins: tuple[int, ...]  # the written position of each piece's first character

    def written_position(self, position: int) -> int:
        """The written position of spoken position ``position`` (both 0-based)."""
        k = bisect.bisect_right(self.starts, position) - 1
        return self.origins[max(k, 0)] if self.origins else 0


def _long_vowels(kana: str) -> str:
    out: list[str] = []
    for ch in kana:
        if out and ((ch == "ウ" and out[-1] in _O_ROW) or (ch == "イ" and out[-1] in _E_ROW)):
            out.append("ー")
        else:
            out.append(ch)
    return "".join(out)


def _is_katakana(ch: str) -> bool:
    return "\u30a0" <= ch <= "\u30ff"


def _is_kana_or_kanji(ch: str) -> bool:
    name = unicodedata.name(ch, "")
    return name.startswith(("HIRAGANA", "KATAKANA", "CJK")) or _HAN.match(ch) is not None


def _say(surface: str, reading: str, pos: tuple[str, ...]) -> str:
    if pos[0] == "空白" or surface.isspace():
        return ""
    if pos[0] in ("補助記号", "記号"):
        return surface  # punctuation: a pause
    if not any(_is_kana_or_kanji(c) for c in surface):
        # A Latin word the dictionary knows has its katakana reading (Google -> グーグル, AI -> エーアイ), which
        # espeak-ng says as Japanese; an unknown one (its "reading" is itself in lower case) and digits stay as
        # written: the engine spells the first and reads the second in Japanese itself.
        known = reading and all(_is_katakana(c) for c in reading) and not any(c.isdigit() for c in surface)
        return reading if known else surface
    if pos[0] == "助詞" and surface in _SPOKEN_PARTICLES:
        return _SPOKEN_PARTICLES[surface]
    if not reading or reading == "キゴウ":  # the dictionary's placeholder reading for a symbol
        return surface
    return _long_vowels(reading) if pos[0] in ("名詞", "代名詞", "接頭辞", "接尾辞") else reading


# SudachiPy refuses an input of more than 49,149 UTF-8 bytes ("Input is too long"); a narration segment
# may hold 20,000 characters (60 kB of kana and kanji). Longer text is read in pieces cut after a sentence.
_PIECE_CHARS = 12_000  # x 4 bytes at most per character: under the limit
_SENTENCE_END = re.compile(r"[。！？!?\n]")


def _pieces(text: str) -> list[tuple[int, str]]:
    """``text`` as (offset, piece) pairs of at most _PIECE_CHARS characters, cut after a sentence's end
    where there is one in the piece's second half."""
    out, start = [], 0
    while len(text) - start > _PIECE_CHARS:
        end = start + _PIECE_CHARS
        cut = max((m.end() for m in _SENTENCE_END.finditer(text, start + _PIECE_CHARS // 2, end)), default=end)
        out.append((start, text[start:cut]))
        start = cut
    out.append((start, text[start:]))
    return out


def spoken(text: str) -> Spoken:
    """``text`` as the engine should read it. Raises NotConfigured without the ``ja`` extra."""
    reason = readings_unavailable()
    if reason:
        raise NotConfigured(reason)
    from sudachipy import SplitMode

    pieces: list[str] = []
    starts: list[int] = []
    origins: list[int] = []
    length = 0
    morphemes = []
    for offset, piece in _pieces(text):
        with _TOKENIZER_LOCK:
            morphemes += [(m.surface(), m.reading_form(), tuple(m.part_of_speech()), offset + m.begin())
                          for m in _tokenizer().tokenize(piece, SplitMode.C)]
    for surface, reading, pos, begin in morphemes:
        said = _say(surface, reading, pos)
        if not said:
            continue
        if pieces:
            pieces.append(" ")
            length += 1
        starts.append(length)
        origins.append(begin)
        pieces.append(said)
        length += len(said)
    return Spoken(text="".join(pieces), starts=tuple(starts), origins=tuple(origins))
