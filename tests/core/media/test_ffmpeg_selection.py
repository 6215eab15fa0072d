"""Choosing the ffmpeg build by what it can do (core.media.ffmpeg), fed the outputs of real builds.

fixtures/ffmpeg_builds/<build>/ hold what each build prints for ``-version``, ``-filters``,
``-encoders``, ``-bsfs`` and ``-h full`` (see the README there: which are captured from the
real binary, which are reconstructed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from core.errors import MediaError
from core.media import assembly as A
from core.media import timeline as T
from core.media import placeholder
from core.media.ffmpeg import (
    BuildFacts,
    FfmpegNeeds,
    choose_build,
    collected_needs,
    inspect_build,
    missing_features,
)
from core.media.probe import AudioStreamInfo, MediaInfo, VideoStreamInfo

BUILDS = Path(__file__).parent / "fixtures" / "ffmpeg_builds"
_FILES = {("-version",): "version", ("-filters",): "filters", ("-encoders",): "encoders", ("-bsfs",): "bsfs",
          ("-h", "full"): "options"}
BUNDLED = "/venv/imageio_ffmpeg/binaries/ffmpeg"
ON_PATH = "/usr/bin/ffmpeg"


def _runner(build: str, drop_filters: Sequence[str] = ()):  # -> Runner
    def run(args: Sequence[str]) -> str:
        text = (BUILDS / build / f"{_FILES[tuple(args)]}.txt").read_text()
        if args == ["-filters"] and drop_filters:
            text = "\n".join(ln for ln in text.splitlines() if not any(f" {f} " in ln for f in drop_filters))
        return text
    return run


def _facts(build: str, **kw: object) -> BuildFacts:
    return inspect_build(f"/{build}/ffmpeg", run=_runner(build, **kw))  # type: ignore[arg-type]


def _inspector(path_build: str | None, **kw: object):  # -> Callable[[str], BuildFacts]
    def inspect(path: str) -> BuildFacts:
        if path == BUNDLED:
            return _facts("9.0-imageio")
        if path_build is None:
            raise MediaError("Exec format error")
        return _facts(path_build, **kw)
    return inspect


def _choose(path_build: str | None, *, forced: str | None = None, on_path: str | None = ON_PATH, **kw: object):
    return choose_build(forced=forced, on_path=on_path, bundled=lambda: BUNDLED, needs=collected_needs(),
                        inspect=_inspector(path_build, **kw))


# --------------------------------------------------------------------------- reading a build


def test_inspect_build_reads_debian_51_as_it_is() -> None:
    facts = _facts("5.1-debian")
    assert facts.version == "5.1.9-0+deb12u1"
    assert {"drawtext", "subtitles", "ass", "xfade", "sidechaincompress", "loudnorm", "ebur128", "gradients"} <= facts.filters
    assert {"libx264", "aac", "libmp3lame", "libopus", "libvpx-vp9", "h264_vaapi"} <= facts.encoders
    assert "h264_metadata" in facts.bsfs
    assert {"textfile", "expansion", "fontfile"} <= facts.filter_options("drawtext")
    assert "y_align" not in facts.filter_options("drawtext")  # the option the title cards used to need
    assert "reset_sar" not in facts.filter_options("scale")  # and the one the assembly used to need
    assert "force_divisible_by" in facts.filter_options("scale")  # "scale(2ref) AVOptions" counts for scale
    assert "threshold" in facts.filter_options("sidechaincompress")  # "acompressor/sidechaincompress AVOptions"
    assert {"sample_rates", "channel_layouts"} <= facts.filter_options("aformat")  # list-valued: "[<int> ]"


def test_inspect_build_reads_the_bundled_90() -> None:
    facts = _facts("9.0-imageio")
    assert facts.version.startswith("n9.0.2")
    assert {"y_align", "text_align"} <= facts.filter_options("drawtext")
    assert "reset_sar" in facts.filter_options("scale")


# --------------------------------------------------------------------------- the choice


def test_choose_build_takes_debian_51_on_path() -> None:
    loc = _choose("5.1-debian")
    assert (loc.path, loc.source, loc.version) == (ON_PATH, "PATH", "5.1.9-0+deb12u1")
    assert loc.reason == "ffmpeg 5.1.9-0+deb12u1 on PATH has every filter, option and encoder ytap uses"
    assert loc.passed_over == ()


@pytest.mark.parametrize(("build", "version"), [("6.1-ubuntu", "6.1.1-3ubuntu5"), ("7.1-static", "7.1.1-static"),
                                                 ("9.0-imageio", "n9.0.2-17-g2a571b6068-20260930")])
def test_choose_build_takes_newer_builds_on_path(build: str, version: str) -> None:
    loc = _choose(build)
    assert (loc.path, loc.source, loc.version) == (ON_PATH, "PATH", version)
    assert "has every filter, option and encoder ytap uses" in loc.reason


def test_choose_build_passes_over_ubuntu_44_and_says_what_it_lacks() -> None:
    loc = _choose("4.4-ubuntu")
    assert (loc.path, loc.source) == (BUNDLED, "imageio-ffmpeg")
    assert loc.reason.startswith("the build imageio-ffmpeg ships, ffmpeg n9.0.2")
    assert "ffmpeg 4.4.2-0ubuntu0.22.04.1 at /usr/bin/ffmpeg (PATH) lacks" in loc.reason
    (other,) = loc.passed_over
    assert other.missing == ("alimiter option latency (core.media.mix)", "gradients option type (core.media.placeholder)")


def test_choose_build_passes_over_42_for_missing_filters() -> None:
    (other,) = _choose("4.2-static").passed_over
    assert "filter xfade (core.media.videograph)" in other.missing
    assert "filter gradients (core.media.placeholder)" in other.missing
    assert "amix option normalize (core.media.mix)" in other.missing


def test_choose_build_passes_over_a_build_without_libass() -> None:
    loc = _choose("7.1-static", drop_filters=("ass", "subtitles"))
    assert loc.source == "imageio-ffmpeg"
    assert loc.passed_over[0].missing == ("filter ass (core.media.videograph)",)


def test_choose_build_without_ffmpeg_on_path_takes_the_bundled_one() -> None:
    loc = _choose(None, on_path=None)
    assert (loc.path, loc.source) == (BUNDLED, "imageio-ffmpeg")
    assert loc.reason == "the build imageio-ffmpeg ships, ffmpeg n9.0.2-17-g2a571b6068-20260930: no ffmpeg on PATH"


def test_choose_build_passes_over_an_ffmpeg_that_does_not_run() -> None:
    loc = _choose(None)
    assert loc.source == "imageio-ffmpeg" and "/usr/bin/ffmpeg (PATH) does not run: Exec format error" in loc.reason


def test_choose_build_forced_build_that_does_not_run_fails_naming_the_variable() -> None:
    with pytest.raises(MediaError, match=r"^YTAP_FFMPEG=/nope/ffmpeg does not run \(Exec format error\)"):
        _choose(None, forced="/nope/ffmpeg")


def test_inspect_build_of_a_missing_binary_says_why() -> None:
    with pytest.raises(MediaError, match="No such file or directory"):
        inspect_build("/nonexistent/ffmpeg")


def test_choose_build_forced_build_is_used_even_when_path_has_another() -> None:
    loc = choose_build(forced="/opt/ff51/ffmpeg", on_path=ON_PATH, bundled=lambda: BUNDLED, needs=collected_needs(),
                       inspect=lambda path: _facts("5.1-debian" if path == "/opt/ff51/ffmpeg" else "9.0-imageio"))
    assert (loc.path, loc.source, loc.reason) == ("/opt/ff51/ffmpeg", "YTAP_FFMPEG", "forced by YTAP_FFMPEG")


def test_choose_build_forced_build_lacking_a_feature_fails_naming_it_and_the_variable() -> None:
    with pytest.raises(MediaError) as err:
        _choose("4.4-ubuntu", forced="/opt/ff44/ffmpeg")
    assert err.value.message.startswith("YTAP_FFMPEG=/opt/ff44/ffmpeg: ffmpeg 4.4.2-0ubuntu0.22.04.1")
    assert "alimiter option latency (core.media.mix)" in err.value.message


def test_missing_features_names_every_module_that_needs_a_feature() -> None:
    needs = {"a": FfmpegNeeds({"drawtext": frozenset({"y_align"})}, frozenset({"libx264"})),
             "b": FfmpegNeeds({"drawtext": frozenset({"y_align"}), "nosuch": frozenset()}, bsfs=frozenset({"nobsf"}))}
    assert missing_features(_facts("5.1-debian"), needs) == [
        "bitstream filter nobsf (b)", "drawtext option y_align (a, b)", "filter nosuch (b)"]


# --------------------------------------------------------------------------- the declarations cover the code

_CHAIN_ITEM = re.compile(r"^(?:\[[^\]]*\])*([A-Za-z0-9_]+)(?:=(.*?))?(?:\[[^\]]*\])*$", re.S)


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes and not escaped (ffmpeg's filtergraph syntax)."""
    parts, cur, quote, esc = [], "", False, False
    for ch in text:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            cur += ch
            esc = True
        elif ch == "'":
            cur += ch
            quote = not quote
        elif ch == sep and not quote:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def _named_options(argv: Sequence[str]) -> dict[str, set[str]]:
    """Every filter (and lavfi source) in ``argv`` with the options it is given by name."""
    graphs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-filter_complex", "-vf", "-af")]
    graphs += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-i" and i >= 2 and argv[i - 2:i] == ["-f", "lavfi"]]
    used: dict[str, set[str]] = {}
    for graph in graphs:
        for chain in _split(graph, ";"):
            for item in _split(chain, ","):
                m = _CHAIN_ITEM.match(item.strip())
                assert m, item
                opts = used.setdefault(m.group(1), set())
                for arg in _split(m.group(2) or "", ":"):
                    key, eq, _ = arg.partition("=")
                    if eq and re.fullmatch(r"[A-Za-z_][\w-]*", key):
                        opts.add(key)
    return used


def _assembly_argvs() -> list[list[str]]:
    def scene(name: str, duration_s: float, fps: float = 30.0, sar: str = "1:1") -> T.SceneInput:
        v = VideoStreamInfo(codec="h264", profile="High", pix_fmt="yuv420p", width=640, height=360, fps=fps,
                            frames=round(duration_s * fps), duration_s=duration_s, sar=sar)
        a = AudioStreamInfo(codec="aac", profile="LC", sample_rate=48000, channels=2, duration_s=duration_s, bit_rate=1)
        return T.SceneInput(Path(name), MediaInfo(path=name, format_name="mov,mp4", duration_s=duration_s, bytes=1,
                                                  video=v, audio=a))

    scenes = [scene("/w/s1.mp4", 2.0, fps=24), scene("/w/s2.mp4", 2.0, sar="4:3"), scene("/w/s3.mp4", 2.0)]
    narration = T.NarrationInput(Path("/w/narration.wav"), 7.0)
    out = []
    for fit in ("contain", "cover", "blur"):
        tl = T.build_timeline(scenes, width=320, height=180, fps=30, narration=narration, fit=fit, crossfade_s=0.5,
                              captions_ass="[Script Info]\n", music=T.MusicInput(Path("/w/music.wav"), 3.0),
                              watermark=T.Watermark(Path("/w/logo.png")))
        out.append(A.build_video_argv(tl, Path("/w/video.mp4"), webm_video=Path("/w/video.webm")))
        out.append(A.build_audio_argv(tl, Path("/w/audio.m4a"), wav=Path("/w/audio.wav")))
    return out


def test_declared_needs_cover_every_filter_option_the_graphs_pass() -> None:
    declared: dict[str, set[str]] = {}
    for need in collected_needs().values():
        for name, opts in need.filters.items():
            declared.setdefault(name, set()).update(opts)
    bands = [Path(f"/w/{i}.png") for i in range(3)]
    card = placeholder.build_args(Path("/w/card.mp4"), layout=placeholder._layout("Declared needs", 2, 640, 360,
                                  accent="#ffffff"), palette=placeholder.choose_palette("x", 2, None),
                                  band_images=bands, frames=30, width=640, height=360, fps=30)
    argvs = [card, *_assembly_argvs()]
    used: dict[str, set[str]] = {}
    for argv in argvs:
        for name, opts in _named_options(argv).items():
            used.setdefault(name, set()).update(opts)
    assert {"xfade", "ass", "sidechaincompress", "amix", "gradients", "scale",
            "colorchannelmixer"} <= used.keys()
    undeclared = {name: sorted(opts - declared.get(name, set())) for name, opts in used.items()
                  if name not in declared or opts - declared[name]}
    assert not undeclared, f"filters or options used but not declared with requires(): {undeclared}"
