"""A narration's language: a BCP 47 tag given by the agent or read off the text, and what follows from it.

:func:`detect` needs no model and no network: the script decides for every script but Latin
(kana -> ja, hangul -> ko, Han alone -> zh, Arabic -> ar, Hebrew -> he, Devanagari -> hi,
Thai -> th, Greek -> el, Cyrillic -> ru, or uk with its own letters); Latin text is the
language whose commonest short words it uses most (English when none stands out). A tag the
agent gives wins over detection and is kept as given (normalised case: ``pt-BR``).

What the language decides elsewhere: each speech provider's voice for it (the multilingual
paid voices speak any language as they are; local:kokoro and local:espeak-ng pick a voice per
language), the reference voice word alignment speaks (core.media.align), and where caption
lines may break (core.media.fonts.break_lines).
"""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["detect", "normalise", "primary", "espeak_voice"]

_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

# Per Latin-script language, words short and common enough to show up in any sentence.
_COMMON_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and of to is in that it was for on with as are this be at by".split()),
    "es": frozenset("el la de que y en los las un una por con para es del se no".split()),
    "fr": frozenset("le la les de des et est un une du en que qui pour dans pas sur".split()),
    "de": frozenset("der die das und ist nicht ein eine zu den mit von sich auf für dem".split()),
    "it": frozenset("il la di che e è un una per non con del della sono gli le".split()),
    "pt": frozenset("o a os as de que e do da em um uma para com não é dos".split()),
    "nl": frozenset("de het een en van is dat niet op te zijn met voor die".split()),
    "pl": frozenset("i w nie na się to z że do jest jak po co ale tak".split()),
    "tr": frozenset("ve bir bu da de için ile çok ne gibi daha olan".split()),
    "id": frozenset("dan yang di ini itu dengan untuk dari tidak ada ke akan".split()),
    "vi": frozenset("và của là có không một những được cho người trong này".split()),
}
_UKRAINIAN = set("іїєґІЇЄҐ")


def normalise(tag: str) -> str:
    """``tag`` as BCP 47 writes it (``pt-br`` -> ``pt-BR``, ``zh-hant`` -> ``zh-Hant``); ValueError if it is none
    (the request model reports it as the parameter's error)."""
    tag = tag.strip().replace("_", "-")
    if not _TAG.match(tag):
        raise ValueError(f"language {tag!r} is not a BCP 47 tag (e.g. 'en', 'ja', 'pt-BR')")
    parts = tag.split("-")
    out = [parts[0].lower()]
    for p in parts[1:]:
        out.append(p.upper() if len(p) == 2 else p.title() if len(p) == 4 else p.lower())
    return "-".join(out)


def primary(tag: str | None) -> str:
    """The language subtag (``pt-BR`` -> ``pt``), ``""`` for None."""
    return (tag or "").split("-")[0].lower()


def detect(text: str) -> str:
    """The language ``text`` is most likely in, as a BCP 47 tag."""
    from core.media.fonts import script_of

    scripts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha():
            cp = ord(ch)
            name = script_of(ch) or ("greek" if 0x0370 <= cp <= 0x03FF else "cyrillic" if 0x0400 <= cp <= 0x04FF
                                     else "latin")
            scripts[name] += 1
    if not scripts:
        return "en"
    if scripts["kana"]:
        return "ja"
    if scripts["hangul"]:
        return "ko"
    top = scripts.most_common(1)[0][0]
    by_script = {"han": "zh", "arabic": "ar", "hebrew": "he", "devanagari": "hi", "thai": "th", "greek": "el"}
    if top in by_script:
        return by_script[top]
    if top == "cyrillic":
        return "uk" if any(ch in _UKRAINIAN for ch in text) else "ru"
    words = re.findall(r"[^\W\d_]+", text.lower())
    score = {lang: sum(w in common for w in words) for lang, common in _COMMON_WORDS.items()}
    best = max(score, key=lambda lang: (score[lang], lang == "en"))
    return best if score[best] else "en"


def espeak_voice(tag: str | None) -> str | None:
    """The espeak-ng voice that speaks ``tag`` (the full tag if espeak-ng knows it, else its language), None
    for no tag. An unknown language gives None: the caller speaks its default, or skips what needs the voice."""
    if not tag:
        return None
    from core.media import espeak

    for candidate in (tag.lower(), primary(tag)):
        if espeak.is_voice(candidate):
            return candidate
    return None
