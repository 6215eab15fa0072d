"""Settings: the environment is read once, here, and passed down.

No other module reads ``os.environ``. Secret values are held in :class:`Secret` so a
stray ``repr()`` or log line shows ``Secret('***')`` instead of a key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["Secret", "Settings", "default_home"]


class Secret:
    """A string that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def default_home(env: Mapping[str, str]) -> Path:
    """A per-user data folder (XDG on Linux, Application Support on macOS, LOCALAPPDATA on Windows)."""
    if os.name == "nt":
        base = Path(env.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif os.uname().sysname == "Darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "ytap-mcp"


def _secret(env: Mapping[str, str], *names: str) -> Secret | None:
    for name in names:
        value = (env.get(name) or "").strip()
        if value:
            return Secret(value)
    return None


def _opt(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value or None


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    value = _opt(env, name)
    if value is None:
        return None
    return tuple(p.strip() for p in value.split(",") if p.strip())


def _limits(env: Mapping[str, str], name: str) -> tuple[tuple[str, int], ...]:
    """``id=n,id=n`` -> ((id, n), ...)."""
    out = []
    for item in _list(env, name) or ():
        pid, sep, n = item.rpartition("=")
        if not sep or not n.strip().isdigit() or int(n) < 1:
            raise ValueError(f"{name} takes provider_id=N pairs separated by commas (N >= 1), got {item!r}")
        out.append((pid.strip(), int(n)))
    return tuple(out)


def _policy(env: Mapping[str, str]) -> str:
    value = (_opt(env, "YTAP_CHAIN_POLICY") or "order").lower()
    if value not in ("order", "cheapest", "quality", "balanced"):
        raise ValueError(f"YTAP_CHAIN_POLICY must be order, cheapest, quality or balanced, got {value!r}")
    return value


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    home: Path
    openai_api_key: Secret | None = None
    openai_base_url: str | None = None
    elevenlabs_api_key: Secret | None = None
    elevenlabs_base_url: str | None = None
    google_api_key: Secret | None = None
    google_use_enterprise: bool = False
    google_cloud_project: str | None = None
    google_cloud_location: str | None = None
    google_gemini_base_url: str | None = None
    google_vertex_base_url: str | None = None
    video_providers: tuple[str, ...] | None = None
    speech_providers: tuple[str, ...] | None = None
    image_providers: tuple[str, ...] | None = None
    budget_usd: float | None = None
    import_roots: tuple[Path, ...] = ()
    sd_base_url: str | None = None
    http_token: Secret | None = None
    http_allowed_hosts: tuple[str, ...] = ()
    provider_concurrency: tuple[tuple[str, int], ...] = ()
    chain_policy: str = "order"
    # Encoding defaults: veryfast is the knee on 2 cores (BENCHMARKS.md).
    x264_preset: str = "veryfast"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(_opt(env, "YTAP_HOME") or default_home(env)).expanduser().resolve()
        budget = _opt(env, "YTAP_BUDGET_USD")
        try:
            budget_usd = float(budget) if budget is not None else None
        except ValueError:
            raise ValueError(f"YTAP_BUDGET_USD must be a number of dollars, got {budget!r}") from None
        roots = _opt(env, "YTAP_IMPORT_ROOTS")
        import_roots = tuple(Path(p).expanduser().resolve() for p in roots.split(os.pathsep) if p) if roots else ()
        return cls(
            home=home,
            openai_api_key=_secret(env, "OPENAI_API_KEY"),
            openai_base_url=_opt(env, "OPENAI_BASE_URL"),
            elevenlabs_api_key=_secret(env, "ELEVENLABS_API_KEY"),
            elevenlabs_base_url=_opt(env, "ELEVENLABS_BASE_URL"),
            google_api_key=_secret(env, "GOOGLE_API_KEY", "GEMINI_API_KEY"),
            google_use_enterprise=_truthy(env.get("GOOGLE_GENAI_USE_ENTERPRISE"))
            or _truthy(env.get("GOOGLE_GENAI_USE_VERTEXAI")),
            google_cloud_project=_opt(env, "GOOGLE_CLOUD_PROJECT"),
            google_cloud_location=_opt(env, "GOOGLE_CLOUD_LOCATION"),
            google_gemini_base_url=_opt(env, "GOOGLE_GEMINI_BASE_URL"),
            google_vertex_base_url=_opt(env, "GOOGLE_VERTEX_BASE_URL"),
            video_providers=_list(env, "YTAP_VIDEO_PROVIDERS"),
            speech_providers=_list(env, "YTAP_SPEECH_PROVIDERS"),
            image_providers=_list(env, "YTAP_IMAGE_PROVIDERS"),
            budget_usd=budget_usd,
            import_roots=import_roots,
            sd_base_url=_opt(env, "YTAP_SD_BASE_URL"),
            http_token=_secret(env, "YTAP_HTTP_TOKEN"),
            http_allowed_hosts=_list(env, "YTAP_HTTP_ALLOWED_HOSTS") or (),
            provider_concurrency=_limits(env, "YTAP_PROVIDER_CONCURRENCY"),
            chain_policy=_policy(env),
            x264_preset=_opt(env, "YTAP_X264_PRESET") or "veryfast",
            log_level=(_opt(env, "YTAP_LOG_LEVEL") or "INFO").upper(),
        )

    def with_home(self, home: Path) -> Settings:
        return replace(self, home=home.resolve())

    @property
    def db_path(self) -> Path:
        return self.home / "ytap.db"

    @property
    def workspaces_root(self) -> Path:
        return self.home / "workspaces"

    def secrets(self) -> list[str]:
        """Every secret value, for scrubbing text before it is recorded or shown."""
        return [s.get() for s in (self.openai_api_key, self.elevenlabs_api_key, self.google_api_key, self.http_token) if s]
