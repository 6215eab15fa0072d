from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from core.runtime import Runtime
from core.schemas import AssemblyRequest, AssemblyResult, JobEnvelope, Overlay
from core.services import assembly
from tools._common import ProgressSink, VideoId, WaitSeconds, WorkspaceId, run_job

AssetRef = Annotated[str, Field(description="A ytap:// uri of this video's file, or a path inside its folder.",
                                max_length=1000)]


async def assemble_video(
    rt: Runtime,
    progress: ProgressSink | None,
    video_id: VideoId,
    *,
    workspace_id: WorkspaceId = "default",
    scenes: Annotated[list[AssetRef], Field(description="Scene clips in order (any size, frame rate or codec). "
                                            "Empty: the video's scenes by scene_index.", max_length=200)] = (),
    narration: Annotated[str, Field(description="Narration audio ref. Empty: the video's narration if it has one.",
                                    max_length=1000)] = "",
    music: Annotated[str, Field(description="Background music ref (a file in the video's folder, e.g. "
                                "audio/music.mp3): looped or trimmed to the video, faded in and out, ducked under the "
                                "narration. Empty: no music.", max_length=1000)] = "",
    aspect_ratio: Annotated[Literal["auto", "16:9", "9:16"], Field(description="Output shape (9:16 for Shorts). "
                                                                   "auto: the shape of most scenes.")] = "auto",
    fps: Annotated[Literal[30, 60], Field(description="Output frame rate.")] = 30,
    height: Annotated[int, Field(description="Short side in pixels (1080 = 1080p), 720-2160.", ge=720, le=2160)] = 1080,
    fit: Annotated[Literal["contain", "cover", "blur"], Field(
        description="A scene of another shape than the output: contain (whole picture, black bars), cover (fill, "
                    "cropped), blur (whole picture over a blurred copy of itself).")] = "contain",
    captions: Annotated[bool, Field(description="Burn captions from the narration's word timings into the picture "
                                    "and write final_video.srt beside the video. false: no captions.")] = True,
    transition: Annotated[Literal["cut", "crossfade"], Field(description="Between scenes: cut, or crossfade "
                                                             "(picture and sound).")] = "cut",
    crossfade_s: Annotated[float, Field(description="Crossfade length in seconds (with transition=crossfade); "
                                        "never more than half of a scene.", ge=0.1, le=3.0)] = 0.5,
    overlays: Annotated[list[Overlay], Field(description="Text overlays: {text, start_s, end_s, position}.",
                                             max_length=50)] = (),
    caption_font: Annotated[str, Field(description="Font of the captions and overlays: a bundled font (inter-bold, "
                                       "inter-display-black) or a font imported into this video with import_asset "
                                       "kind=font, by its ref (fonts/<file>.ttf, a ytap:// uri) or file stem. Lines "
                                       "are measured in it, so they still fit two lines. Empty: inter-bold.",
                                       max_length=1000)] = "",
    watermark: Annotated[str, Field(description="Watermark image ref (PNG with transparency works best). Empty: none.",
                                    max_length=1000)] = "",
    watermark_position: Annotated[Literal["top-left", "top-right", "bottom-left", "bottom-right"], Field(
        description="Watermark corner.")] = "bottom-right",
    watermark_opacity: Annotated[float, Field(description="Watermark opacity, 0.05-1.", ge=0.05, le=1.0)] = 0.6,
    music_volume_db: Annotated[float, Field(description="Music loudness relative to the narration, dB (-12: a "
                                            "background bed; it also ducks about 10 dB while the narration speaks).",
                                            ge=-40, le=0)] = -12.0,
    scene_audio_volume_db: Annotated[float, Field(description="The scenes' own sound (clips with audio) relative to "
                                                  "the narration, dB.", ge=-60, le=0)] = -10.0,
    loudness_lufs: Annotated[float, Field(description="Target integrated loudness, LUFS (-14 for YouTube); the "
                                          "true peak stays at or under -1 dBTP.", ge=-30, le=-8)] = -14.0,
    presenter_scenes: Annotated[list[int], Field(description="1-based positions in the scene list of green-screen "
                                                 "presenter clips: each is chroma-keyed over the scene just before it "
                                                 "(its background), and the pair plays as one scene of the presenter "
                                                 "clip's length.", max_length=100)] = (),
    chroma_color: Annotated[str, Field(description="Screen colour to key out, hex (#00FF00 green, #0000FF blue).",
                                       pattern=r"^(#|0x)?[0-9A-Fa-f]{6}$")] = "#00FF00",
    chroma_similarity: Annotated[float, Field(description="How far from the screen colour still counts as screen "
                                              "(0.01-0.6).", ge=0.01, le=0.6)] = 0.15,
    export_webm: Annotated[bool, Field(description="Also write final_video.webm (VP9/Opus) beside the MP4, from the "
                                       "same pass.")] = False,
    hardware_encoder: Annotated[bool, Field(description="Use a hardware H.264 encoder (NVENC, QSV, VAAPI, "
                                            "VideoToolbox) when one passes a trial encode; libx264 otherwise or if it "
                                            "fails.")] = True,
    wait_seconds: WaitSeconds = 20.0,
) -> JobEnvelope[AssemblyResult]:
    """Assemble the final video (final_video.mp4: H.264 High + AAC, YouTube's recommended settings) from the scenes, narration and optional music in one encode pass: scenes of any size, frame rate or codec are fitted to 16:9 or 9:16, captions are burned in from the narration's word timings (plus an .srt), music is ducked under the narration and the mix is normalised to -14 LUFS; the last frame holds if the narration runs longer. The result carries the probed properties and a YouTube readiness check. Returns a job envelope: poll job_status while it runs."""
    req = AssemblyRequest(
        workspace_id=workspace_id,
        video_id=video_id,
        scenes=list(scenes) or None,
        narration=narration or None,
        music=music or None,
        aspect_ratio=None if aspect_ratio == "auto" else aspect_ratio,
        fps=fps,
        height=height,
        fit=fit,
        captions=captions,
        transition=transition,
        crossfade_s=crossfade_s,
        overlays=list(overlays),
        caption_font=caption_font or None,
        watermark=watermark or None,
        watermark_position=watermark_position,
        watermark_opacity=watermark_opacity,
        music_volume_db=music_volume_db,
        scene_audio_volume_db=scene_audio_volume_db,
        loudness_lufs=loudness_lufs,
        presenter_scenes=list(presenter_scenes),
        chroma_color=chroma_color,
        chroma_similarity=chroma_similarity,
        export_webm=export_webm,
        hardware_encoder=hardware_encoder,
    )
    plan = assembly.prepare(rt, req)
    return await run_job(
        rt,
        progress,
        kind="assemble_video",
        body=lambda handle: assembly.assemble_video(rt, plan, handle),
        result_type=AssemblyResult,
        wait_seconds=wait_seconds,
        workspace_id=workspace_id,
        video_id=video_id,
    )
