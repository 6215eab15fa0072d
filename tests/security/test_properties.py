"""Property-based tests (hypothesis) over identifiers, refs, uris, prompts and overlays.

Each property is the contract in one sentence: whatever the input, the function either
refuses it with one of our own errors (a message for the agent), or accepts it and the
result keeps the promise (inside the video's real folder, within the bounds, no markup
injected). Never a crash, never a path outside.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.assets import VideoPaths, parse_uri
from core.assets.paths import ID_RE
from core.errors import InputError, YtapError
from core.media import captions
from core.media.text import as_written
from core.schemas import NarrationRequest, Overlay, SceneRequest, ThumbnailRequest
from tests.security.acceptance import record

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Pieces hostile paths are made of; hypothesis joins them in every order.
SEGMENTS = st.sampled_from([
    "..", ".", "", "scenes", "scene_001.mp4", "link", "link_dir", ".hidden", "%2e%2e", "%2f", "%00", "\x00", "\\",
    "..\\..", "~", "/", "//", "etc", "passwd", "outside", "v", "default", "other", "file:", "ytap:", "C:", "\n", " ",
    "%252e%252e", "…", "．．", "audio", "narration.wav",
])
PREFIXES = st.sampled_from(["", "/", "./", "ytap://default/v/", "ytap://default/other/", "ytap://other/v/",
                            "file://", "FILE:", "ytap://jobs/", "ytap://default/v", "YTAP://default/v/"])


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> VideoPaths:
    base = tmp_path_factory.mktemp("props")
    outside = base / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("secret")
    paths = VideoPaths(base / "home" / "workspaces", "default", "v")
    paths.ensure()
    paths.scene(1).write_bytes(b"x")
    (paths.root / "link").symlink_to(outside / "passwd")
    (paths.root / "link_dir").symlink_to(outside)
    (paths.root / ".hidden").write_bytes(b"h")
    return paths


@PROPS
@given(value=st.text(max_size=80))
@example(value="abc\n")
@example(value="a" * 64)
@example(value="a" * 65)
def test_property_ids_accepted_exactly_by_the_contract_and_stay_inside(value: str, tmp_path: Path) -> None:
    record("property examples: ids")
    try:
        paths = VideoPaths(tmp_path / "ws", "default", value)
    except InputError:
        assert not ID_RE.fullmatch(value)
        return
    assert ID_RE.fullmatch(value) and "\n" not in value
    assert paths.root.parent == tmp_path / "ws" / "default" / "videos"
    assert paths.real_root.name == value


@PROPS
@given(prefix=PREFIXES, parts=st.lists(SEGMENTS, max_size=8), sep=st.sampled_from(["/", "\\", "%2f", "/./"]))
@example(prefix="ytap://default/v/", parts=["%2e%2e", "%2e%2e", "outside", "passwd"], sep="/")
@example(prefix="", parts=["link_dir", "passwd"], sep="/")
@example(prefix="", parts=["scenes", "..", "..", "..", "..", "outside", "passwd"], sep="/")
@example(prefix="", parts=["outside"], sep="/")
def test_property_refs_resolve_inside_or_are_refused(video: VideoPaths, prefix: str, parts: list[str],
                                                     sep: str) -> None:
    record("property examples: refs")
    ref = prefix + sep.join(parts)
    try:
        resolved = video.resolve_ref(ref)
    except YtapError as exc:
        assert isinstance(exc, InputError)
        assert exc.message and len(exc.message) < 2000
        return
    real = video.real_root
    assert resolved == real or real in resolved.parents, (ref, resolved)
    assert not any(p.startswith(".") for p in resolved.relative_to(real).parts)
    outside = video.workspaces_root.parent.parent / "outside"  # the bait the links point at
    assert outside.resolve() not in resolved.parents


@PROPS
@given(text=st.text(max_size=200))
@example(text="ytap://default/v/%2e%2e/x")
@example(text="ytap://default/v/scenes/%00")
@example(text="ytap://default/v/%ff")
def test_property_uris_parse_to_ids_and_a_clean_relative_path_or_refuse(text: str) -> None:
    record("property examples: uris")
    for uri in (text, "ytap://" + text, "ytap://default/v/" + text):
        try:
            parsed = parse_uri(uri)
        except YtapError as exc:
            assert isinstance(exc, InputError)
            continue
        if parsed.job_id:
            assert re.fullmatch(r"job_[a-f0-9]{16,32}", parsed.job_id)
            continue
        assert ID_RE.fullmatch(parsed.workspace_id or "") and ID_RE.fullmatch(parsed.video_id or "")
        rel = parsed.relative
        assert not rel.startswith("/") and ".." not in rel.split("/") and "\\" not in rel
        assert not CONTROL.search(rel) and "\x00" not in rel


@PROPS
@given(prompt=st.text(max_size=4200), title=st.text(max_size=120),
       segments=st.lists(st.text(max_size=300), max_size=5))
@example(prompt="a\x00b", title="ok", segments=["fine"])
@example(prompt=" ", title=" ", segments=[" "])
def test_property_prompts_accepted_only_within_bounds_and_plain(prompt: str, title: str, segments: list[str]) -> None:
    record("property examples: prompts")
    ok_prompt = 1 <= len(prompt) <= 4000 and prompt.strip() and not CONTROL.search(prompt)
    try:
        req = SceneRequest(video_id="v", scene_index=1, prompt=prompt)
        assert ok_prompt and req.prompt == prompt
    except ValidationError as exc:
        assert not ok_prompt
        assert "prompt" in str(exc)
    ok_title = 1 <= len(title) <= 100 and title.strip() and not CONTROL.search(title)
    try:
        ThumbnailRequest(video_id="v", title=title)
        assert ok_title
    except ValidationError:
        assert not ok_title
    ok_segments = bool(segments) and all(s.strip() and len(s) <= 5000 and not CONTROL.search(s) for s in segments)
    try:
        req_n = NarrationRequest(video_id="v", segments=segments)
        assert ok_segments and req_n.texts() == [s.strip() for s in segments]
    except ValidationError:
        assert not ok_segments


POSITIONS = ["top", "center", "bottom", "top-left", "top-right", "bottom-left", "bottom-right"]


@PROPS
@given(text=st.text(max_size=220), start=st.floats(allow_nan=False, min_value=-10, max_value=40_000),
       length=st.floats(allow_nan=False, min_value=-5, max_value=100),
       position=st.sampled_from(POSITIONS + ["middle"]))
@example(text="{\\pos(0,0)}{\\fs200}BIG\\Nline", start=0, length=1, position="top")
@example(text="\U0001f000", start=0, length=1, position="top")  # all emoji: removed, nothing drawn
@example(text="a\n[Events]\nDialogue: 0,0:00:00.00,9:00:00.00,Caption,,0,0,0,,owned", start=0, length=1,
         position="top")
def test_property_overlays_validate_and_never_inject_markup(text: str, start: float, length: float,
                                                            position: str) -> None:
    record("property examples: overlays")
    end = start + length
    valid = (1 <= len(text) <= 200 and 0 <= start <= 36_000 and 0 < end <= 36_000 and end > start
             and position in POSITIONS)
    try:
        ov = Overlay(text=text, start_s=start, end_s=end, position=position)  # type: ignore[arg-type]
    except ValidationError:
        assert not valid
        return
    assert valid
    assume(text.strip())
    layout = captions.CaptionLayout.for_size(1920, 1080)
    doc = captions.build_ass([], layout, [captions.OverlayText(ov.text, ov.start_s, ov.end_s, ov.position)])
    events = [line for line in doc.splitlines() if line.startswith("Dialogue:")]
    if not as_written(ov.text, font=layout.font.path).text.strip():
        assert events == []  # all of it was emoji, removed (and said so): nothing to draw
        return
    assert len(events) == 1  # no line of the text became an event (or a section) of its own
    body = events[0].split(",", 9)[9]
    # Exactly one override block, ours, at the start; every brace the text had is escaped.
    # (besides the bundled-face switches captions.py writes for scripts the caption font lacks)
    body = re.sub(r"\{\\fn[^{}\\]*\\fs\d+\}", "", body)
    unescaped = re.findall(r"(?<!\\)\{", body)
    assert len(unescaped) == 1 and body.startswith("{\\an")
    after = body[body.index("}") + 1:]
    # only \N breaks, \{ \} and a backslash drawn as one (followed by an invisible word joiner)
    assert not re.search(r"\\(?![N{}\u2060])", after)
