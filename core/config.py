"""Settings: the environment is read once, here, and passed down.

No other module reads ``os.environ``. Secret values are held in :class:`Secret` so a
stray ``repr()`` or log line shows ``Secret('***')`` instead of a key.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit

__all__ = ["Secret", "SecretFilter", "Settings", "default_home", "scrub_secrets"]

REDACTED = "***"
# Credentials by their shape, for the ones Settings does not hold (Google project
# credentials mint OAuth tokens; a proxy may add its own): the value after a bearer
# scheme, an auth header name, or a key-like query parameter.
_CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]{8,})"),
    re.compile(r"(?i)(\b(?:authorization|proxy-authorization|x-api-key|api-key|xi-api-key|x-goog-api-key)"
               r"[\"']?\s*[:=]\s*[\"']?(?:basic\s+|bearer\s+)?)([^\s\"',;&]{8,})"),
    re.compile(r"(?i)([?&](?:key|api_key|apikey|access_token|token|sig|signature|x-goog-signature)=)([^&\s\"'#]{8,})"),
)


def scrub_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret value removed, in the forms it travels in, and credential-shaped values.

    Each secret is replaced raw and as it appears URL-encoded, JSON-escaped or base64-encoded
    (HTTP basic auth); then bearer tokens, auth headers and key-like query parameters are
    redacted whatever their value. Secrets shorter than 4 characters are ignored (replacing
    them would shred ordinary text).
    """
    if not text:
        return text
    for s in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        forms = {s, quote(s, safe=""), quote_plus(s), json.dumps(s)[1:-1], base64.b64encode(s.encode()).decode()}
        for form in sorted(forms, key=len, reverse=True):
            if form in text:
                text = text.replace(form, REDACTED)
    for pattern in _CREDENTIAL_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


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


class SecretFilter(logging.Filter):
    """A logging filter that scrubs secrets (and credential-shaped values) from every record it passes.

    Installed on the server's log handler, it covers what no call site can: a traceback of an
    unexpected vendor exception, a third-party library's debug line. The record's message is
    rendered once, scrubbed, and frozen (``args`` emptied); the exception text likewise.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        record.msg, record.args = scrub_secrets(message, self._secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_secrets(record.exc_text, self._secrets)
            record.exc_info = None  # the scrubbed text stands in for the live traceback
        return True


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


def _sd_model(env: Mapping[str, str]) -> str:
    value = _opt(env, "YTAP_SD_MODEL") or "default"
    # The model is part of a provider id, and ids are listed comma-separated in YTAP_IMAGE_PROVIDERS.
    if len(value) > 200 or "," in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("YTAP_SD_MODEL names a checkpoint (e.g. sd_xl_base_1.0): at most 200 characters, "
                         f"no commas or control characters, got {value[:80]!r}")
    return value


def _database_url(env: Mapping[str, str]) -> Secret | None:
    url = _opt(env, "YTAP_DATABASE_URL")
    if url is None:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise ValueError("YTAP_DATABASE_URL must be a postgresql:// URL (unset: SQLite at $YTAP_HOME/ytap.db)")
    return Secret(url)


# Wikimedia Commons needs no key, so the video chain asks it whenever YTAP_COMMONS_BASE_URL is unset (tests
# point this at an unresolvable host: a test never reaches the real Commons).
DEFAULT_COMMONS_BASE_URL = "https://commons.wikimedia.org"


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
    music_providers: tuple[str, ...] | None = None  # YTAP_MUSIC_PROVIDERS: an extension of DESIGN §4's list
    budget_usd: float | None = None
    import_roots: tuple[Path, ...] = ()
    sd_base_url: str | None = None
    # The checkpoint the Stable Diffusion server loads for us ("default": whatever it has loaded);
    # it names the provider, sd:<model>.
    sd_model: str = "default"
    http_token: Secret | None = None
    http_allowed_hosts: tuple[str, ...] = ()
    provider_concurrency: tuple[tuple[str, int], ...] = ()
    chain_policy: str = "order"
    # Encoding defaults: veryfast is the knee on 2 cores (BENCHMARKS.md).
    x264_preset: str = "veryfast"
    log_level: str = "INFO"
    # YTAP_FFMPEG: a forced ffmpeg binary; None lets core.media.ffmpeg choose by what each build can do.
    ffmpeg: str | None = None
    # The video aggregator (core.providers.replicate): its token and endpoint override (SDK standard names).
    replicate_api_token: Secret | None = None
    replicate_base_url: str | None = None
    # Scale-out (DESIGN.md §8). YTAP_DATABASE_URL: None keeps the registry in SQLite at db_path; a
    # postgresql:// URL (it may hold a password: a Secret) puts it on PostgreSQL.
    database_url: Secret | None = None
    # YTAP_TEMPORAL_*: None runs jobs in this process; an address runs them as Temporal workflows.
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = "ytap"
    # Stock footage (core/providers/stock): Pexels and Pixabay keys and endpoints, Wikimedia Commons' endpoint,
    # and whether Commons files under CC BY-SA may be used (YTAP_COMMONS_ALLOW_SA: share-alike binds the
    # whole video to the same licence, so it is the user's choice, off by default).
    pexels_api_key: Secret | None = None
    pexels_base_url: str = "https://api.pexels.com"
    pixabay_api_key: Secret | None = None
    pixabay_base_url: str = "https://pixabay.com"
    commons_base_url: str = "https://commons.wikimedia.org"
    commons_allow_sa: bool = False
    # YTAP_MODELS_DIR: local model weights (local:kokoro); None: $YTAP_HOME/models (see models_path).
    models_dir: Path | None = None
    # YTAP_KOKORO_BASE_URL: where `ytap-mcp models fetch kokoro` downloads from (default: the official release).
    kokoro_base_url: str | None = None

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.home / "models"

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
            music_providers=_list(env, "YTAP_MUSIC_PROVIDERS"),
            budget_usd=budget_usd,
            import_roots=import_roots,
            sd_base_url=_opt(env, "YTAP_SD_BASE_URL"),
            sd_model=_sd_model(env),
            http_token=_secret(env, "YTAP_HTTP_TOKEN"),
            http_allowed_hosts=_list(env, "YTAP_HTTP_ALLOWED_HOSTS") or (),
            provider_concurrency=_limits(env, "YTAP_PROVIDER_CONCURRENCY"),
            chain_policy=_policy(env),
            x264_preset=_opt(env, "YTAP_X264_PRESET") or "veryfast",
            log_level=(_opt(env, "YTAP_LOG_LEVEL") or "INFO").upper(),
            ffmpeg=_opt(env, "YTAP_FFMPEG"),
            replicate_api_token=_secret(env, "REPLICATE_API_TOKEN"),
            replicate_base_url=_opt(env, "REPLICATE_BASE_URL"),
            database_url=_database_url(env),
            temporal_address=_opt(env, "YTAP_TEMPORAL_ADDRESS"),
            temporal_namespace=_opt(env, "YTAP_TEMPORAL_NAMESPACE") or "default",
            temporal_task_queue=_opt(env, "YTAP_TEMPORAL_TASK_QUEUE") or "ytap",
            pexels_api_key=_secret(env, "PEXELS_API_KEY"),
            pexels_base_url=(_opt(env, "PEXELS_BASE_URL") or "https://api.pexels.com").rstrip("/"),
            pixabay_api_key=_secret(env, "PIXABAY_API_KEY"),
            pixabay_base_url=(_opt(env, "PIXABAY_BASE_URL") or "https://pixabay.com").rstrip("/"),
            commons_base_url=(_opt(env, "YTAP_COMMONS_BASE_URL") or DEFAULT_COMMONS_BASE_URL).rstrip("/"),
            commons_allow_sa=_truthy(env.get("YTAP_COMMONS_ALLOW_SA")),
            models_dir=Path(models).expanduser().resolve() if (models := _opt(env, "YTAP_MODELS_DIR")) else None,
            kokoro_base_url=_opt(env, "YTAP_KOKORO_BASE_URL"),
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
        found = [s.get() for s in (self.openai_api_key, self.elevenlabs_api_key, self.google_api_key, self.http_token,
                                  self.replicate_api_token, self.pexels_api_key, self.pixabay_api_key) if s]
        if self.database_url:  # the URL's password, whichever form it is quoted in
            found += [p for p in (urlsplit(self.database_url.get()).password,) if p]
        return found
