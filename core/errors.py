"""The error tree of ytap-mcp. Nothing above ``core/providers`` sees a vendor exception.

::

    YtapError                         base; ``code`` is a stable machine-readable string
    ├── InputError                    the caller can fix it; never passed down a chain
    │   ├── InvalidIdentifier         workspace_id / video_id / job_id of the wrong shape
    │   ├── PathOutsideWorkspace      a ref or path that escapes the workspace root
    │   ├── AssetNotFound             a ref that names no registered asset or file
    │   ├── UnknownProvider           a provider id nobody registered (lists the known ids)
    │   ├── JobNotFound
    │   ├── BudgetExceeded            the per-video spending cap would be passed
    │   └── ImportRefused             import_asset: importing off, a source outside YTAP_IMPORT_ROOTS, too large
    ├── ProviderError                 one provider failed; a chain falls back on these
    │   ├── NotConfigured             its key or endpoint is not set ("OPENAI_API_KEY not set")
    │   ├── CoolingDown               skipped: it failed repeatedly a moment ago
    │   ├── RateLimited               429 after retries (``retry_after_s`` when the vendor said)
    │   ├── Unavailable               5xx, connection refused or dropped, endpoint gone
    │   ├── TimedOut                  per-call timeout or polling deadline passed
    │   ├── Refused                   content policy; ``reasons`` as the vendor gave them
    │   ├── JobFailed                 a long-running vendor job ended in failure
    │   └── BadOutput                 malformed body, truncated or undecodable media
    ├── ProvidersExhausted            every provider of a chain failed; carries every attempt
    ├── MediaError                    ffmpeg / probing failed on our side
    ├── OperationCancelled            a job was cancelled while running
    └── StorageError                  the registry or the disk failed us

Vendor modules translate at the boundary, ``raise RateLimited(...) from exc``, so the
original is kept for logs but never shown to a client.
"""

from __future__ import annotations

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
    "BudgetExceeded",
    "ImportRefused",
    "ProviderError",
    "NotConfigured",
    "CoolingDown",
    "RateLimited",
    "Unavailable",
    "TimedOut",
    "Refused",
    "JobFailed",
    "BadOutput",
    "ProvidersExhausted",
    "MediaError",
    "OperationCancelled",
    "StorageError",
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


class BudgetExceeded(InputError):
    code = "budget_exceeded"


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


class CoolingDown(ProviderError):
    code = "cooling_down"


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
