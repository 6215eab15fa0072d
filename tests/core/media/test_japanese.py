"""Japanese on the local voices: kanji read as kana (core.media.japanese) with the real dictionary,
and the audio and word events espeak-ng makes of it, probed; and the refusal without the extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core.errors import NotConfigured
from core.media import espeak, japanese
from core.media.probe import probe

SENTENCE = "東京の夜景は本当に美しいです。"
IN_KANA = "とうきょうのやけいはほんとうにうつくしいです。"  # the same words, written as a child would


def test_readings_are_kana_with_particles_and_long_vowels_as_spoken() -> None:
    said = japanese.spoken(SENTENCE)
    assert said.text == "トーキョー ノ ヤケー ワ ホントー ニ ウツクシイ デス 。"
    assert not japanese.needs_reading(said.text)  # nothing the engine cannot read is left
    # Each spoken piece points back at the written word it came from.
    for spoken_at, written in ((0, "東京"), (said.text.index("ヤケー"), "夜景"), (said.text.index("ウツクシイ"), "美しい")):
        k = said.written_position(spoken_at)
        assert SENTENCE[k:k + len(written)] == written
    assert japanese.spoken("私は学校へ行きます").text == "ワタクシ ワ ガッコー エ イキ マス"  # へ said "e"
    assert japanese.spoken("思う").text == "オモウ"  # a verb keeps its vowels


def test_digits_unknown_latin_and_punctuation_stay_as_written_known_latin_is_read() -> None:
    said = japanese.spoken("iPhone 16を2024年に買った！")
    assert said.text.split() == ["iPhone", "16", "ヲ", "2024", "ネン", "ニ", "カッ", "タ", "！"]
    assert japanese.spoken("GoogleのAIをPCで使う").text == "グーグル ノ エーアイ ヲ ピーシー デ ツカウ"
    # No kanji, but Latin words: read too (when the dictionary is there); kana alone is said as written.
    assert japanese.reading_for("GoogleのAIをつかう").text == "グーグル ノ エーアイ ヲ ツカウ"  # type: ignore[union-attr]
    assert japanese.reading_for("とうきょう 2024") is None
    assert japanese.needs_reading("東京") and not japanese.needs_reading("トーキョー 2024")


def test_espeak_speaks_kanji_as_it_speaks_the_same_words_in_kana(tmp_path: Path) -> None:
    # Without readings espeak-ng said "Chinese letter" for each kanji: 7.9 s for this sentence against 2.5 s
    # in kana. Now both are the same words, said alike.
    kanji = espeak.synthesize([SENTENCE], tmp_path / "kanji.wav", voice="ja")
    espeak.synthesize([IN_KANA], tmp_path / "kana.wav", voice="ja")
    a, b = probe(tmp_path / "kanji.wav").duration_s, probe(tmp_path / "kana.wav").duration_s
    assert a == pytest.approx(b, rel=0.15), (a, b)
    assert 1.0 < a < 4.0
    # The caption's text is the written one, timed from the start of the segment to its end.
    (segment,) = kanji
    assert segment.text == SENTENCE and "".join(w.text for w in segment.words) == SENTENCE
    assert segment.end_s == pytest.approx(a, abs=0.3)


def test_espeak_reference_for_alignment_reads_kanji_too() -> None:
    samples, rate, words = espeak.speak_reference(SENTENCE, voice="ja")
    kana, _, _ = espeak.speak_reference(IN_KANA, voice="ja")
    assert len(samples) / rate == pytest.approx(len(kana) / rate, rel=0.15)
    assert "".join(w.text for w in words) == SENTENCE


def test_without_the_extra_the_local_voices_refuse_kanji_with_the_command(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "sudachipy", None)  # `import sudachipy` raises ImportError
    japanese._tokenizer.cache_clear()
    try:
        assert "pip install 'ytap-mcp[ja]'" in (japanese.readings_unavailable() or "")
        with pytest.raises(NotConfigured, match=r"pip install 'ytap-mcp\[ja\]'"):
            espeak.synthesize([SENTENCE], tmp_path / "no.wav", voice="ja")
        assert not (tmp_path / "no.wav").exists()
        # Kana (with a Latin word, spelled) needs no dictionary: it is spoken as it is.
        assert japanese.reading_for("Googleのとうきょう") is None
        espeak.synthesize(["Googleのとうきょう"], tmp_path / "kana.wav", voice="ja")
        assert probe(tmp_path / "kana.wav").duration_s > 0.3
    finally:
        japanese._tokenizer.cache_clear()


def test_readings_from_several_threads_at_once() -> None:
    # SudachiPy's tokenizer raises "Tokenizer is already in use" when two threads call it together; two
    # narrations can run at once.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda _: japanese.spoken(SENTENCE).text, range(400)))
    assert set(texts) == {"トーキョー ノ ヤケー ワ ホントー ニ ウツクシイ デス 。"}


def test_a_segment_longer_than_the_dictionary_takes_is_read_in_pieces() -> None:
    # SudachiPy refuses more than 49,149 bytes at once; a narration segment may hold 20,000 characters.
    text = SENTENCE * 1300  # 19,500 characters, 58,500 bytes
    said = japanese.spoken(text)
    assert said.text == " ".join(["トーキョー ノ ヤケー ワ ホントー ニ ウツクシイ デス 。"] * 1300)
    last = said.text.rindex("ウツクシイ")
    k = said.written_position(last)
    assert text[k:k + 3] == "美しい" and k > len(text) - 15  # positions carry across the pieces
