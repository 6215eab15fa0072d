"""What the registry records about an asset beyond its file: one frozen model per asset kind.

A service builds the model of the kind it registers (``SceneProps(duration_s=..., ...)``);
the registry stores it as JSON (only the fields the writer set, so ``manifest.json`` shows
what was recorded, no more) and hands the same model back on every read. Unknown fields
are refused when a model is built; rows written by an older version are read leniently
(:func:`props_from_json`): a field this version no longer knows, or one whose value no
longer fits, is dropped with a warning, never an error.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from core.schemas import Credit, ReadinessCheck, SegmentTiming, VideoProperties

__all__ = [
    "AssetProps",
    "SceneProps",
    "NarrationProps",
    "MusicProps",
    "ThumbnailProps",
    "ImageProps",
    "FinalVideoProps",
    "FontProps",
    "FontRecord",
    "AudioLevelsRecord",
    "PROPS_BY_KIND",
    "props_for_kind",
    "props_from_json",
    "props_record",
    "props_to_json",
]

log = logging.getLogger(__name__)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AssetProps(_Record):
    """The media facts every asset result carries (None where they do not apply to the kind); the base of
    every kind's model."""

    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None


class _Imported(_Record):
    """Where an ``import_asset`` file came from (unset for generated assets)."""

    imported: bool = False
    source: str | None = None
    source_bytes: int | None = None
    source_format: str | None = None
    source_duration_s: float | None = None
    source_video: str | None = None  # "h264 1280x720 24 fps"
    source_audio: str | None = None  # "aac 44100 Hz 2 ch"


class SceneProps(AssetProps, _Imported):
    frames: int | None = None
    video_codec: str | None = None
    has_audio: bool | None = None
    prompt: str | None = None
    aspect_ratio: Literal["16:9", "9:16"] | None = None
    credits: tuple[Credit, ...] = ()  # stock footage: one per clip the scene is cut from


class NarrationProps(AssetProps, _Imported):
    audio_codec: str | None = None
    voice: str | None = None
    language: str | None = None  # BCP 47: given, or detected from the text
    segments: tuple[SegmentTiming, ...] = ()
    srt: str | None = None  # the caption sidecar, relative to the video's folder


class MusicProps(AssetProps, _Imported):
    audio_codec: str | None = None
    # generate_music's bed (unset for an imported file): the loop assembly repeats, and what was measured.
    mood: str | None = None
    profile: str | None = None  # the provider's style (local:ambient's mood profile)
    key: str | None = None
    chords: tuple[str, ...] = ()
    bpm: float | None = None
    beats_per_bar: int | None = None
    bars: int | None = None  # bars in one loop
    loop_s: float | None = None  # the file is a whole number of loops, each starting on a bar
    loops: int | None = None
    seamless: bool | None = None  # the end runs into the start without a step (measured on the file)
    seam_step_ratio: float | None = None  # largest sample step at the wrap / largest anywhere else
    integrated_lufs: float | None = None
    true_peak_dbtp: float | None = None


class FontRecord(_Record):
    """The font a picture or caption was drawn with (``ResolvedFont.record()``)."""

    name: str
    family: str | None = None
    style: str | None = None
    weight: int | None = None
    sha256: str | None = None
    bundled: bool = False


class ThumbnailProps(AssetProps):
    format: str = "JPEG"
    title: str | None = None
    subtitle: str | None = None
    font: FontRecord | None = None


class ImageProps(AssetProps, _Imported):
    format: str | None = None  # "jpeg", "png"


class AudioLevelsRecord(_Record):
    """The gains assembly applied, dB."""

    narration_db: float
    music_db: float
    scene_db: tuple[float | None, ...]
    final_db: float
    limiter: bool


class FinalVideoProps(AssetProps):
    properties: VideoProperties | None = None
    youtube_readiness: ReadinessCheck | None = None
    scenes: tuple[str, ...] = ()  # uris, in order
    # core.media.assembly.describe_encode's record: its keys are that module's to choose.
    encode: dict[str, Any] | None = None
    audio_levels: AudioLevelsRecord | None = None
    srt: str | None = None
    caption_font: FontRecord | None = None
    webm: str | None = None


class FontProps(AssetProps, _Imported):
    format: str | None = None  # "ttf", "otf"
    font_name: str | None = None


PROPS_BY_KIND: dict[str, type[AssetProps]] = {
    "scene": SceneProps,
    "narration": NarrationProps,
    "music": MusicProps,
    "thumbnail": ThumbnailProps,
    "image": ImageProps,
    "final_video": FinalVideoProps,
    "font": FontProps,
}


def props_for_kind(kind: str) -> type[AssetProps]:
    try:
        return PROPS_BY_KIND[kind]
    except KeyError:
        raise ValueError(f"no props model for asset kind {kind!r}; known: {sorted(PROPS_BY_KIND)}") from None


def props_record(props: AssetProps) -> dict[str, Any]:
    """The fields the writer set, as JSON values (nested models whole, their defaults included)."""
    return {k: v for k, v in props.model_dump(mode="json").items() if k in props.model_fields_set}


def props_to_json(props: AssetProps) -> str:
    return json.dumps(props_record(props), sort_keys=True)


def props_from_json(kind: str, text: str | None) -> AssetProps:
    """The model of ``kind`` from a stored row; fields that do not fit are dropped (and logged)."""
    model = props_for_kind(kind)
    data = json.loads(text or "{}")
    data = {k: v for k, v in data.items() if k in model.model_fields} if isinstance(data, dict) else {}
    while True:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            if not bad & data.keys():
                raise
            log.warning("a stored %s asset's props had fields that no longer fit, left out: %s", kind, sorted(bad))
            data = {k: v for k, v in data.items() if k not in bad}
