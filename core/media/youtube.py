"""YouTube's recommended upload settings, as a check over probed facts.

Source: YouTube Help, "Recommended upload encoding settings" (H.264 High, progressive,
4:2:0, closed GOP of half the frame rate, 2 consecutive B-frames, the bitrate table below;
AAC-LC 48 kHz stereo at 384 kb/s; MP4 with the moov atom at the front) and the -14 LUFS /
-1 dBTP loudness YouTube normalises to.

Everything here reads the file: :func:`stream_structure` walks the video packets (no
decoding) to measure the GOP, whether every keyframe is an IDR (a closed GOP) and the
longest run of B-frames, from the H.264 slice headers themselves.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from core.errors import MediaError
from core.media.formats import AUDIO_SAMPLE_RATE, TRUE_PEAK_MAX_DBTP
from core.media.probe import MediaInfo
from core.schemas import ReadinessCheck, VideoProperties

__all__ = [
    "ALLOWED_FPS",
    "YOUTUBE_BITRATE_KBPS",
    "max_bitrate_kbps",
    "StreamStructure",
    "stream_structure",
    "video_properties",
    "readiness",
    "LOUDNESS_TOLERANCE_LU",
]

ALLOWED_FPS = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0)
LOUDNESS_TOLERANCE_LU = 1.0

# SDR uploads, kb/s: short side -> (standard frame rate 24-30, high frame rate 48-60).
# Where YouTube gives a range (2160p: 35-45 / 53-68 Mb/s) the top of it is the cap.
YOUTUBE_BITRATE_KBPS: dict[int, tuple[int, int]] = {
    360: (1_000, 1_500),
    480: (2_500, 4_000),
    720: (5_000, 7_500),
    1080: (8_000, 12_000),
    1440: (16_000, 24_000),
    2160: (45_000, 68_000),
}


def max_bitrate_kbps(width: int, height: int, fps: float) -> int:
    """The table's bitrate for this size: the tier of the short side (the next tier up between tiers)."""
    short = min(width, height)
    tiers = sorted(YOUTUBE_BITRATE_KBPS)
    tier = next((t for t in tiers if short <= t), tiers[-1])
    std, high = YOUTUBE_BITRATE_KBPS[tier]
    return high if fps > 31 else std


# --------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class StreamStructure:
    """The video stream's coding structure, measured from its packets."""

    frames: int
    keyframes: int
    gop_frames: int  # the longest keyframe-to-keyframe distance, in frames
    closed_gop: bool | None  # every keyframe is an IDR picture (H.264/HEVC); None when unknown
    max_b_frames: int | None  # longest run of consecutive B-frames (H.264); None when unknown
    extradata_sha1: str | None  # identical for streams that can be joined by stream copy


def stream_structure(path: str | Path) -> StreamStructure:
    """Walk the first video stream's packets of ``path`` (demux only, no decoding)."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot read {Path(path).name} as media: {exc}") from exc
    with container:
        if not container.streams.video:
            raise MediaError(f"{Path(path).name} has no video stream")
        vs = container.streams.video[0]
        codec = vs.codec_context.name
        extradata = bytes(vs.codec_context.extradata or b"")
        nal_len = _avcc_length_size(extradata) if codec == "h264" else _hvcc_length_size(extradata)
        frames = keyframes = 0
        last_key = None
        gop = 0
        closed: bool | None = True if codec in ("h264", "hevc") else None
        b_run = max_b = 0
        for pkt in container.demux(vs):
            if not pkt.size:
                continue
            if pkt.is_keyframe:
                if last_key is not None:
                    gop = max(gop, frames - last_key)
                last_key = frames
                keyframes += 1
            if codec in ("h264", "hevc"):
                idr, slice_kind = _first_picture(bytes(pkt), codec, nal_len)
                if pkt.is_keyframe and idr is False:
                    closed = False
                if codec == "h264":
                    b_run = b_run + 1 if slice_kind == "B" else 0
                    max_b = max(max_b, b_run)
            frames += 1
        if last_key is not None:
            gop = max(gop, frames - last_key)
    return StreamStructure(
        frames=frames,
        keyframes=keyframes,
        gop_frames=gop,
        closed_gop=closed if keyframes else None,
        max_b_frames=max_b if codec == "h264" else None,
        extradata_sha1=hashlib.sha1(extradata).hexdigest() if extradata else None,
    )


def _avcc_length_size(extradata: bytes) -> int:
    """NAL length-prefix size from an avcC record; 0 for Annex B (start codes)."""
    if len(extradata) >= 5 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    return 0


def _hvcc_length_size(extradata: bytes) -> int:
    if len(extradata) >= 22 and extradata[0] == 1:
        return (extradata[21] & 3) + 1
    return 0


def _nals(data: bytes, length_size: int) -> list[bytes]:
    out: list[bytes] = []
    if length_size:
        i = 0
        while i + length_size <= len(data):
            n = int.from_bytes(data[i : i + length_size], "big")
            i += length_size
            out.append(data[i : i + n])
            i += n
        return out
    # Annex B: split on 00 00 01 (a 4-byte start code leaves a trailing zero, harmless)
    return [p for p in data.split(b"\x00\x00\x01") if p]


def _first_picture(data: bytes, codec: str, length_size: int) -> tuple[bool | None, str | None]:
    """(is the picture an IDR, its first slice's type P/B/I) from the packet's first VCL NAL."""
    for nal in _nals(data, length_size):
        if not nal:
            continue
        if codec == "h264":
            kind = nal[0] & 0x1F
            if kind in (1, 5):
                return kind == 5, _h264_slice_type(nal)
        else:
            kind = (nal[0] >> 1) & 0x3F
            if kind <= 21:  # VCL
                if kind >= 16:  # IRAP: BLA 16-18, IDR 19-20, CRA 21
                    return kind in (19, 20), "I"
                return False, None
    return None, None


def _h264_slice_type(nal: bytes) -> str | None:
    # Remove emulation-prevention bytes from the head of the RBSP, then read two ue(v).
    raw = bytearray()
    zeros = 0
    for b in nal[1:24]:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        raw.append(b)
        zeros = zeros + 1 if b == 0 else 0
    bits = _Bits(bytes(raw))
    try:
        bits.ue()  # first_mb_in_slice
        slice_type = bits.ue() % 5
    except IndexError:
        return None
    return {0: "P", 1: "B", 2: "I", 3: "P", 4: "I"}[slice_type]


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        byte = self.data[self.pos >> 3]
        value = (byte >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise IndexError("bad exp-Golomb code")
        value = 1
        for _ in range(zeros):
            value = (value << 1) | self.bit()
        return value - 1


# --------------------------------------------------------------------------- properties


def video_properties(
    info: MediaInfo,
    *,
    faststart: bool,
    structure: StreamStructure | None = None,
    integrated_lufs: float | None = None,
    true_peak_dbtp: float | None = None,
) -> VideoProperties:
    v, a = info.video, info.audio
    if v is None:
        raise ValueError("no video stream")
    v_duration = v.duration_s if v.duration_s is not None else None
    v_kbps = None
    if v_duration and a is not None and a.bit_rate and info.bytes:
        v_kbps = max(0, round((info.bytes * 8 / v_duration - a.bit_rate) / 1000))
    elif v_duration and info.bytes:
        v_kbps = round(info.bytes * 8 / v_duration / 1000)
    return VideoProperties(
        video_codec=v.codec,
        profile=v.profile,
        pix_fmt=v.pix_fmt,
        width=v.width,
        height=v.height,
        fps=v.fps,
        frames=structure.frames if structure else v.frames,
        video_duration_s=round(v.duration_s, 4) if v.duration_s is not None else None,
        audio_codec=a.codec if a else None,
        audio_profile=a.profile if a else None,
        sample_rate=a.sample_rate if a else None,
        channels=a.channels if a else None,
        audio_duration_s=round(a.duration_s, 4) if a and a.duration_s is not None else None,
        faststart=faststart,
        gop_frames=structure.gop_frames if structure else None,
        closed_gop=structure.closed_gop if structure else None,
        max_b_frames=structure.max_b_frames if structure else None,
        color_primaries=v.color_primaries,
        color_transfer=v.color_transfer,
        color_space=v.color_space,
        video_bitrate_kbps=v_kbps,
        audio_bitrate_kbps=round(a.bit_rate / 1000) if a and a.bit_rate else None,
        integrated_lufs=None if integrated_lufs is None else round(integrated_lufs, 2),
        true_peak_dbtp=None if true_peak_dbtp is None else round(true_peak_dbtp, 2),
    )


def readiness(
    props: VideoProperties,
    *,
    expected_width: int,
    expected_height: int,
    expected_fps: int,
    loudness_lufs: float | None = None,
) -> ReadinessCheck:
    """Every deviation from the recommended settings, in words an agent can act on."""
    d: list[str] = []
    if props.video_codec != "h264":
        d.append(f"video codec is {props.video_codec}, YouTube recommends H.264")
    if (props.profile or "").lower() != "high":
        d.append(f"H.264 profile is {props.profile}, recommended High")
    if props.pix_fmt != "yuv420p":
        d.append(f"pixel format is {props.pix_fmt}, recommended yuv420p (4:2:0)")
    if (props.width, props.height) != (expected_width, expected_height):
        d.append(f"size is {props.width}x{props.height}, expected {expected_width}x{expected_height}")
    if not any(abs(props.fps - f) < 0.01 for f in ALLOWED_FPS) or abs(props.fps - expected_fps) > 0.01:
        d.append(f"frame rate is {props.fps}, expected {expected_fps}")
    half = math.ceil(max(props.fps, 1.0) / 2 - 1e-6)
    if props.gop_frames is not None and props.gop_frames > half:
        d.append(f"GOP is {props.gop_frames} frames, recommended at most half the frame rate ({half})")
    if props.closed_gop is False:
        d.append("GOP is open (a keyframe is not an IDR picture), recommended closed")
    if props.max_b_frames is not None and props.max_b_frames > 2:
        d.append(f"up to {props.max_b_frames} consecutive B-frames, recommended 2")
    tags = (props.color_primaries, props.color_transfer, props.color_space)
    if any(t is not None and t != "bt709" for t in tags) or all(t is None for t in tags):
        d.append(f"colour is tagged {'/'.join(t or 'unset' for t in tags)}, recommended BT.709")
    if props.audio_codec != "aac":
        d.append(f"audio codec is {props.audio_codec}, recommended AAC-LC")
    elif (props.audio_profile or "").upper() != "LC":
        d.append(f"AAC profile is {props.audio_profile}, recommended LC")
    if props.sample_rate not in (AUDIO_SAMPLE_RATE, 44100):
        d.append(f"audio sample rate is {props.sample_rate}, recommended 48 kHz or 44.1 kHz")
    if props.channels != 2:
        d.append(f"audio has {props.channels} channel(s), recommended stereo")
    if not props.faststart:
        d.append("the moov atom is not at the front of the file (no faststart)")
    if props.video_duration_s and props.audio_duration_s is not None:
        gap = abs(props.video_duration_s - props.audio_duration_s)
        if gap > 1.0 / max(props.fps, 1.0) + 0.025:  # one frame plus an AAC frame of slack
            d.append(f"audio and video lengths differ by {gap:.3f} s")
    if loudness_lufs is not None and props.integrated_lufs is not None:
        # Silence (no narration, music or scene sound) has no loudness to correct.
        if props.integrated_lufs > -70 and abs(props.integrated_lufs - loudness_lufs) > LOUDNESS_TOLERANCE_LU:
            d.append(f"integrated loudness is {props.integrated_lufs:.1f} LUFS, target {loudness_lufs:.1f} "
                     f"(±{LOUDNESS_TOLERANCE_LU:.0f} LU)")
    if props.true_peak_dbtp is not None and props.true_peak_dbtp > TRUE_PEAK_MAX_DBTP:
        d.append(f"true peak is {props.true_peak_dbtp:.1f} dBTP, at most {TRUE_PEAK_MAX_DBTP:.0f} dBTP recommended")
    return ReadinessCheck(ready=not d, deviations=d)
