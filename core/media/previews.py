"""Small inline previews so a multimodal agent can see what it made, never whole media.

``image_preview``: a downscaled JPEG of an image (the thumbnail). ``contact_sheet``: one
row per clip, its first and middle frames side by side (or an early frame, when reaching the
middle would mean decoding a long GOP), labelled — for a scene or for a
whole assembly. Both stay under a byte budget (the MCP response must stay under 1 MiB).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from core.errors import MediaError
from core.media.ffmpeg import requires, run_ffmpeg
from core.media.pictures import shrink

__all__ = ["image_preview", "contact_sheet", "scene_frames", "video_rendition", "PREVIEW_MAX_BYTES"]

PREVIEW_MAX_BYTES = 300_000
_MAX_ROWS = 12


def _jpeg_under(img, max_bytes: int) -> bytes:  # noqa: ANN001 - PIL.Image
    for quality in (85, 75, 65, 55, 45):
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality, optimize=True)
        if buf.tell() <= max_bytes:
            return buf.getvalue()
    img = img.resize((max(1, img.width // 2), max(1, img.height // 2)))
    return _jpeg_under(img, max_bytes)


def image_preview(path: Path, *, max_width: int = 640, max_bytes: int = PREVIEW_MAX_BYTES) -> bytes:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            # Box-reduced to about twice the width first: an 8192 px picture is never copied at full size.
            side = 2 * max_width * max(im.size) // im.width
            im = shrink(im, "RGB", side) if im.width > 2 * max_width else im.convert("RGB")
            if im.width > max_width:
                im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
            return _jpeg_under(im, max_bytes)
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaError(f"cannot preview {path.name}: {exc}") from exc


# Decoding to the exact middle of a clip with one keyframe (x264's default GOP is 250 frames)
# means decoding half the clip: 60 frames of 1080p, ~0.15 CPU-s, for a 240 px tile. A tile is
# taken at most this many frames past the keyframe before the middle: the middle itself in
# any clip with a keyframe every second or so, an early frame of a clip with a single GOP.
_MAX_FRAMES_PAST_KEYFRAME = 12


def _frames(path: Path, tile_w: int, fractions: Sequence[float] = (0.0, 0.5),
            max_past_keyframe: int = _MAX_FRAMES_PAST_KEYFRAME) -> list:
    """Frames at these fractions of the clip (default: first and about the middle) as PIL images."""
    import av

    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # reaching the middle of a long GOP decodes dozens of frames
        # A 240 px tile does not show deblocking: skipping the loop filter saves about a fifth of the decode.
        stream.codec_context.options = {"skip_loop_filter": "all"}
        duration = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
        rate = float(stream.average_rate or 30)
        for fraction in fractions:
            # The last frame starts one frame before the end: aim inside it, not at the end itself.
            t = max(0.0, min(duration * fraction, duration - 1.5 / rate))
            if t > 0 and stream.time_base:
                container.seek(int(t / stream.time_base), stream=stream, backward=True)
            frame = None
            for n, frame in enumerate(container.decode(stream)):
                if frame.time is None or frame.time >= t - 0.04 or n >= max_past_keyframe:
                    break
            if frame is None:
                continue
            # Scaled by swscale straight from YUV: a third of the cost of a full-size RGB image resized by PIL.
            tile_h = max(2, round(frame.height * tile_w / frame.width))
            out.append(frame.reformat(width=tile_w, height=tile_h, format="rgb24", interpolation="AREA").to_image())
    return out


def contact_sheet(clips: Sequence[tuple[str, Path]], *, tile_width: int = 240,
                  max_bytes: int = PREVIEW_MAX_BYTES) -> bytes:
    """``clips`` as (label, path); rows beyond 12 are sampled evenly."""
    from PIL import Image, ImageDraw, ImageFont

    from core.media.fonts import font_path

    if not clips:
        raise MediaError("no clips to preview")
    if len(clips) > _MAX_ROWS:
        step = len(clips) / _MAX_ROWS
        clips = [clips[int(i * step)] for i in range(_MAX_ROWS)]
    rows = []
    for label, path in clips:
        try:
            frames = _frames(path, tile_width)
        except Exception as exc:  # PyAV raises many types; a broken clip gets a note, not a crash
            raise MediaError(f"cannot preview {path.name}: {exc}") from exc
        rows.append((label, frames))
    tile_h = max((f.height for _, fr in rows for f in fr), default=tile_width * 9 // 16)
    label_w, pad = 110, 6
    sheet = Image.new("RGB", (label_w + 2 * (tile_width + pad) + pad, len(rows) * (tile_h + pad) + pad), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.truetype(str(font_path("text")), 16)
    for r, (label, frames) in enumerate(rows):
        y = pad + r * (tile_h + pad)
        draw.text((pad, y + tile_h // 2), label, font=font, fill=(235, 235, 235), anchor="lm")
        for c, frame in enumerate(frames[:2]):
            sheet.paste(frame, (label_w + pad + c * (tile_width + pad), y + (tile_h - frame.height) // 2))
    return _jpeg_under(sheet, max_bytes)


# The storyboard's frames are judged one by one: first, middle and last exactly, so decoding may run up
# to two seconds past a keyframe (the scenes the server writes have one every half second).
_STORYBOARD_FRAMES_PAST_KEYFRAME = 60


def scene_frames(path: Path, *, width: int = 320, fractions: Sequence[float] = (0.0, 0.5, 1.0),
                 max_bytes: int = 60_000) -> list[bytes]:
    """JPEGs of a clip at these fractions of its length (first, middle, last), ``width`` pixels wide."""
    try:
        frames = _frames(path, width, fractions, _STORYBOARD_FRAMES_PAST_KEYFRAME)
    except Exception as exc:  # PyAV raises many types; a broken clip is a MediaError like any other
        raise MediaError(f"cannot preview {path.name}: {exc}") from exc
    if not frames:
        raise MediaError(f"cannot preview {path.name}: no video frames")
    return [_jpeg_under(frame, max_bytes) for frame in frames]


# A light rendition of a whole video for a player in the client: small, low bitrate, starts at once.
requires({"scale": ()}, encoders=("libx264", "aac"))


def video_rendition(src: Path, out: Path, *, width: int = 640, duration_s: float | None = None) -> None:
    """``out``: ``src`` scaled to ``width`` (never up), H.264 CRF 30 + AAC 64 kb/s, moov first. Blocking."""
    args = ["-i", str(src), "-map", "0:v:0", "-map", "0:a:0?", "-vf", f"scale='min({width},iw)':-2",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-pix_fmt", "yuv420p", "-threads", "2",
            "-c:a", "aac", "-b:a", "64k", "-ac", "2", "-movflags", "+faststart", "-f", "mp4", str(out)]
    run_ffmpeg(args, duration_s=duration_s, what="the preview rendition")
