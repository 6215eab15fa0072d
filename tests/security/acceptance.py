"""Acceptance counts of issue #6, gathered while the security and reliability suites run.

Tests add to :data:`COUNTS`; the conftest of each suite prints them at the end of the run
(``pytest -q tests/security tests/reliability`` shows the summary), and
``YTAP_ACCEPTANCE_JSON=path`` also writes them as JSON.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

__all__ = ["COUNTS", "CRASHES", "record", "crash_point", "summary_lines", "dump"]

COUNTS: Counter[str] = Counter()
CRASHES: list[dict[str, Any]] = []
_printed = False


def record(key: str, n: int = 1) -> None:
    COUNTS[key] += n


def crash_point(name: str, **outcome: Any) -> None:
    CRASHES.append({"crash_point": name, **outcome})


def summary_lines() -> list[str]:
    global _printed
    if _printed or (not COUNTS and not CRASHES):
        return []
    _printed = True
    lines = ["issue #6 acceptance counts:"]
    lines += [f"  {k}: {v}" for k, v in sorted(COUNTS.items())]
    lines += [f"  crash point {c['crash_point']}: " + ", ".join(f"{k}={v}" for k, v in c.items() if k != "crash_point")
              for c in CRASHES]
    dump()
    return lines


def dump() -> None:
    path = os.environ.get("YTAP_ACCEPTANCE_JSON")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"counts": dict(COUNTS), "crash_points": CRASHES}, fh, indent=2)
