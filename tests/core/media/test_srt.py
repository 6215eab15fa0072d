from __future__ import annotations

import re

import pytest

from core.media.srt import format_timestamp, spread_words, to_srt
from core.schemas import SegmentTiming, WordTiming

_CUE = re.compile(r"^(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n((?:.+\n?)+)$")


def _w(text: str, start: float, end: float) -> WordTiming:
    return WordTiming(text=text, start_s=start, end_s=end)


def _ms(ts: str) -> int:
    h, m, rest = ts.split(":")
    s, ms = rest.split(",")
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def _parse(srt: str) -> list[tuple[int, int, int, list[str]]]:
    assert srt.endswith("\n") and not srt.endswith("\n\n\n")
    cues = []
    for block in srt.rstrip("\n").split("\n\n"):
        m = _CUE.match(block)
        assert m, f"malformed cue: {block!r}"
        cues.append((int(m[1]), _ms(m[2]), _ms(m[3]), m[4].rstrip("\n").split("\n")))
    return cues


def test_exact_output_from_word_timings_and_fallback() -> None:
    long_text = "The quick brown fox jumps over the lazy dog while the cat sleeps."
    segments = [
        SegmentTiming(
            index=1,
            text="Hello, world! This is a test.",
            start_s=0.0,
            end_s=2.5,
            words=[
                _w("Hello,", 0.0, 0.44),
                _w("world!", 0.59, 1.03),
                _w("This", 1.4, 1.6),
                _w("is", 1.6, 1.75),
                _w("a", 1.75, 1.8),
                _w("test.", 1.8, 2.5),
            ],
        ),
        # No word timings: the words are spread over the segment.
        SegmentTiming(index=2, text="Second scene without word timings", start_s=3.0, end_s=5.0),
        SegmentTiming(index=3, text=long_text, start_s=6.0, end_s=9.0, words=spread_words(long_text, 6.0, 9.0)),
    ]
    expected = (
        "1\n"
        "00:00:00,000 --> 00:00:01,030\n"
        "Hello, world!\n"
        "\n"
        "2\n"
        "00:00:01,400 --> 00:00:02,500\n"
        "This is a test.\n"
        "\n"
        "3\n"
        "00:00:03,000 --> 00:00:05,000\n"
        "Second scene without word timings\n"
        "\n"
        "4\n"
        "00:00:06,000 --> 00:00:09,000\n"
        "The quick brown fox jumps over the\n"
        "lazy dog while the cat sleeps.\n"
    )
    assert to_srt(segments) == expected


def test_empty_input_gives_empty_document() -> None:
    assert to_srt([]) == ""


def test_timestamps() -> None:
    assert format_timestamp(0) == "00:00:00,000"
    assert format_timestamp(3723.456) == "01:02:03,456"
    assert format_timestamp(59.9996) == "00:01:00,000"
    assert format_timestamp(-1) == "00:00:00,000"
    assert format_timestamp(100 * 3600 + 0.001) == "100:00:00,001"


def test_line_length_line_count_and_cue_duration_limits() -> None:
    words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
             "incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud "
             "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat").split()  # fmt: skip
    timed = [_w(w, i * 0.4, i * 0.4 + 0.35) for i, w in enumerate(words)]
    seg = SegmentTiming(index=1, text=" ".join(words), start_s=0.0, end_s=timed[-1].end_s, words=timed)
    for max_chars, max_lines, max_cue_s in [(42, 2, 6.0), (20, 1, 6.0), (32, 3, 2.5)]:
        cues = _parse(to_srt([seg], max_chars_per_line=max_chars, max_lines=max_lines, max_cue_s=max_cue_s))
        assert [c[0] for c in cues] == list(range(1, len(cues) + 1))
        for _, start, end, lines in cues:
            assert 1 <= len(lines) <= max_lines
            assert all(len(line) <= max_chars for line in lines)
            assert end - start <= max_cue_s * 1000
        # Every word is shown once, in order.
        assert " ".join(" ".join(c[3]) for c in cues).split() == words


def test_lines_are_balanced() -> None:
    text = "one two three four five six seven eight nine ten eleven"  # 55 chars
    cues = _parse(to_srt([SegmentTiming(index=1, text=text, start_s=0, end_s=4)]))
    assert len(cues) == 1
    lines = cues[0][3]
    assert len(lines) == 2 and abs(len(lines[0]) - len(lines[1])) <= 8


def test_overlong_word_is_kept_whole() -> None:
    word = "Pneumonoultramicroscopicsilicovolcanoconiosis-like"  # 50 chars
    cues = _parse(to_srt([SegmentTiming(index=1, text=f"a {word} b", start_s=0, end_s=3)]))
    shown = [line for c in cues for line in c[3]]
    assert word in shown
    assert " ".join(shown).split() == ["a", word, "b"]


def test_cues_never_overlap() -> None:
    segments = [
        # Word timings that overlap each other and the next segment.
        SegmentTiming(index=1, text="Alpha beta.", start_s=0.0, end_s=2.0,
                      words=[_w("Alpha", 0.0, 1.5), _w("beta.", 1.0, 2.4)]),
        SegmentTiming(index=2, text="Gamma delta.", start_s=2.2, end_s=3.0,
                      words=[_w("Gamma", 2.2, 2.6), _w("delta.", 2.6, 3.0)]),
        SegmentTiming(index=3, text="Zero length.", start_s=3.0, end_s=3.0),
        SegmentTiming(index=4, text="Epsilon.", start_s=3.0, end_s=4.0),
    ]  # fmt: skip
    cues = _parse(to_srt(segments))
    assert [c[0] for c in cues] == [1, 2, 3, 4]
    for (_, s1, e1, _), (_, s2, _, _) in zip(cues, cues[1:]):
        assert s1 < e1 <= s2
    assert cues[-1][1] < cues[-1][2]
    assert cues[0][1:3] == (0, 2200)  # clipped where the next cue starts


def test_sentence_ends_close_a_cue_but_segments_never_merge() -> None:
    segments = [
        SegmentTiming(index=1, text="Short one", start_s=0.0, end_s=1.0),
        SegmentTiming(index=2, text="Two. Three", start_s=1.0, end_s=2.0),
    ]
    cues = _parse(to_srt(segments))
    assert [c[3] for c in cues] == [["Short one"], ["Two."], ["Three"]]


def test_fallback_splits_long_segments_by_words() -> None:
    text = " ".join(f"word{i}" for i in range(30))
    cues = _parse(to_srt([SegmentTiming(index=1, text=text, start_s=10.0, end_s=40.0)]))
    assert len(cues) > 1
    assert cues[0][1] == 10_000 and cues[-1][2] == 40_000
    assert " ".join(" ".join(c[3]) for c in cues).split() == text.split()
    for _, start, end, _ in cues:
        assert end - start <= 6000


def test_spread_words_weights_and_bounds() -> None:
    words = spread_words("  a bbbbbbb  cc ", 1.0, 3.0)
    assert [w.text for w in words] == ["a", "bbbbbbb", "cc"]
    assert words[0].start_s == 1.0 and words[-1].end_s == 3.0
    for prev, nxt in zip(words, words[1:]):
        assert prev.end_s == nxt.start_s
    # Weights len+1: 2, 8, 3 of 13 over 2 s.
    assert words[0].end_s == pytest.approx(1.0 + 2 * 2 / 13, abs=0.001)
    assert words[1].end_s == pytest.approx(1.0 + 2 * 10 / 13, abs=0.001)
    assert spread_words("   ", 0, 1) == []
    assert [(w.start_s, w.end_s) for w in spread_words("x y", 2.0, 2.0)] == [(2.0, 2.0), (2.0, 2.0)]
    with pytest.raises(ValueError):
        spread_words("a b", 2.0, 1.0)


def test_bad_parameters() -> None:
    seg = [SegmentTiming(index=1, text="a", start_s=0, end_s=1)]
    with pytest.raises(ValueError):
        to_srt(seg, max_chars_per_line=0)
    with pytest.raises(ValueError):
        to_srt(seg, max_lines=0)
    with pytest.raises(ValueError):
        to_srt(seg, max_cue_s=0)


def test_unspaced_text_breaks_at_sentences_and_phrases_never_mid_line_with_spaces() -> None:
    ja = "灯台守は夜明けに階段を上った。毎朝、彼は岩の岬を通り過ぎる船を数え、その名前を小さな青い本に書き留めた。"
    cues = _parse(to_srt([SegmentTiming(index=1, text=ja, start_s=0, end_s=9)], language="ja"))
    lines = [line for c in cues for line in c[3]]
    assert "".join(lines) == ja and all(" " not in line and "\x00" not in line for line in lines)
    assert cues[0][3] == ["灯台守は夜明けに階段を上った。"]  # the first sentence is a cue of its own
    assert all(2 * len(line) <= 42 for line in lines)  # 21 full-width characters a line at most
    starts = [c[1] for c in cues]
    assert starts == sorted(starts) and starts[0] == 0 and cues[-1][2] == 9000
    # Spaced text is untouched by it: a long Latin word stays whole.
    word = "Pneumonoultramicroscopicsilicovolcanoconiosis-like"
    assert word in to_srt([SegmentTiming(index=1, text=f"a {word} b", start_s=0, end_s=3)], language="en")
