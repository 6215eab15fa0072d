"""ffmpeg-python graph primitives shared by the assembly's video and audio graphs (data only: nothing runs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ffmpeg.nodes import InputNode

from core.media.timeline import FilterStep

__all__ = ["num", "input_node", "apply_steps"]


def num(x: float) -> str:
    """A float for a filter argument, exact enough (µs) and without exponent notation."""
    return f"{x:.6f}".rstrip("0").rstrip(".") or "0"


def input_node(path: Path | str, key: int | str, **options: Any) -> Any:
    """An ffmpeg-python input node that is never merged with another.

    ffmpeg-python identifies nodes by their content, so the same clip used twice would
    become one input feeding two chains (it then demands a ``split``, which would buffer
    the whole second copy while concat plays the first). ``args`` takes part in the node's
    identity but is not written to the command line, so ``key`` keeps inputs apart.
    """
    return InputNode("input", args=[key], kwargs={"filename": str(path), **options}).stream()


def apply_steps(stream: Any, steps: Sequence[FilterStep]) -> Any:
    for step in steps:
        stream = stream.filter(step.name, *step.args, **dict(step.kwargs))
    return stream
