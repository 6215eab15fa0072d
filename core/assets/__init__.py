"""Per-video folders, the registry and its stores, typed asset props, atomic writes, path confinement."""

from core.assets.atomic import atomic_target, atomic_write_bytes, atomic_write_text, live_partials, sweep_partials
from core.assets.paths import VideoPaths, confine, parse_uri, validate_id, validate_job_id
from core.assets.props import AssetProps
from core.assets.registry import AssetRow, JobRow, Registry, utc_now

__all__ = [
    "AssetProps",
    "AssetRow",
    "JobRow",
    "Registry",
    "VideoPaths",
    "atomic_target",
    "atomic_write_bytes",
    "atomic_write_text",
    "confine",
    "live_partials",
    "parse_uri",
    "sweep_partials",
    "utc_now",
    "validate_id",
    "validate_job_id",
]
