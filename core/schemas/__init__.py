"""Pydantic models the agent sees: requests, results, the job envelope, the report.

Requests are validated here (bounds, identifier shapes) so every entry point, MCP or
not, gets the same checks. Results carry facts probed from the files they describe.
"""

from __future__ import annotations

import re
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = [
    "ID_PATTERN",
    "AspectRatio",
    "Capability",
    "AssetKind",
    "AssetState",
    "Attempt",
    "WordTiming",
    "SegmentTiming",
    "SceneRequest",
    "NarrationRequest",
    "ThumbnailRequest",
    "Overlay",
    "AssemblyRequest",
    "AssetResult",
    "SceneResult",
    "NarrationResult",
    "ThumbnailResult",
    "ImportResult",
    "VideoProperties",
    "ReadinessCheck",
    "AssemblyResult",
    "JobStatus",
    "JobError",
    "JobEnvelope",
    "ProviderStatus",
    "ReportTotals",
    "ProviderReport",
    "VoiceInfo",
    "VoiceResult",
    "DeleteVoiceResult",
]

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
AspectRatio = Literal["16:9", "9:16"]
Capability = Literal["video", "speech", "image"]
AssetKind = Literal["scene", "narration", "thumbnail", "final_video", "music", "image", "font"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
# Whether an asset's file still holds the bytes that were registered (core.assets.registry).
AssetState = Literal["ok", "damaged", "missing", "archived"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- attempts and timings -------------------------------------------------------------


class Attempt(_Model):
    """One provider tried for one asset."""

    provider: str
    outcome: Literal["succeeded", "failed", "skipped"]
    reason: str | None = Field(None, description="why it failed or was skipped; null on success")
    error_code: str | None = None
    elapsed_s: float = 0.0
    cost_usd: float = 0.0
    decision: str | None = Field(None, description="why this provider was tried at this position")


class WordTiming(_Model):
    text: str
    start_s: float
    end_s: float


class SegmentTiming(_Model):
    index: int = Field(description="1-based, one segment per scene when segments were given")
    text: str
    start_s: float
    end_s: float
    words: list[WordTiming] = Field(default_factory=list)


# --- requests ---------------------------------------------------------------------------


class _VideoScoped(_Model):
    workspace_id: str = Field("default", pattern=ID_PATTERN)
    video_id: str = Field(pattern=ID_PATTERN)
    providers: list[str] | None = None
    fresh: bool = Field(False, description="regenerate even when an identical request is in the cache")


# Text the agent sends is drawn on cards, spoken, captioned and sent to vendors: control
# characters (other than tab and newline) have no place in it and are refused, not stripped.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_PROVIDER_ID_CHARS = 100
MAX_NARRATION_CHARS = 20_000


def _plain_text(field: str, value: str | None, *, required: bool = False) -> str | None:
    if value is None:
        return value
    bad = _CONTROL_CHARS.search(value)
    if bad:
        raise ValueError(f"{field} contains the control character U+{ord(bad.group()):04X}; remove it")
    if required and not value.strip():
        raise ValueError(f"{field} is blank: write what it should say")
    return value


def _provider_ids(value: list[str] | None) -> list[str] | None:
    for pid in value or ():
        if len(pid) > MAX_PROVIDER_ID_CHARS or _CONTROL_CHARS.search(pid):
            raise ValueError(f"a provider id is at most {MAX_PROVIDER_ID_CHARS} plain characters, like "
                             "'local:placeholder' (provider_report lists the known ids)")
    return value


class SceneRequest(_VideoScoped):
    scene_index: int = Field(ge=1, le=999)
    prompt: str = Field(min_length=1, max_length=4000)
    duration_s: float = Field(8.0, ge=1, le=60)
    aspect_ratio: AspectRatio = "16:9"
    style: str | None = Field(None, max_length=500)
    negative_prompt: str | None = Field(None, max_length=2000)

    @field_validator("prompt", "style", "negative_prompt")
    @classmethod
    def _plain(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _plain_text(info.field_name or "text", v, required=info.field_name == "prompt")

    @field_validator("providers")
    @classmethod
    def _providers(cls, v: list[str] | None) -> list[str] | None:
        return _provider_ids(v)

    @property
    def size(self) -> tuple[int, int]:
        return (1920, 1080) if self.aspect_ratio == "16:9" else (1080, 1920)


class NarrationRequest(_VideoScoped):
    text: str | None = Field(None, min_length=1, max_length=20000)
    segments: list[str] | None = Field(None, min_length=1, max_length=200)
    voice: str | None = Field(None, max_length=200)
    speed: float = Field(1.0, ge=0.5, le=2.0)
    pitch_semitones: float = Field(0.0, ge=-12, le=12)
    instructions: str | None = Field(None, max_length=2000)

    @field_validator("segments")
    @classmethod
    def _segments_not_blank(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            for i, s in enumerate(v, 1):
                if not s.strip():
                    raise ValueError(f"segment {i} is empty")
                if len(s) > 5000:
                    raise ValueError(f"segment {i} is longer than 5000 characters")
                _plain_text(f"segment {i}", s)
            total = sum(len(s) for s in v)
            if total > MAX_NARRATION_CHARS:
                raise ValueError(f"the segments hold {total} characters; a narration is at most "
                                 f"{MAX_NARRATION_CHARS} characters in all (split the video, or shorten the script)")
        return v

    @field_validator("text", "voice", "instructions")
    @classmethod
    def _plain(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _plain_text(info.field_name or "text", v)

    @field_validator("providers")
    @classmethod
    def _providers(cls, v: list[str] | None) -> list[str] | None:
        return _provider_ids(v)

    def texts(self) -> list[str]:
        """The narration as segments (a single ``text`` is one segment)."""
        if self.segments:
            return [s.strip() for s in self.segments]
        if self.text and self.text.strip():
            return [self.text.strip()]
        raise ValueError("give either text or segments (one string per scene)")


class ThumbnailRequest(_VideoScoped):
    title: str = Field(min_length=1, max_length=100)
    subtitle: str | None = Field(None, max_length=120)
    prompt: str | None = Field(None, max_length=4000)
    style: str | None = Field(None, max_length=500)
    font: str | None = Field(None, max_length=1000, description="the title font: a bundled font's name, or a font "
                             "imported into the video (its ref or file stem); None: inter-display-black")
    negative_prompt: str | None = Field(None, max_length=2000)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)

    @field_validator("title", "subtitle", "prompt", "style", "font", "negative_prompt")
    @classmethod
    def _plain(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _plain_text(info.field_name or "text", v, required=info.field_name == "title")

    @field_validator("providers")
    @classmethod
    def _providers(cls, v: list[str] | None) -> list[str] | None:
        return _provider_ids(v)


class Overlay(_Model):
    """A line of text drawn over the picture between two times (same pass as the captions)."""

    text: str = Field(min_length=1, max_length=200, description="The text; long text is wrapped to the caption width.")
    start_s: float = Field(ge=0, le=36_000, description="When it appears, seconds from the start of the video.")
    end_s: float = Field(gt=0, le=36_000, description="When it disappears (after start_s).")
    position: Literal["top", "center", "bottom", "top-left", "top-right", "bottom-left", "bottom-right"] = Field(
        "top", description="Where on the frame; bottom positions stay clear of the captions and of the Shorts interface.")

    @model_validator(mode="after")
    def _ends_after_start(self) -> Overlay:
        if self.end_s <= self.start_s:
            raise ValueError(f"overlay {self.text[:40]!r}: end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self


class AssemblyRequest(_Model):
    workspace_id: str = Field("default", pattern=ID_PATTERN)
    video_id: str = Field(pattern=ID_PATTERN)
    scenes: list[str] | None = Field(None, max_length=200)
    narration: str | None = None
    music: str | None = None
    aspect_ratio: AspectRatio | None = None
    fps: Literal[30, 60] = 30
    height: int = Field(1080, ge=720, le=2160)
    captions: bool = True
    transition: Literal["cut", "crossfade"] = "cut"
    crossfade_s: float = Field(0.5, ge=0.1, le=3.0, description="crossfade length (video and audio), seconds")
    fit: Literal["contain", "cover", "blur"] = Field("contain", description="a scene of another shape: contain (bars), cover (crop), blur (blurred fill)")
    overlays: list[Overlay] = Field(default_factory=list, max_length=50)
    caption_font: str | None = Field(None, max_length=1000, description="captions' and overlays' font: a bundled "
                                     "font's name, or a font imported into the video; None: inter-bold")
    watermark: str | None = None
    watermark_position: Literal["top-left", "top-right", "bottom-left", "bottom-right"] = "bottom-right"
    watermark_opacity: float = Field(0.6, ge=0.05, le=1.0)
    music_volume_db: float = Field(-12.0, ge=-40, le=0, description="music loudness relative to the narration, dB")
    scene_audio_volume_db: float = Field(-10.0, ge=-60, le=0,
                                         description="the scenes' own sound relative to the narration, dB")
    loudness_lufs: float = Field(-14.0, ge=-30, le=-8)
    presenter_scenes: list[int] = Field(default_factory=list, max_length=100,
                                        description="1-based positions in scenes of green-screen presenter clips")
    chroma_color: str = Field("#00FF00", pattern=r"^(#|0x)?[0-9A-Fa-f]{6}$")
    chroma_similarity: float = Field(0.15, ge=0.01, le=0.6)
    chroma_blend: float = Field(0.05, ge=0.0, le=0.5)
    export_webm: bool = False
    hardware_encoder: bool = True

    @field_validator("presenter_scenes")
    @classmethod
    def _positions(cls, v: list[int]) -> list[int]:
        for n in v:
            if n < 2:
                raise ValueError(f"presenter scene {n}: a presenter clip needs a scene before it as its background "
                                 "(positions start at 1, and position 1 has nothing before it)")
        if len(set(v)) != len(v):
            raise ValueError("presenter_scenes lists a position twice")
        return sorted(v)


# --- results ----------------------------------------------------------------------------


class AssetResult(_Model):
    asset_id: str
    kind: AssetKind
    workspace_id: str
    video_id: str
    path: str = Field(description="absolute path on the server's machine")
    uri: str = Field(description="ytap:// resource uri of the file")
    provider: str
    model: str | None = None
    cost_usd: float = 0.0
    bytes: int
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    cached: bool = False
    created_at: str
    state: AssetState = Field("ok", description="ok: the file holds the registered bytes; damaged: other bytes; "
                              "missing: the file is gone; archived: moved into the video's archive by archive_video")
    attempts: list[Attempt] = Field(default_factory=list)


class SceneResult(AssetResult):
    scene_index: int
    prompt: str


class NarrationResult(AssetResult):
    segments: list[SegmentTiming]
    srt_path: str
    srt_uri: str
    voice: str | None = None


class ThumbnailResult(AssetResult):
    title: str
    font: str | None = Field(None, description="the title's font: a bundled font's name or the imported font's path")


class ImportResult(AssetResult):
    """A file imported by import_asset (provider ``user:import``), in the contract format of its kind."""

    source: str = Field(description="the file that was read (resolved, inside YTAP_IMPORT_ROOTS)")
    scene_index: int | None = Field(None, description="kind=scene: the scene's position")
    segments: list[SegmentTiming] = Field(default_factory=list,
                                          description="kind=narration: one segment spanning the voiceover")
    srt_path: str | None = Field(None, description="kind=narration: the caption file (empty without a transcript)")
    srt_uri: str | None = None
    font_name: str | None = Field(None, description="kind=font: family and style, as the font names them")
    notes: list[str] = Field(default_factory=list, description="what was done to the file to fit the contract format")


class VideoProperties(_Model):
    """Measured from the file, not assumed."""

    video_codec: str
    profile: str | None
    pix_fmt: str | None
    width: int
    height: int
    fps: float
    frames: int | None
    video_duration_s: float | None
    audio_codec: str | None
    audio_profile: str | None
    sample_rate: int | None
    channels: int | None
    audio_duration_s: float | None
    faststart: bool
    gop_frames: int | None = Field(None, description="longest keyframe-to-keyframe distance, frames")
    closed_gop: bool | None = Field(None, description="every keyframe is an IDR picture")
    max_b_frames: int | None = Field(None, description="longest run of consecutive B-frames")
    color_primaries: str | None = None
    color_transfer: str | None = None
    color_space: str | None = None
    video_bitrate_kbps: int | None = None
    audio_bitrate_kbps: int | None = None
    integrated_lufs: float | None = Field(None, description="EBU R128 integrated loudness of the file, LUFS")
    true_peak_dbtp: float | None = Field(None, description="EBU R128 true peak of the file, dBTP")


class ReadinessCheck(_Model):
    ready: bool = Field(description="true when nothing deviates from YouTube's recommended upload settings")
    deviations: list[str] = Field(default_factory=list, description="every deviation, in words that say what is off")


class AssemblyResult(AssetResult):
    scenes: list[str] = Field(description="uris of the scenes used, in order")
    narration: str | None = None
    music: str | None = None
    encoder: str = Field(description="video encoder used: libx264, a hardware encoder, or copy (stream copy)")
    encode_passes: int = Field(description="video encode passes: 1, or 0 when the scenes were stream-copied")
    stream_copy: bool = False
    properties: VideoProperties
    youtube_readiness: ReadinessCheck
    captions_burned: bool = False
    caption_font: str | None = Field(None, description="the font captions and overlays were drawn in, when any were")
    srt_path: str | None = Field(None, description="caption sidecar (SRT) timed to this video")
    srt_uri: str | None = None
    webm_path: str | None = Field(None, description="the WebM (VP9/Opus) export, when asked for")
    webm_uri: str | None = None
    hold_s: float = Field(0.0, description="how long the last frame is held so the narration is not cut off")
    notes: list[str] = Field(default_factory=list, description="decisions worth knowing (fallbacks, skipped steps)")


# --- jobs -------------------------------------------------------------------------------

ResultT = TypeVar("ResultT")


class JobError(_Model):
    code: str
    message: str
    attempts: list[Attempt] = Field(default_factory=list)


class JobEnvelope(_Model, Generic[ResultT]):
    job_id: str
    kind: str
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    message: str = ""
    result: ResultT | None = None
    error: JobError | None = None


# --- workspace voices -----------------------------------------------------------------------


class VoiceInfo(_Model):
    """A voice cloned into the workspace (clone_voice): synthesize_narration speaks it as voice=<name>."""

    workspace_id: str
    name: str = Field(description="what synthesize_narration's voice takes")
    provider: str = Field(description="the vendor whose account holds the clone (only its providers can speak it)")
    vendor_voice_id: str = Field(description="the voice's id at the vendor")
    description: str | None = None
    sample_uri: str = Field(description="the recording the voice was cloned from")
    sample_asset_id: str | None = None
    requires_verification: bool = Field(False, description="the vendor wants the voice verified before it speaks")
    created_at: str


class VoiceResult(VoiceInfo):
    sample_duration_s: float | None = Field(None, description="how much of the sample was uploaded, seconds")
    notes: list[str] = Field(default_factory=list, description="what was done to the sample, what the vendor said")


class DeleteVoiceResult(_Model):
    workspace_id: str
    name: str
    provider: str
    vendor_voice_id: str
    deleted_at: str
    vendor_deleted: bool = Field(description="false when the vendor no longer had the voice (only the entry was removed)")
    notes: list[str] = Field(default_factory=list)


# --- report -----------------------------------------------------------------------------


class ProviderStatus(_Model):
    id: str
    capability: Capability
    configured: bool
    reason: str | None = Field(None, description="why it is not available, when it is not")
    in_chain: bool
    calls: int = 0
    failures: int = 0
    cost_usd: float = 0.0
    cooling_down_until: str | None = None


class ReportTotals(_Model):
    cost_usd: float
    assets: int
    attempts: int
    failed_attempts: int
    by_provider: dict[str, float]
    by_capability: dict[str, float]
    by_video: dict[str, float]
    cache_entries: int = Field(0, description="requests remembered by the content-addressed cache (all videos)")
    cache_hits: int = Field(0, description="requests answered from the cache instead of a provider (all videos)")


class ProviderReport(_Model):
    workspace_id: str
    video_id: str | None
    providers: list[ProviderStatus]
    assets: list[dict[str, Any]] = Field(
        description="the current assets with their attempts and cost; state is ok, damaged, missing or archived, "
                    "and an asset that is not ok says what to do (action) or where it went (archive_uri)"
    )
    totals: ReportTotals
    voices: list[VoiceInfo] = Field(default_factory=list,
                                    description="the workspace's cloned voices (clone_voice), usable as voice=<name>")
