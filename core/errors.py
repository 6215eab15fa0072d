"""The error tree of ytap-mcp. Nothing above ``core/providers`` sees a vendor exception.

::

    YtapError                         base; ``code`` is a stable machine-readable string
    ├── InputError                    the caller can fix it; never passed down a chain
    │   ├── InvalidIdentifier         workspace_id / video_id / job_id of the wrong shape
    │   ├── PathOutsideWorkspace      a ref or path that escapes the workspace root
    │   ├── AssetNotFound             a ref that names no registered asset or file
    │   ├── UnknownProvider           a provider id nobody registered (lists the known ids)
    │   ├── JobNotFound
    │   └── ImportRefused             import_asset: importing off, a source outside YTAP_IMPORT_ROOTS, too large
    ├── ProviderError                 one provider failed; a chain falls back on these
    │   ├── NotConfigured             its key or endpoint is not set ("OPENAI_API_KEY not set")
    │   ├── RateLimited               429 after retries (``retry_after_s`` when the vendor said)
    │   ├── Unavailable               5xx, connection refused or dropped, endpoint gone
    │   ├── TimedOut                  per-call timeout or polling deadline passed
    │   ├── Refused                   content policy; ``reasons`` as the vendor gave them
    │   ├── JobFailed                 a long-running vendor job ended in failure
    │   ├── BadOutput                 malformed body, truncated or undecodable media
    │   ├── NothingFound              a stock search found nothing usable; the queries tried in the message
    │   └── Crashed                   a local engine's worker process died on this request
    ├── ProvidersExhausted            every provider of a chain failed; carries every attempt
    ├── MediaError                    ffmpeg / probing failed on our side
    ├── OperationCancelled            a job was cancelled while running
    └── StorageError                  the registry or the disk failed us
        └── DiskFull                  no space left where we write (names the folder and its free space)

Vendor modules translate at the boundary, ``raise RateLimited(...) from exc``, so the
original is kept for logs but never shown to a client.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.schemas import Attempt

__all__ = [
    "YtapError",
    "InputError",
    "InvalidIdentifier",
    "PathOutsideWorkspace",
    "AssetNotFound",
    "UnknownProvider",
    "JobNotFound",
    "ImportRefused",
    "ProviderError",
    "NotConfigured",
    "RateLimited",
    "Unavailable",
    "TimedOut",
    "Refused",
    "JobFailed",
    "BadOutput",
    "NothingFound",
    "Crashed",
    "ProvidersExhausted",
    "MediaError",
    "OperationCancelled",
    "StorageError",
    "DiskFull",
    "is_disk_full",
]


class YtapError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class InputError(YtapError):
    code = "invalid_input"


class InvalidIdentifier(InputError):
    code = "invalid_identifier"


class PathOutsideWorkspace(InputError):
    code = "path_outside_workspace"


class AssetNotFound(InputError):
    code = "asset_not_found"


class UnknownProvider(InputError):
    code = "unknown_provider"


class JobNotFound(InputError):
    code = "job_not_found"


class ImportRefused(InputError):
    code = "import_refused"


class ProviderError(YtapError):
    code = "provider_error"

    def __init__(self, message: str, *, cost_usd: float = 0.0, retryable: bool = True) -> None:
        super().__init__(message)
        # A paid call that failed after the vendor billed it still costs money.
        self.cost_usd = cost_usd
        # False when asking again cannot help (endpoint gone, quota spent): fall back at once.
        self.retryable = retryable


class NotConfigured(ProviderError):
    code = "not_configured"


class RateLimited(ProviderError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float | None = None, cost_usd: float = 0.0,
                 retryable: bool = True) -> None:
        super().__init__(message, cost_usd=cost_usd, retryable=retryable)
        self.retry_after_s = retry_after_s


class Unavailable(ProviderError):
    code = "unavailable"


class TimedOut(ProviderError):
    code = "timed_out"


class Refused(ProviderError):
    code = "refused"

    def __init__(self, message: str, *, reasons: list[str] | None = None, cost_usd: float = 0.0) -> None:
        super().__init__(message, cost_usd=cost_usd, retryable=False)
        self.reasons = reasons or []


class JobFailed(ProviderError):
    code = "job_failed"


class BadOutput(ProviderError):
    code = "bad_output"


class NothingFound(ProviderError):
    """Not retried (the same search finds the same) nor counted against health: another prompt may find plenty."""

    code = "nothing_found"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class Crashed(ProviderError):
    """Not retried (the same input would crash it again) nor counted against health: the
    worker is restarted for the next call, which has every chance of working."""

    code = "crashed"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class ProvidersExhausted(YtapError):
    """Every provider of a chain failed. Like an ExceptionGroup, but flat and serialisable."""

    code = "providers_exhausted"

    def __init__(self, capability: str, attempts: list[Attempt]) -> None:
        reasons = "; ".join(f"{a.provider}: {a.reason}" for a in attempts) or "no provider in the chain"
        super().__init__(f"every {capability} provider failed ({reasons})")
        self.capability = capability
        self.attempts = attempts

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["attempts"] = [a.model_dump(mode="json") for a in self.attempts]
        return d


class MediaError(YtapError):
    code = "media_error"


class OperationCancelled(YtapError):
    code = "cancelled"


class StorageError(YtapError):
    code = "storage_error"


class DiskFull(StorageError):
    """The disk we write to is full: said as such, with the folder and what is left, never as an OS error."""

    code = "disk_full"

    def __init__(self, folder: str | Path, *, what: str | None = None) -> None:
        self.folder = Path(folder)
        self.free_bytes = _free_bytes(self.folder)
        free = "unknown space" if self.free_bytes is None else _human_bytes(self.free_bytes)
        lead = f"{what} failed: " if what else ""
        super().__init__(f"{lead}the disk holding {self.folder} is full ({free} free); free some space on it, or set "
                         "YTAP_HOME to a folder on a larger disk, then try again")


# ENOSPC: no space; EDQUOT: the user's quota, which reads the same to whoever must free space.
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_FULL_TEXTS = ("no space left on device", "database or disk is full", "disk quota exceeded")


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the disk is full: OSError ENOSPC/EDQUOT, SQLite's SQLITE_FULL."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _DISK_FULL_ERRNOS:
            return True
        if isinstance(cur, DiskFull) or any(t in str(cur).lower() for t in _DISK_FULL_TEXTS):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _free_bytes(folder: Path) -> int | None:
    for candidate in (folder, *folder.parents):  # the folder itself may not exist yet
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def _human_bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
