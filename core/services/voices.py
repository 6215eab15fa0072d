"""Workspace voices: a speaker's voice cloned from a recording of a video, then spoken by name.

``clone_voice`` makes an ElevenLabs instant voice clone from an audio asset of a video (a
voiceover imported with ``import_asset kind=narration``, or any audio file in the video's
folder) and registers it in the workspace under a name (the id shape of video ids).
``synthesize_narration(voice=<name>)`` then speaks with it: :func:`speaking_voice` turns the
name into the clone's vendor voice id and narrows the speech chain to the providers of the
vendor that holds it (another vendor cannot speak a voice that lives in an ElevenLabs
account; falling back to one would silently change the speaker). ``delete_voice`` deletes
the clone at the vendor and then the entry; a deleted voice keeps a row with ``deleted_at``
so a later narration asking for it is told so instead of speaking with some default voice.

Choices, and why:

- **Consent is a parameter, not a footnote.** Cloning someone's voice needs their
  permission (ElevenLabs' terms say the same); ``consent`` must be true or nothing is sent.
- **The upload is the first 3 minutes, as mono 192 kb/s MP3** (ElevenLabs recommends one
  to two minutes of clean speech for an instant clone; more adds little). A 48 kHz stereo
  WAV master of a whole narration would be tens of megabytes for nothing.
- **Only a 429 is retried** (Retry-After honoured, the chain's policy): it is the one answer
  that certainly made no voice. After a timeout or a 5xx a clone may exist at ElevenLabs;
  asking again could make a second, so the agent is told and decides. Deleting is
  idempotent: a 429 or a 5xx is retried, a timeout is not (the call must end within 50 s).
- **Key missing, plan without cloning, voice slots full** come back as errors that say
  what to set or do, before (or instead of) a job that cannot succeed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from core.assets import utc_now, validate_id
from core.assets.atomic import scratch_dir
from core.assets.paths import ID_RE, VideoPaths
from core.assets.registry import VoiceRow
from core.errors import (
    AssetNotFound,
    InputError,
    MediaError,
    NotConfigured,
    OperationCancelled,
    ProviderError,
    RateLimited,
    Unavailable,
)
from core.jobs import JobHandle
from core.media.ffmpeg import requires
from core.media.probe import probe
from core.providers.base import CallContext, VoiceCloningProvider
from core.providers.registry import VOICE_CLONERS
from core.runtime import Runtime
from core.schemas import DeleteVoiceResult, VoiceInfo, VoiceResult

__all__ = [
    "CONSENT_REQUIRED",
    "DEFAULT_VENDOR",
    "MAX_SAMPLE_S",
    "MIN_SAMPLE_S",
    "ClonePlan",
    "SpeakingVoice",
    "prepare_clone",
    "clone_planned",
    "delete_voice",
    "list_voices",
    "speaking_voice",
]

log = logging.getLogger(__name__)

requires(encoders=("libmp3lame",))  # _encode_sample

T = TypeVar("T")

DEFAULT_VENDOR = "elevenlabs"
MAX_SAMPLE_S = 180.0  # uploaded: the sample's first 3 minutes
MIN_SAMPLE_S = 1.0  # below this there is no voice to hear
SHORT_SAMPLE_S = 30.0  # below this a clone works but sounds less like the speaker
SAMPLE_BITRATE = "192k"
CONSENT_REQUIRED = (
    "cloning a voice requires the speaker's permission: ask the person whose voice is in the sample, and call "
    "clone_voice again with consent=true only once they have agreed (their own voice, or a voice they have the "
    "rights to)"
)


# --- cloning ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClonePlan:
    """A clone request whose sample is resolved and probed, and whose vendor is configured."""

    workspace_id: str
    name: str
    paths: VideoPaths
    sample: Path
    sample_uri: str
    sample_asset_id: str | None
    sample_duration_s: float
    description: str | None
    remove_background_noise: bool
    vendor: str
    provider_id: str


def _cloner(rt: Runtime, vendor: str) -> VoiceCloningProvider:
    provider = rt.catalog.get(VOICE_CLONERS[vendor])
    if not isinstance(provider, VoiceCloningProvider):  # a catalog entry replaced by something that cannot clone
        raise NotConfigured(f"{provider.id} cannot clone or delete voices")
    return provider


def prepare_clone(
    rt: Runtime,
    workspace_id: str,
    video_id: str,
    name: str,
    sample_ref: str,
    consent: bool,
    description: str | None = None,
    *,
    remove_background_noise: bool = False,
    vendor: str = DEFAULT_VENDOR,
) -> ClonePlan:
    """Every check that needs no upload: consent, the name, the vendor's key, the sample. Raises what to fix."""
    validate_id("workspace_id", workspace_id)
    validate_id("video_id", video_id)
    validate_id("voice name", name)
    if consent is not True:
        raise InputError(CONSENT_REQUIRED)
    existing = rt.registry.voices.get(workspace_id, name)
    if existing is not None:
        raise InputError(f"workspace {workspace_id!r} already has a voice named {name!r} (cloned "
                         f"{existing.created_at} from {existing.sample_uri}): choose another name, or delete_voice "
                         "it first")
    cloner = _cloner(rt, vendor)
    reason = cloner.unavailable_reason()
    if reason:
        raise NotConfigured(f"cannot clone a voice: {reason} (voice cloning uses ElevenLabs instant voice cloning; "
                            f"set {cloner.key_env} to a key whose plan includes it)")
    if description and any((ord(c) < 32 and c not in "\t\n") or ord(c) == 127 for c in description):
        raise InputError("description contains a control character; remove it")
    paths = rt.paths(workspace_id, video_id)
    sample = paths.resolve_ref(sample_ref)
    if not sample.is_file():
        raise AssetNotFound(f"{sample_ref[:200]} does not exist in video {workspace_id}/{video_id}; import the "
                            "recording with import_asset (kind=narration) and pass the uri it returns")
    try:
        info = probe(sample)
    except MediaError as exc:
        raise InputError(f"the sample is not an audio file: {exc.message}") from None
    if info.audio is None:
        raise InputError(f"{sample.name} is not an audio recording (there is no sound in it); the sample must be a "
                         "recording of the speaker, e.g. a voiceover imported with import_asset (kind=narration)")
    if info.video is not None:
        raise InputError(f"{sample.name} is a video; the sample must be an audio recording of the speaker: import "
                         "the voiceover with import_asset (kind=narration) and pass its uri")
    if info.duration_s < MIN_SAMPLE_S:
        raise InputError(f"the sample is {info.duration_s:.2f} s long; a voice needs at least {MIN_SAMPLE_S:g} s "
                         "of speech (a minute or two of one speaker, without music, clones best)")
    row = rt.registry.assets.by_path(paths, sample)
    return ClonePlan(
        workspace_id=workspace_id,
        name=name,
        paths=paths,
        sample=sample,
        sample_uri=paths.uri(sample),
        sample_asset_id=row.asset_id if row else None,
        sample_duration_s=info.duration_s,
        description=description.strip() if description and description.strip() else None,
        remove_background_noise=remove_background_noise,
        vendor=vendor,
        provider_id=cloner.id,
    )


async def clone_planned(rt: Runtime, plan: ClonePlan, handle: JobHandle | None = None) -> VoiceResult:
    cancel = handle.cancel if handle else threading.Event()

    def progress(fraction: float, message: str) -> None:
        if handle is not None:
            handle.progress(fraction, message)

    cloner = _cloner(rt, plan.vendor)
    ctx = CallContext(settings=rt.settings, cancel=cancel)
    uploaded_s = min(plan.sample_duration_s, MAX_SAMPLE_S)
    notes: list[str] = []
    if plan.sample_duration_s > MAX_SAMPLE_S + 0.5:
        notes.append(f"the first {MAX_SAMPLE_S:g} s of the {plan.sample_duration_s:.0f} s sample were uploaded "
                     "(more adds little to an instant clone)")
    elif plan.sample_duration_s < SHORT_SAMPLE_S:
        notes.append(f"the sample is {plan.sample_duration_s:.1f} s long; a clone made from a minute or two of "
                     "clean speech sounds more like the speaker")
    progress(0.05, "preparing the voice sample")
    # Beside the sample, named like a .part: a kill leaves nothing of someone's voice in the system temp dir.
    with scratch_dir(plan.sample, "voice") as tmp:
        upload = tmp / f"{plan.name}.mp3"
        await anyio.to_thread.run_sync(lambda: _encode_sample(plan.sample, upload, cancel))
        sha256 = hashlib.sha256(plan.sample.read_bytes()).hexdigest()
        progress(0.2, f"cloning the voice with {plan.provider_id.split(':')[0]}")
        cloned = await _with_retries(
            rt, plan.provider_id, ctx, (RateLimited,),
            lambda: cloner.clone_voice(f"{plan.name} (ytap {plan.workspace_id})", upload, ctx,
                                       description=plan.description,
                                       remove_background_noise=plan.remove_background_noise),
        )
    notes += cloned.notes
    props = {
        "requires_verification": cloned.requires_verification,
        "sample_sha256": sha256,
        "sample_duration_s": round(uploaded_s, 3),
        "notes": notes,
    }
    row = rt.registry.voices.add(
        plan.workspace_id, plan.name, provider=plan.vendor, vendor_voice_id=cloned.voice_id,
        sample_uri=plan.sample_uri, sample_asset_id=plan.sample_asset_id, description=plan.description, props=props,
    )
    if row is None:  # another clone took the name while this one was being made: undo ours
        try:
            await cloner.delete_voice(cloned.voice_id, ctx)
        except ProviderError as exc:
            log.warning("could not delete the duplicate clone %s: %s", cloned.voice_id, exc.message)
        raise InputError(f"workspace {plan.workspace_id!r} got a voice named {plan.name!r} from another call while "
                         "this one was cloning; choose another name")
    progress(1.0, f"voice {plan.name!r} is ready")
    log.info("workspace %s: voice %r cloned with %s", plan.workspace_id, plan.name, plan.provider_id)
    return VoiceResult(**_info(row).model_dump(), sample_duration_s=round(uploaded_s, 3), notes=notes)


def _encode_sample(src: Path, dst: Path, cancel: threading.Event) -> None:
    """The sample's first :data:`MAX_SAMPLE_S` as mono MP3 (blocking: run it in a worker thread)."""
    from core.media.ffmpeg import run_ffmpeg

    run_ffmpeg(["-i", str(src), "-vn", "-map", "0:a:0", "-t", f"{MAX_SAMPLE_S:g}", "-ac", "1", "-ar", "44100",
                "-c:a", "libmp3lame", "-b:a", SAMPLE_BITRATE, str(dst)],
               timeout_s=120, cancel=cancel, what="preparing the voice sample")


# --- deleting and listing -------------------------------------------------------------------------


async def delete_voice(rt: Runtime, workspace_id: str, name: str, *,
                       cancel: threading.Event | None = None) -> DeleteVoiceResult:
    """Delete the voice at its vendor, then its entry. A voice the vendor no longer has is removed all the same."""
    validate_id("workspace_id", workspace_id)
    validate_id("voice name", name)
    row = rt.registry.voices.get(workspace_id, name)
    if row is None:
        gone = rt.registry.voices.get(workspace_id, name, include_deleted=True)
        if gone is not None:
            raise InputError(f"the voice {name!r} of workspace {workspace_id!r} was already deleted ({gone.deleted_at})")
        raise InputError(f"workspace {workspace_id!r} has no voice named {name!r}; {_names(rt, workspace_id)}")
    cloner = _cloner(rt, row.provider)
    reason = cloner.unavailable_reason()
    if reason:
        raise NotConfigured(f"cannot delete the voice at {row.provider}: {reason}; the entry stays until "
                            f"{row.provider} has deleted it")
    ctx = CallContext(settings=rt.settings, cancel=cancel or threading.Event())
    # Not retried after a timeout: the call must answer within the 50 s a tool call may take.
    existed = await _with_retries(rt, cloner.id, ctx, (RateLimited, Unavailable),
                                  lambda: cloner.delete_voice(row.vendor_voice_id, ctx))
    deleted = rt.registry.voices.mark_deleted(workspace_id, name)
    notes = [] if existed else [
        f"{row.provider} no longer had voice {row.vendor_voice_id} (deleted in its app, or a key of another "
        "account); the workspace entry was removed"]
    log.info("workspace %s: voice %r deleted%s", workspace_id, name, "" if existed else " (the vendor had lost it)")
    return DeleteVoiceResult(
        workspace_id=workspace_id, name=name, provider=row.provider, vendor_voice_id=row.vendor_voice_id,
        deleted_at=deleted.deleted_at if deleted and deleted.deleted_at else utc_now(), vendor_deleted=existed,
        notes=notes,
    )


def list_voices(rt: Runtime, workspace_id: str = "default") -> list[VoiceInfo]:
    validate_id("workspace_id", workspace_id)
    return [_info(row) for row in rt.registry.voices.list(workspace_id)]


def _info(row: VoiceRow) -> VoiceInfo:
    return VoiceInfo(
        workspace_id=row.workspace_id, name=row.name, provider=row.provider, vendor_voice_id=row.vendor_voice_id,
        description=row.description, sample_uri=row.sample_uri, sample_asset_id=row.sample_asset_id,
        requires_verification=bool(row.props.get("requires_verification")), created_at=row.created_at,
    )


def _names(rt: Runtime, workspace_id: str) -> str:
    names = [v.name for v in rt.registry.voices.list(workspace_id)]
    return f"its voices: {', '.join(names)}" if names else "it has none yet (clone_voice makes one)"


# --- speaking -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeakingVoice:
    """A workspace voice a narration asked for: what to send, and the providers that can speak it."""

    name: str
    vendor: str
    vendor_voice_id: str
    chain_ids: list[str]


def speaking_voice(rt: Runtime, workspace_id: str, voice: str | None,
                   providers: list[str] | None = None) -> SpeakingVoice | None:
    """The workspace voice ``voice`` names, with the speech chain narrowed to its vendor's providers.

    None when ``voice`` is not a workspace voice (a provider's own voice name, or empty): the
    narration goes on as before. Refused, saying what to do, when the voice was deleted or
    ``providers`` lists no provider of the vendor that holds the clone.
    """
    name = (voice or "").strip()
    if not name or not ID_RE.fullmatch(name):
        return None
    row = rt.registry.voices.get(workspace_id, name, include_deleted=True)
    if row is None:
        return None
    if row.deleted_at:
        raise InputError(f"the workspace voice {name!r} was deleted ({row.deleted_at}): clone it again with "
                         f"clone_voice, or choose another voice ({_names(rt, workspace_id)})")
    prefix = f"{row.provider}:"
    default = VOICE_CLONERS.get(row.provider)
    if providers:
        asked = rt.catalog.chain_ids("speech", providers)  # unknown ids are refused here, as always
        ids = [pid for pid in asked if pid.startswith(prefix)]
        if not ids:
            raise InputError(f"{name!r} is a voice cloned with {row.provider}: only {row.provider} providers can "
                             f"speak it, and providers lists none ({', '.join(asked)}); add {default} or leave "
                             "providers empty")
    else:
        ids = [pid for pid in rt.catalog.chain_ids("speech") if pid.startswith(prefix)]
        if not ids and default:  # the configured chain leaves the vendor out; the voice asks for it by name
            ids = [default]
    return SpeakingVoice(name=name, vendor=row.provider, vendor_voice_id=row.vendor_voice_id, chain_ids=ids)


# --- calls with the chain's retry policy ---------------------------------------------------------


async def _with_retries(rt: Runtime, provider_id: str, ctx: CallContext, retry_on: tuple[type[ProviderError], ...],
                        call: Callable[[], Awaitable[T]]) -> T:
    """``call()`` within the provider's concurrency limit, retried on ``retry_on`` as the chain would."""
    try_number = 0
    while True:
        try_number += 1
        try:
            async with rt.catalog.limits.slot(provider_id):
                return await call()
        except retry_on as exc:
            delay = rt.catalog.retry.delay_s(try_number, exc)
            if delay is None:
                raise
            log.info("%s: %s; retry in %.1f s", provider_id, exc.code, delay)
            deadline = time.monotonic() + delay
            while (left := deadline - time.monotonic()) > 0:
                if ctx.cancel.is_set():
                    raise OperationCancelled("cancelled while waiting to retry") from None
                await anyio.sleep(min(0.05, left))
