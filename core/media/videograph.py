"""The assembly's picture: the video filter graph, built as data with ffmpeg-python (nothing runs here).

    scene i ─ trim ─ fps ─ fit (contain | cover | blur) ─ exact frames ┐
    (presenter: chroma-keyed clip over its background scene)           ├ concat | xfade ─ hold ─ watermark ─ ass ─ video_post ─ BT.709 tags ─ encoder upload
    ...                                                                ┘

Every scene comes out as exactly its timeline's frame count of W x H yuv420p at the output
rate, converted to BT.709 by its own scale. :func:`video_graph` reads the captions
:func:`write_captions` put in the work folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from core.errors import MediaError
from core.media.compat import fit_size
from core.media.encoders import VideoEncoder
from core.media.ffmpeg import requires
from core.media.filtergraph import apply_steps, input_node, num
from core.media.fonts import FONT_DIR
from core.media.formats import BT709_FRAME_PARAMS
from core.media.timeline import Timeline, TimelineScene

__all__ = ["video_graph", "write_captions", "tag_bt709"]

# What the graph asks of ffmpeg (checked when the build is chosen).
requires({
    "scale": ("w", "h", "in_color_matrix", "out_color_matrix", "out_range", "force_original_aspect_ratio",
              "force_divisible_by", "flags"),
    "crop": (), "split": (), "gblur": ("sigma",), "setsar": (), "format": (), "setpts": (),
    "overlay": ("x", "y", "format", "eof_action"), "pad": ("w", "h", "x", "y", "color"),
    "tpad": ("stop_mode", "stop"), "trim": ("start", "duration", "end_frame"), "fps": ("fps",),
    "chromakey": ("color", "similarity", "blend"), "colorchannelmixer": ("aa",), "concat": ("v", "a"),
    "xfade": ("transition", "duration", "offset"),
    "ass": ("filename", "fontsdir"),  # libass
    "setparams": ("color_primaries", "color_trc", "colorspace", "range"),
    "settb": (),  # its one option given by position (not every build lists its options by name)
})


@dataclass(frozen=True)
class _Clip:
    """What the video chain needs to know of one source."""

    source_fps: float
    width: int
    height: int
    sar: float
    color_matrix: str
    in_ms: int = 0


def _scale(v: Any, clip: _Clip, w: int | str, h: int | str, *, fit: str | None, fast: bool = False) -> Any:
    kwargs: dict[str, Any] = {
        "w": w,
        "h": h,
        # Convert (in the same pass) to the BT.709 the output is tagged with.
        "in_color_matrix": clip.color_matrix,
        "out_color_matrix": "bt709",
        "out_range": "tv",
    }
    if fit is not None and abs(clip.sar - 1) > 1e-3 and isinstance(w, int) and isinstance(h, int):
        # Anamorphic: the square-pixel size computed here (scale's reset_sar is newer than 5.1).
        kwargs["w"], kwargs["h"] = fit_size(clip.width, clip.height, clip.sar, w, h, fit)  # type: ignore[arg-type]
    elif fit is not None:
        kwargs["force_original_aspect_ratio"] = fit
        kwargs["force_divisible_by"] = 2  # even sizes for 4:2:0
    if fast:
        kwargs["flags"] = "bilinear"  # a picture about to be blurred needs no bicubic
    return v.filter("scale", **kwargs)


def _same_shape(clip: _Clip, tl: Timeline) -> bool:
    src = clip.width * clip.sar / max(1, clip.height)
    return abs(src / (tl.width / tl.height) - 1) < 0.01


def _fit(v: Any, clip: _Clip, tl: Timeline) -> Any:
    """Any shape into W x H: contain (bars), cover (crop) or blur (blurred copy behind)."""
    W, H = tl.width, tl.height
    if tl.fit == "cover":
        v = _scale(v, clip, W, H, fit="increase")
        return v.filter("crop", W, H)
    if tl.fit == "blur" and not _same_shape(clip, tl):
        parts = v.filter_multi_output("split", 2)
        fg, bg = parts[0], parts[1]
        # The blurred fill is made at an eighth of the size: cheap, and blurred anyway.
        sw, sh = max(16, (W // 8) & ~1), max(16, (H // 8) & ~1)
        bg = _scale(bg, clip, sw, sh, fit="increase", fast=True).filter("crop", sw, sh)
        bg = bg.filter("gblur", sigma=max(2.0, sw / 40))
        bg = bg.filter("scale", w=W, h=H, flags="bilinear")
        fg = _scale(fg, clip, W, H, fit="decrease")
        return ffmpeg.overlay(bg, fg, x="(W-w)/2", y="(H-h)/2", format="yuv420")
    v = _scale(v, clip, W, H, fit="decrease")
    return v.filter("pad", w=W, h=H, x="(ow-iw)/2", y="(oh-ih)/2", color="black")


def _exact(v: Any, frames: int) -> Any:
    # fps ends where the last source frame kept ends, rounded to the grid: a frame long
    # when that frame reaches past the cut (24 fps cut at 29/30 s gives 30 frames), a frame
    # short when the stream ends before its declared duration. Clone the last frame, then
    # cut at the exact count; trim closes its input once done, so the clones cost nothing.
    v = v.filter("tpad", stop_mode="clone", stop=frames)
    return v.filter("trim", end_frame=frames)


def _trimmed(source: Any, clip: _Clip, frames: int, tl: Timeline) -> tuple[Any, bool]:
    """Trim to the slot; drop surplus frames first when the source runs faster than the output."""
    # Timestamps from zero before and after the cut: a stream that starts late (MPEG-TS)
    # would otherwise lose its head, and concat would inherit the offset (BENCHMARKS.md:
    # 901 frames for 900).
    v = source.filter("setpts", "PTS-STARTPTS")
    v = v.filter("trim", start=num(clip.in_ms / 1000), duration=num(frames / tl.fps))
    v = v.filter("setpts", "PTS-STARTPTS")
    # Drop surplus frames before scaling them (BENCHMARKS.md); a slower source is scaled
    # first and its duplicates made after, as references, for free.
    fps_first = clip.source_fps <= 0 or clip.source_fps > tl.fps
    if fps_first:
        v = v.filter("fps", fps=tl.fps)
    return v, fps_first


def _clip_chain(source: Any, clip: _Clip, frames: int, tl: Timeline) -> Any:
    """One source -> exactly ``frames`` frames of W x H yuv420p at the output rate."""
    v, fps_first = _trimmed(source, clip, frames, tl)
    v = _fit(v, clip, tl)
    v = v.filter("setsar", "1")
    v = v.filter("format", "yuv420p")
    if not fps_first:
        v = v.filter("fps", fps=tl.fps)
    return _exact(v, frames)


def _presenter_chain(source: Any, scene: TimelineScene, tl: Timeline) -> Any:
    """A green-screen clip keyed over its background, bottom-centred, for the clip's length."""
    assert scene.background is not None and scene.chroma is not None
    b = scene.background
    bg_clip = _Clip(b.source_fps, b.source_width, b.source_height, b.source_sar, b.color_matrix)
    bg = _clip_chain(input_node(b.path, f"bg{scene.index}")["v:0"], bg_clip, scene.frames, tl)
    clip = _clip_of(scene)
    fg, fps_first = _trimmed(source, clip, scene.frames, tl)
    fg = _scale(fg, clip, tl.width, tl.height, fit="decrease")
    fg = fg.filter("format", "yuva420p")
    key = scene.chroma
    fg = fg.filter("chromakey", color=_hex(key.color), similarity=num(key.similarity), blend=num(key.blend))
    if not fps_first:
        fg = fg.filter("fps", fps=tl.fps)
    fg = _exact(fg, scene.frames)
    v = ffmpeg.overlay(bg, fg, x="(W-w)/2", y="H-h", format="yuv420")
    v = v.filter("setsar", "1").filter("format", "yuv420p")
    return v.filter("trim", end_frame=scene.frames)


def _clip_of(scene: TimelineScene) -> _Clip:
    return _Clip(scene.source_fps, scene.source_width, scene.source_height, scene.source_sar, scene.color_matrix,
                 scene.in_ms)


def _hex(color: str) -> str:
    c = color.strip().lower().removeprefix("#").removeprefix("0x")
    return f"0x{c.upper()}"


def _join(chains: Sequence[Any], tl: Timeline) -> Any:
    """Cut (concat) or crossfade (xfade at each scene's start on the output grid)."""
    if len(chains) == 1:
        return chains[0]
    if not tl.overlap_frames:
        return ffmpeg.concat(*chains, v=1, a=0)
    out = chains[0]
    for scene, chain in zip(tl.scenes[1:], chains[1:], strict=True):
        if scene.overlap_frames:
            out = ffmpeg.filter([out, chain], "xfade", transition="fade",
                                duration=num(scene.overlap_frames / tl.fps), offset=num(scene.start_frame / tl.fps))
        else:
            out = ffmpeg.concat(out, chain, v=1, a=0)
    return out


def _hold(video: Any, tl: Timeline) -> Any:
    if not tl.hold_frames:
        return video
    if tl.overlap_frames:
        # ffmpeg 5.1's xfade ends its output with a timestamp tpad misreads: 54 frames of two
        # crossfaded scenes + 45 clones came out as 76. Timestamps counted from the frames
        # (the output grid) make the clones whole.
        video = video.filter("setpts", f"N/({tl.fps}*TB)")
    # A frame count rather than stop_duration: a duration would be rounded back to frames.
    return video.filter("tpad", stop_mode="clone", stop=tl.hold_frames)


def _watermark(video: Any, tl: Timeline) -> Any:
    wm = tl.watermark
    if wm is None:
        return video
    width = wm.width_px or max(16, round(max(tl.width, tl.height) * 0.12))
    width -= width % 2
    margin = round(min(tl.width, tl.height) * 0.03)
    # Colours converted to BT.709 here, not by overlay's automatic (BT.601) conversion.
    img = input_node(wm.path, "watermark")["v:0"].filter("format", "rgba")
    img = img.filter("colorchannelmixer", aa=num(wm.opacity))
    img = img.filter("scale", w=width, h=-2, out_color_matrix="bt709", out_range="tv").filter("format", "yuva420p")
    x = f"{margin}" if wm.position.endswith("left") else f"W-w-{margin}"
    if wm.position.startswith("top"):
        y = f"{margin}"
    elif tl.height > tl.width:
        # Shorts: the bottom quarter is under the player's interface.
        from core.media.captions import SHORTS_UI_BOTTOM_FRACTION

        y = f"H*{1 - SHORTS_UI_BOTTOM_FRACTION:.2f}-h-{margin}"
    else:
        y = f"H-h-{margin}"
    # A still image is one frame: overlay repeats it to the end (eof_action=repeat).
    return ffmpeg.overlay(video, img, x=x, y=y, format="yuv420", eof_action="repeat")


def _subtitles(video: Any, tl: Timeline, work_dir: Path, offset_frames: int = 0) -> Any:
    if not tl.captions_ass:
        return video
    # fontsdir: libass loads the fonts there as memory fonts and matches them first.
    fonts = work_dir / "fonts" if tl.caption_fonts else FONT_DIR
    if offset_frames:
        # A chunk of a longer video: libass times events by the frames' timestamps, so the
        # frames carry the video's own clock while they pass it (the ASS keeps its times).
        # settb first: on a 1/fps time base the shift is a whole number, never a rounded float.
        video = video.filter("settb", f"1/{tl.fps}").filter("setpts", f"PTS+{offset_frames}")
    video = video.filter("ass", filename=str(work_dir / "captions.ass"), fontsdir=str(fonts))
    return video.filter("setpts", "PTS-STARTPTS") if offset_frames else video


def write_captions(tl: Timeline, work_dir: Path) -> None:
    """The ASS document and its fonts, where :func:`_subtitles` points libass."""
    if not tl.captions_ass:
        return
    (work_dir / "captions.ass").write_text(tl.captions_ass, encoding="utf-8")
    if tl.caption_fonts:
        fonts = work_dir / "fonts"
        fonts.mkdir(exist_ok=True)
        for font in tl.caption_fonts:
            try:
                shutil.copyfile(font, fonts / font.name)
            except OSError as exc:
                raise MediaError(f"cannot read the caption font {font.name}: {exc.strerror or exc}") from exc


def tag_bt709(video: Any) -> Any:
    # ffmpeg >= 7 takes an encoder's primaries and transfer from the frames, not from
    # -color_primaries/-color_trc: tag the frames (metadata only, the pixels were
    # converted to BT.709 by each scene's scale).
    return video.filter("setparams", **BT709_FRAME_PARAMS)


def video_graph(tl: Timeline, work_dir: Path, encoder: VideoEncoder, *, skip_frames: int = 0,
                offset_frames: int = 0) -> Any:
    """The whole picture of ``tl`` as one ffmpeg-python stream, ready for ``encoder``.

    A chunk of a longer video (core.media.chunks) is a timeline of its own scenes whose
    first ``skip_frames`` are dropped after the join (the part of a crossfaded scene the
    chunk before shows), and whose captions run ``offset_frames`` into the video's clock.
    """
    chains = []
    for s in tl.scenes:
        source = input_node(s.path, s.index)["v:0"]
        chains.append(_presenter_chain(source, s, tl) if s.background else _clip_chain(source, _clip_of(s), s.frames, tl))
    video = _hold(_join(chains, tl), tl)
    if skip_frames:
        video = video.filter("trim", start_frame=skip_frames).filter("setpts", "PTS-STARTPTS")
    video = _subtitles(_watermark(video, tl), tl, work_dir, offset_frames)
    video = tag_bt709(apply_steps(video, tl.video_post))
    # The exact frame count, cut in the graph (the argv's -frames:v only guards a video-only output).
    video = video.filter("trim", end_frame=tl.total_frames)
    for name, kwargs in encoder.upload_filters():
        video = video.filter(name, **kwargs)
    return video
