"""Pydantic models the agent sees: requests, results, the job envelope, the report.

Requests are validated here (bounds, identifier shapes) so every entry point, MCP or
not, gets the same checks. Results carry facts probed from the files they describe.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo

from core.media.formats import DEFAULT_LOUDNESS_LUFS, scene_size

__all__ = [
    "ID_PATTERN",
    "AspectRatio",
    "Capability",
    "AssetKind",
    "AssetState",
    "Attempt",
    "Credit",
    "WordTiming",
    "SegmentTiming",
    "default_of",
    "WorkspaceId",
    "VideoId",
    "ProviderIds",
    "Fresh",
    "Style",
    "NegativePrompt",
    "SceneIndex",
    "ScenePrompt",
    "SceneDuration",
    "SceneShape",
    "NarrationText",
    "NarrationSegments",
    "Voice",
    "Speed",
    "PitchSemitones",
    "Instructions",
    "Language",
    "Title",
    "Subtitle",
    "ImagePrompt",
    "Seed",
    "TitleFont",
    "AssetRef",
    "SceneRefs",
    "NarrationRef",
    "MusicRef",
    "OutputShape",
    "Fps",
    "Height",
    "Fit",
    "Captions",
    "Transition",
    "CrossfadeSeconds",
    "Overlays",
    "CaptionFont",
    "WatermarkRef",
    "WatermarkCorner",
    "WatermarkOpacity",
    "MusicVolume",
    "SceneAudioVolume",
    "LoudnessLufs",
    "PresenterScenes",
    "ChromaColor",
    "ChromaSimilarity",
    "ExportWebm",
    "HardwareEncoder",
    "SceneRequest",
    "NarrationRequest",
    "ThumbnailRequest",
    "Mood",
    "MusicDuration",
    "MusicRequest",
    "MusicResult",
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
    "Storyboard",
]

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
AspectRatio = Literal["16:9", "9:16"]
Capability = Literal["video", "speech", "image", "music"]
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
    reason: str = Field("", description="why it failed or was skipped; empty on success")
    error_code: str = ""
    elapsed_s: float = 0.0
    cost_usd: float = 0.0
    decision: str = Field("", description="why this provider was tried at this position")

    @field_validator("reason", "error_code", "decision", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        """Rows written before these were strings hold NULL for "nothing to say"."""
        return "" if value is None else value


class Credit(_Model):
    """Where a stock clip came from and the credit its licence asks for."""

    text: str = Field(description="the line for the video's description")
    required: bool = Field(description="the licence requires it (CC BY, CC BY-SA); else a courtesy the source asks")
    license: str
    license_url: str | None = None
    author: str | None = None
    source_url: str = Field(description="the clip's page")
    source_id: str = Field(description="provider:id, so a video never uses a clip twice")


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
#
# Every parameter a tool takes is declared once, here: an ``Annotated`` alias holding its type,
# bounds, default and the sentence the agent reads. The request models below and the tool
# signatures in tools/ both use the alias (a tool's signature takes the default with
# ``default_of``). A tool that passes "none" as "" or () says so in its own signature; the
# request model spells it None.


def default_of(alias: Any) -> Any:
    """The default an ``Annotated[T, Field(default)]`` alias declares, for a signature that must name it."""
    for meta in reversed(get_args(alias)[1:]):
        if isinstance(meta, FieldInfo) and not meta.is_required():
            return meta.get_default(call_default_factory=True)
    raise TypeError(f"{alias!r} declares no default")


# The id pattern bounds the length too (1-64 characters).
WorkspaceId = Annotated[str, Field("default", description="A folder of videos.", pattern=ID_PATTERN)]
VideoId = Annotated[str, Field(description="The video, e.g. 'lighthouses'.", pattern=ID_PATTERN)]
ProviderIds = Annotated[list[str], Field(description="Provider ids to try in order instead of the default chain.",
                                         max_length=10)]
Fresh = Annotated[bool, Field(False, description="Regenerate even if an identical request is cached.")]
Style = Annotated[str, Field(description="Look, e.g. 'cinematic, golden hour'.", max_length=500)]
NegativePrompt = Annotated[str, Field(description="What it must not show (providers that take it).", max_length=2000)]


class _VideoScoped(_Model):
    workspace_id: WorkspaceId
    video_id: VideoId
    providers: ProviderIds | None = None
    fresh: Fresh


# Text the agent sends is drawn on cards, spoken, captioned and sent to vendors: control
# characters (other than tab and newline) have no place in it and are refused, not stripped.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_PROVIDER_ID_CHARS = 100
MAX_NARRATION_CHARS = 20_000
MAX_SEGMENT_CHARS = 5000
MAX_REF_CHARS = 1000


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


SceneIndex = Annotated[int, Field(description="Position in the video.", ge=1, le=999)]
ScenePrompt = Annotated[str, Field(description="Subject, action, setting, camera, mood.", min_length=1, max_length=4000)]
SceneDuration = Annotated[float, Field(8.0, description="Seconds.", ge=1, le=60)]
SceneShape = Annotated[AspectRatio, Field("16:9", description="16:9 is 1920x1080; 9:16 (a Short) 1080x1920.")]


class SceneRequest(_VideoScoped):
    scene_index: SceneIndex
    prompt: ScenePrompt
    duration_s: SceneDuration
    aspect_ratio: SceneShape
    style: Style | None = None
    negative_prompt: NegativePrompt | None = None

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
        return scene_size(self.aspect_ratio)


NarrationText = Annotated[str, Field(description="The whole narration. Give this or segments.",
                                     max_length=MAX_NARRATION_CHARS)]
NarrationSegments = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=MAX_SEGMENT_CHARS)]],
    Field(description="One string per scene, in order (timings then line up with scenes). Give this or text.",
          max_length=200),
]
Voice = Annotated[str, Field(description="A provider's voice (e.g. 'alloy', 'en-gb') or a clone_voice name. Empty: "
                             "the provider's default.", max_length=200)]
Language = Annotated[str, Field(description="BCP 47, e.g. 'ja'. Empty: detected.", max_length=35)]
Speed = Annotated[float, Field(1.0, description="Speaking rate.", ge=0.5, le=2.0)]
PitchSemitones = Annotated[float, Field(0.0, description="Pitch shift, semitones.", ge=-12, le=12)]
Instructions = Annotated[str, Field(description="Tone, e.g. 'warm, curious' (providers that take it).",
                                    max_length=2000)]


class NarrationRequest(_VideoScoped):
    text: Annotated[NarrationText, Field(min_length=1)] | None = None
    segments: Annotated[NarrationSegments, Field(min_length=1)] | None = None
    voice: Voice | None = None
    language: Language | None = None
    speed: Speed
    pitch_semitones: PitchSemitones
    instructions: Instructions | None = None

    @field_validator("segments")
    @classmethod
    def _segments_not_blank(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            for i, s in enumerate(v, 1):
                if not s.strip():
                    raise ValueError(f"segment {i} is empty")
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

    @field_validator("language")
    @classmethod
    def _language(cls, v: str | None) -> str | None:
        from core.media.language import normalise

        return normalise(v) if v and v.strip() else None

    def texts(self) -> list[str]:
        """The narration as segments (a single ``text`` is one segment)."""
        if self.segments:
            return [s.strip() for s in self.segments]
        if self.text and self.text.strip():
            return [self.text.strip()]
        raise ValueError("give either text or segments (one string per scene)")


Title = Annotated[str, Field(description="2-6 punchy words read best.", min_length=1, max_length=100)]
Subtitle = Annotated[str, Field(description="A smaller second line.", max_length=120)]
ImagePrompt = Annotated[str, Field(description="The background picture. Empty: made from the title.", max_length=4000)]
Seed = Annotated[int, Field(description="For a reproducible picture (providers that take it); -1: random.",
                            ge=-1, le=2**32 - 1)]
TitleFont = Annotated[str, Field(description="A bundled font (inter-display-black, inter-bold) or one imported with "
                                 "import_asset kind=font, by ref or file stem. Empty: inter-display-black.",
                                 max_length=MAX_REF_CHARS)]


class ThumbnailRequest(_VideoScoped):
    title: Title
    subtitle: Subtitle | None = None
    prompt: ImagePrompt | None = None
    style: Style | None = None
    font: TitleFont | None = None
    negative_prompt: NegativePrompt | None = None
    seed: Seed | None = None

    @field_validator("title", "subtitle", "prompt", "style", "font", "negative_prompt")
    @classmethod
    def _plain(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _plain_text(info.field_name or "text", v, required=info.field_name == "title")

    @field_validator("seed")
    @classmethod
    def _random(cls, v: int | None) -> int | None:
        return None if v == -1 else v

    @field_validator("providers")
    @classmethod
    def _providers(cls, v: list[str] | None) -> list[str] | None:
        return _provider_ids(v)


Mood = Annotated[str, Field(description="e.g. 'calm, hopeful' (calm upbeat inspiring tense dark); no artist names.",
                            min_length=1, max_length=200)]
MusicDuration = Annotated[float, Field(60.0, description="Seconds (looped for longer videos).", ge=5, le=600)]


class MusicRequest(_VideoScoped):
    mood: Mood
    duration_s: MusicDuration

    @field_validator("mood")
    @classmethod
    def _plain(cls, v: str, info: ValidationInfo) -> str:
        return _plain_text("mood", v, required=True) or v

    @field_validator("providers")
    @classmethod
    def _providers(cls, v: list[str] | None) -> list[str] | None:
        return _provider_ids(v)


OverlayPosition = Literal["top", "center", "bottom", "top-left", "top-right", "bottom-left", "bottom-right"]


class Overlay(_Model):
    """Text over the picture from start_s to end_s (seconds into the video)."""

    text: str = Field(min_length=1, max_length=200)
    start_s: float = Field(ge=0, le=36_000)
    end_s: float = Field(gt=0, le=36_000)
    position: OverlayPosition = Field("top", description="Bottom ones stay clear of captions and the Shorts UI.")

    @model_validator(mode="after")
    def _ends_after_start(self) -> Overlay:
        if self.end_s <= self.start_s:
            raise ValueError(f"overlay {self.text[:40]!r}: end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self


AssetRef = Annotated[str, Field(description="A ytap:// uri or a path in the video's folder.", max_length=MAX_REF_CHARS)]
SceneRefs = Annotated[list[AssetRef], Field(description="Scene clips in order (any size, fps or codec). Empty: the "
                                            "video's scenes by index.", max_length=200)]
NarrationRef = Annotated[str, Field(description="Empty: the video's narration, if any.", max_length=MAX_REF_CHARS)]
MusicRef = Annotated[str, Field("auto", description="Music, looped and ducked under the narration. auto: the "
                                "video's music, if any; empty: none.", max_length=MAX_REF_CHARS)]
OutputShape = Annotated[Literal["auto", "16:9", "9:16"], Field("auto", description="auto: the shape of most scenes.")]
Fps = Annotated[Literal[30, 60], Field(30, description="Frame rate.")]
Height = Annotated[int, Field(1080, description="Short side, pixels.", ge=720, le=2160)]
Fit = Annotated[Literal["contain", "cover", "blur"], Field(
    "contain", description="Scenes of another shape: contain (bars), cover (cropped), blur (blurred fill).")]
Captions = Annotated[bool, Field(True, description="Burn in captions from the narration's word timings (plus "
                                 "final_video.srt).")]
Transition = Annotated[Literal["cut", "crossfade"], Field("cut", description="Between scenes.")]
CrossfadeSeconds = Annotated[float, Field(0.5, description="At most half a scene.", ge=0.1, le=3.0)]
Overlays = Annotated[list[Overlay], Field(description="Text drawn over the picture.", max_length=50)]
CaptionFont = Annotated[str, Field(description="Font of captions and overlays, as make_thumbnail's font. Empty: "
                                   "inter-bold.", max_length=MAX_REF_CHARS)]
WatermarkRef = Annotated[str, Field(description="An image (PNG with alpha). Empty: none.", max_length=MAX_REF_CHARS)]
WatermarkCorner = Annotated[Literal["top-left", "top-right", "bottom-left", "bottom-right"],
                            Field("bottom-right", description="Watermark corner.")]
WatermarkOpacity = Annotated[float, Field(0.6, description="Watermark opacity.", ge=0.05, le=1.0)]
MusicVolume = Annotated[float, Field(-12.0, description="dB relative to the narration; ducks about 10 dB more under "
                                     "speech.", ge=-40, le=0)]
SceneAudioVolume = Annotated[float, Field(-10.0, description="The clips' own sound, dB relative to the narration.",
                                          ge=-60, le=0)]
LoudnessLufs = Annotated[float, Field(DEFAULT_LOUDNESS_LUFS, description="Integrated loudness, LUFS (YouTube: -14); true peak at most "
                                      "-1 dBTP.", ge=-30, le=-8)]
PresenterScenes = Annotated[list[int], Field(description="1-based positions of green-screen presenter clips, each keyed "
                                             "over the scene before it.", max_length=100)]
ChromaColor = Annotated[str, Field("#00FF00", description="Screen colour to key out, hex.",
                                   pattern=r"^(#|0x)?[0-9A-Fa-f]{6}$")]
ChromaSimilarity = Annotated[float, Field(0.15, description="How far from it still counts as screen.", ge=0.01, le=0.6)]
ExportWebm = Annotated[bool, Field(False, description="Also write final_video.webm (VP9/Opus).")]
HardwareEncoder = Annotated[bool, Field(True, description="Try a hardware H.264 encoder first.")]


class AssemblyRequest(_Model):
    workspace_id: WorkspaceId
    video_id: VideoId
    scenes: SceneRefs | None = None
    narration: NarrationRef | None = None
    music: AssetRef | None = None  # None: the video's music asset, if it has one; "": none
    aspect_ratio: AspectRatio | None = None
    fps: Fps
    height: Height
    captions: Captions
    transition: Transition
    crossfade_s: CrossfadeSeconds
    fit: Fit
    overlays: Overlays = []
    caption_font: CaptionFont | None = None
    watermark: WatermarkRef | None = None
    watermark_position: WatermarkCorner
    watermark_opacity: WatermarkOpacity
    music_volume_db: MusicVolume
    scene_audio_volume_db: SceneAudioVolume
    loudness_lufs: LoudnessLufs
    presenter_scenes: PresenterScenes = []
    chroma_color: ChromaColor
    chroma_similarity: ChromaSimilarity
    chroma_blend: float = Field(0.05, ge=0.0, le=0.5)
    export_webm: ExportWebm
    hardware_encoder: HardwareEncoder

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


class _AssetCore(_Model):
    """What every asset result carries; the media properties follow per kind, as they apply."""

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
    cached: bool = False
    created_at: str
    state: AssetState = Field("ok", description="ok: the file holds the registered bytes; damaged: other bytes; "
                              "missing: the file is gone; archived: moved into the video's archive by archive_video")
    attempts: list[Attempt] = Field(default_factory=list)


class _Picture(_Model):
    width: int | None = None
    height: int | None = None


class _Sound(_Model):
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None


class AssetResult(_AssetCore, _Sound, _Picture):
    """A clip or a video: every media property applies."""

    fps: float | None = None


class SceneResult(AssetResult):
    kind: Literal["scene"]
    scene_index: int
    prompt: str


class NarrationResult(_AssetCore, _Sound):
    kind: Literal["narration"]
    segments: list[SegmentTiming]
    srt_path: str
    srt_uri: str
    voice: str | None = None
    language: str | None = None


class ThumbnailResult(_AssetCore, _Picture):
    kind: Literal["thumbnail"]
    title: str
    font: str | None = Field(None, description="the title's font: a bundled font's name or the imported font's path")
    notes: list[str] = Field(default_factory=list, description="what was changed in the text drawn (emoji removed)")


class MusicResult(_AssetCore, _Sound):
    """audio/music.wav: 48 kHz stereo, a whole number of loops of the bed (measured on the written file)."""

    kind: Literal["music"]
    loops_seamlessly: bool
    integrated_lufs: float
    true_peak_dbtp: float
    loop_s: float
    bpm: float | None = None


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
    kind: Literal["final_video"]
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
    chunks_reused: int = 0  # video segments (one a scene) taken unchanged from the last render
    chunks_encoded: int = 0


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
    tier: str | None = Field(None, description="video: ai_video, stills_in_motion, stock or placeholder")
    scene_8s_usd: float | None = Field(None, description="video: price of one 8 s scene")


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
    credits: list[str] = Field(default_factory=list,
                               description="stock footage credits: paste into the video description")


# --- storyboard (review_video) ------------------------------------------------------------

class Storyboard(_Model):
    """A video as a person reviews it (core.services.storyboard), for the tool input's video: every picture is
    a ytap:// uri; a part the video does not have yet is an empty object."""

    scenes: list[dict[str, Any]] = Field(description="in order: frames (first, middle, last), provider, model, "
                                         "cost, duration, state, prompt, and the narration segment spoken over it")
    narration: dict[str, Any] = Field(default_factory=dict)
    thumbnail: dict[str, Any] = Field(default_factory=dict)
    music: dict[str, Any] = Field(default_factory=dict)
    final_video: dict[str, Any] = Field(default_factory=dict, description="with preview_uri, a light rendition; "
                                        "stale, with stale_because (\"scene 2\", \"narration\", \"music\"), when "
                                        "parts were made after it: assemble again to include them")
    credits: list[str] = Field(default_factory=list, description="lines the video's description must carry")
    totals: dict[str, Any] = Field(description="provider_report's totals")
    providers: dict[str, Any] = Field(description="configured provider ids (lists) by capability, to choose from")
