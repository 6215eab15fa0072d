"""The one place ffmpeg is chosen and run.

Every ffmpeg call in ytap-mcp goes through :func:`run_ffmpeg` as an argument list, with
stdout and stderr captured: on stdio, the process's stdout belongs to the MCP protocol,
so a single stray byte from a child process would corrupt the session.

Which ffmpeg: the build is chosen by what it can do, not by where it is. Each module that
builds ffmpeg arguments declares, next to that code, what it asks of the build
(:func:`requires`: filters and the options it passes them by name, encoders, bitstream
filters). At the first use the declarations are collected and checked against the build's
own ``-filters``, ``-encoders``, ``-bsfs`` and ``-h full``: an ffmpeg on PATH is used only
when it has all of it (a system build may have hardware encoders; a distribution's 5.1 may
lack an option ytap passes), else the build imageio-ffmpeg ships, so ``pip install`` alone
is enough. ``YTAP_FFMPEG`` forces a binary; one that lacks something fails with a message
naming what and the variable. The choice is made once per process.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import DiskFull, MediaError, OperationCancelled, YtapError
from core.media import children
from core.media.probe import MAX_SIDE_PX

__all__ = [
    "FfmpegLocation",
    "FfmpegNeeds",
    "BuildFacts",
    "requires",
    "collected_needs",
    "inspect_build",
    "missing_features",
    "choose_build",
    "configure_ffmpeg",
    "locate_ffmpeg",
    "ffmpeg_builds",
    "has_filter_option",
    "ffmpeg_exe",
    "run_ffmpeg",
    "DEFAULT_THREADS",
    "explain_failure",
]

log = logging.getLogger(__name__)

# Two cores on the reference machine: x264 scales on its own (``-threads 1`` was 1.5x
# slower, BENCHMARKS.md), but filter graphs default to one thread per core plus extra
# frame threads; bound the filter side so two concurrent jobs do not thrash.
DEFAULT_THREADS = max(1, min(4, os.cpu_count() or 2))
_STDERR_TAIL_LINES = 25
_INSPECT_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- what ytap asks of a build


@dataclass(frozen=True)
class FfmpegNeeds:
    """What some code asks of the ffmpeg build: filters (with the options it passes by name), encoders,
    bitstream filters, command-line options (without the dash)."""

    filters: Mapping[str, frozenset[str]]
    encoders: frozenset[str] = frozenset()
    bsfs: frozenset[str] = frozenset()
    cli: frozenset[str] = frozenset()
    who: str = ""

    def merged(self, other: FfmpegNeeds) -> FfmpegNeeds:
        filters = {k: frozenset(v) for k, v in self.filters.items()}
        for name, opts in other.filters.items():
            filters[name] = filters.get(name, frozenset()) | opts
        return FfmpegNeeds(filters, self.encoders | other.encoders, self.bsfs | other.bsfs, self.cli | other.cli,
                           ", ".join(w for w in (self.who, other.who) if w))


_DECLARED: dict[str, FfmpegNeeds] = {}
_declared_lock = threading.Lock()


def requires(
    filters: Mapping[str, Iterable[str]] | Iterable[str] = (),
    *,
    encoders: Iterable[str] = (),
    bsfs: Iterable[str] = (),
    cli: Iterable[str] = (),
) -> FfmpegNeeds:
    """Declare, at module level next to the code that builds the arguments, what it asks of ffmpeg.

    ``filters`` maps a filter (or a lavfi source) to the options passed to it by name;
    a plain list names filters used without named options. Declarations of one module add up.
    """
    who = sys._getframe(1).f_globals.get("__name__", "?")
    table = filters.items() if isinstance(filters, Mapping) else ((f, ()) for f in filters)
    needs = FfmpegNeeds({name: frozenset(opts) for name, opts in table}, frozenset(encoders), frozenset(bsfs),
                        frozenset(cli), who)
    with _declared_lock:
        _DECLARED[who] = _DECLARED[who].merged(needs) if who in _DECLARED else needs
    return needs


def collected_needs() -> dict[str, FfmpegNeeds]:
    """Every module's declaration, by module: all of ``core`` is imported first, so none is missed."""
    import core

    # By file, not pkgutil.walk_packages: that skips namespace packages (core/services has no __init__).
    root = Path(core.__file__).parent
    for file in sorted(root.rglob("*.py")):
        parts = file.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] == "core":
                raise
            # A module of an optional extra (core/scaleout needs [scale]'s temporalio): not installed, so it
            # runs nothing, and it declares nothing ffmpeg must have.
            log.debug("%s not imported: %s is not installed (an optional extra)", name, exc.name)
    with _declared_lock:
        return dict(_DECLARED)


# --------------------------------------------------------------------------- what a build has


@dataclass(frozen=True)
class BuildFacts:
    """What one ffmpeg binary says it has."""

    version: str
    filters: frozenset[str]
    encoders: frozenset[str]
    bsfs: frozenset[str]
    options: Mapping[str, frozenset[str]]  # AVOptions by class name ("drawtext", "scale(2ref)", ...)
    cli: frozenset[str] = frozenset()  # the ffmpeg command's own options ("fps_mode", ...)

    def filter_options(self, name: str) -> frozenset[str]:
        return self.options.get(name, frozenset())


Runner = Callable[[Sequence[str]], str]  # args after the executable -> stdout

_FILTER_LINE = re.compile(r"^\s*[TSC.|]{2,3}\s+(\S+)\s+\S*->\S*\s")
_ENCODER_LINE = re.compile(r"^\s*[VASFXBD.]{6}\s+(\S+)\s")
_SECTION = re.compile(r"^(\S.*) AVOptions:\s*$")
_OPTION_LINE = re.compile(r"^\s{2,}(-?[\w:-]+)\s+\[?<\w+>")  # "[<int> ]": a list-valued option
_CLI_LINE = re.compile(r"^-([A-Za-z][\w-]*)")


def _class_names(header: str) -> list[str]:
    """Filters an AVOptions heading stands for: ``acompressor/sidechaincompress``, ``scale(2ref)``."""
    names = []
    for part in header.split("/"):
        base, paren, rest = part.partition("(")
        names.append(base)
        if paren:
            names.append(base + rest.rstrip(")"))
    return names


def parse_build(version_out: str, filters_out: str, encoders_out: str, bsfs_out: str, help_out: str) -> BuildFacts:
    """Facts from the text of ``-version``, ``-filters``, ``-encoders``, ``-bsfs`` and ``-h full``."""
    first = version_out.strip().splitlines()[0] if version_out.strip() else ""
    version = first.split(" ")[2] if first.startswith("ffmpeg version ") and len(first.split(" ")) > 2 else "unknown"
    filters = frozenset(m.group(1) for line in filters_out.splitlines() if (m := _FILTER_LINE.match(line)))
    encoders = frozenset(m.group(1) for line in encoders_out.splitlines()
                         if (m := _ENCODER_LINE.match(line)) and m.group(1) != "=")
    bsfs = frozenset(line.strip() for line in bsfs_out.splitlines()
                     if line.strip() and not line.strip().endswith(":") and " " not in line.strip())
    options: dict[str, set[str]] = {}
    cli: set[str] = set()
    current: list[str] = []
    for line in help_out.splitlines():
        if m := _CLI_LINE.match(line):
            cli.add(m.group(1))
        elif m := _SECTION.match(line):
            current = _class_names(m.group(1))
        elif current and (m := _OPTION_LINE.match(line)):
            for name in current:
                options.setdefault(name, set()).add(m.group(1))
        elif not line.strip():
            current = []
    return BuildFacts(version, filters, encoders, bsfs, {k: frozenset(v) for k, v in options.items()}, frozenset(cli))


def inspect_build(path: str, run: Runner | None = None) -> BuildFacts:
    """Ask the binary at ``path`` what it has (``run`` replaces the subprocess in tests)."""
    runner = run or (lambda args: _capture([path, "-hide_banner", *args]))
    outs = [runner(args) for args in (["-version"], ["-filters"], ["-encoders"], ["-bsfs"], ["-h", "full"])]
    return parse_build(*outs)


def _capture(argv: Sequence[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=_INSPECT_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:  # the message says why; the caller names the binary
        raise MediaError(exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) from exc
    if proc.returncode != 0 and not proc.stdout:
        last = (proc.stderr or "").strip().splitlines()[-1:]
        raise MediaError(f"exit {proc.returncode}" + (f": {last[0]}" if last else ""))
    return proc.stdout


def missing_features(facts: BuildFacts, needs: Mapping[str, FfmpegNeeds]) -> list[str]:
    """What ``facts`` lacks of ``needs``, each as "<feature> (<module that needs it>)", sorted."""
    lacking: dict[str, set[str]] = {}
    for who, need in needs.items():
        for name, opts in need.filters.items():
            if name not in facts.filters:
                lacking.setdefault(f"filter {name}", set()).add(who)
                continue
            for opt in sorted(opts - facts.filter_options(name)):
                lacking.setdefault(f"{name} option {opt}", set()).add(who)
        for enc in need.encoders - facts.encoders:
            lacking.setdefault(f"encoder {enc}", set()).add(who)
        for bsf in need.bsfs - facts.bsfs:
            lacking.setdefault(f"bitstream filter {bsf}", set()).add(who)
        for opt in need.cli - facts.cli:
            lacking.setdefault(f"option -{opt}", set()).add(who)
    return [f"{feature} ({', '.join(sorted(who))})" for feature, who in sorted(lacking.items())]


# --------------------------------------------------------------------------- the choice


@dataclass(frozen=True)
class Candidate:
    path: str
    source: str  # "YTAP_FFMPEG" | "PATH" | "imageio-ffmpeg"
    version: str
    missing: tuple[str, ...]
    error: str | None = None  # it did not run

    def describe(self) -> str:
        if self.error:
            return f"{self.path} ({self.source}) does not run: {self.error}"
        what = f"ffmpeg {self.version} at {self.path} ({self.source})"
        return f"{what} lacks {'; '.join(self.missing)}" if self.missing else f"{what} has everything ytap uses"


@dataclass(frozen=True)
class FfmpegLocation:
    path: str
    source: str  # "YTAP_FFMPEG" | "PATH" | "imageio-ffmpeg"
    version: str
    reason: str = ""
    passed_over: tuple[Candidate, ...] = ()  # what was considered and not taken, and why
    facts: BuildFacts | None = None


def _candidate(path: str, source: str, needs: Mapping[str, FfmpegNeeds], inspect: Callable[[str], BuildFacts]
               ) -> tuple[Candidate, BuildFacts | None]:
    try:
        facts = inspect(path)
    except MediaError as exc:
        return Candidate(path, source, "unknown", (), error=exc.message), None
    return Candidate(path, source, facts.version, tuple(missing_features(facts, needs))), facts


def choose_build(
    *,
    forced: str | None,
    on_path: str | None,
    bundled: Callable[[], str],
    needs: Mapping[str, FfmpegNeeds],
    inspect: Callable[[str], BuildFacts],
) -> FfmpegLocation:
    """The ffmpeg to use: ``forced`` if set (it must have everything), else ``on_path`` if it has
    everything, else the ``bundled`` one. Raises :class:`MediaError` naming YTAP_FFMPEG when the forced
    build cannot do what ytap needs."""
    if forced:
        cand, facts = _candidate(forced, "YTAP_FFMPEG", needs, inspect)
        if cand.error:
            raise MediaError(f"YTAP_FFMPEG={forced} does not run ({cand.error}): point YTAP_FFMPEG at an ffmpeg "
                             "binary, or unset it to let ytap choose")
        if cand.missing:
            raise MediaError(f"YTAP_FFMPEG={forced}: ffmpeg {cand.version} lacks {'; '.join(cand.missing)}. Point "
                             "YTAP_FFMPEG at a build that has them, or unset it to let ytap choose")
        return FfmpegLocation(forced, "YTAP_FFMPEG", cand.version, "forced by YTAP_FFMPEG", facts=facts)
    passed: list[Candidate] = []
    if on_path:
        cand, facts = _candidate(on_path, "PATH", needs, inspect)
        if not (cand.error or cand.missing):
            return FfmpegLocation(on_path, "PATH", cand.version, f"ffmpeg {cand.version} on PATH has every filter, "
                                  "option and encoder ytap uses", facts=facts)
        passed.append(cand)
    try:
        path = bundled()
    except ImportError as exc:  # pragma: no cover - imageio-ffmpeg is a hard dependency
        raise MediaError("no usable ffmpeg: " + ("; ".join(c.describe() for c in passed) or "none on PATH")
                         + ", and imageio-ffmpeg is not installed") from exc
    cand, facts = _candidate(path, "imageio-ffmpeg", needs, inspect)
    if cand.error:
        raise MediaError(f"the bundled ffmpeg does not run: {cand.error}")
    why = "; ".join(c.describe() for c in passed) if passed else "no ffmpeg on PATH"
    reason = f"the build imageio-ffmpeg ships, ffmpeg {cand.version}: {why}"
    if cand.missing:  # nothing better to take; what fails will say why
        reason += f" (and this one lacks {'; '.join(cand.missing)})"
    return FfmpegLocation(path, "imageio-ffmpeg", cand.version, reason, tuple(passed), facts)


_forced: str | None = None


def configure_ffmpeg(forced: str | None) -> None:
    """Set ``YTAP_FFMPEG`` (from Settings); a change makes the next use choose again."""
    global _forced
    forced = forced or None
    if forced != _forced:
        _forced = forced
        with _located_lock:
            _located.clear()


def _bundled_path() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


_located: list[FfmpegLocation] = []
_located_lock = threading.Lock()


def locate_ffmpeg() -> FfmpegLocation:
    """The ffmpeg this process uses, chosen once (see the module's docstring).

    Concurrent first calls wait for one choice. A forced build that cannot be used is not
    remembered: each use fails again with the same message.
    """
    with _located_lock:
        if _located:
            return _located[0]
        try:
            loc = choose_build(forced=_forced, on_path=shutil.which("ffmpeg"), bundled=_bundled_path,
                               needs=collected_needs(), inspect=inspect_build)
        except MediaError as exc:
            log.error("ffmpeg: %s", exc.message)
            raise
        # A system build passed over is worth a line at the default level: the user installed it.
        log.log(logging.WARNING if loc.passed_over else logging.INFO, "ffmpeg: %s (%s)", loc.path, loc.reason)
        _located.append(loc)
        return loc


def ffmpeg_builds() -> list[Candidate]:
    """Every build ytap could use here and what each lacks (``ytap-mcp doctor``)."""
    needs = collected_needs()
    found = [(p, s) for p, s in ((_forced, "YTAP_FFMPEG"), (shutil.which("ffmpeg"), "PATH")) if p]
    try:
        found.append((_bundled_path(), "imageio-ffmpeg"))
    except ImportError:  # pragma: no cover
        pass
    return [_candidate(p, s, needs, inspect_build)[0] for p, s in found]


def has_filter_option(filter_name: str, option: str) -> bool:
    """Whether the chosen build's ``filter_name`` takes ``option`` (for spellings that differ by version)."""
    facts = locate_ffmpeg().facts
    return facts is not None and option in facts.filter_options(filter_name)


def ffmpeg_exe() -> str:
    return locate_ffmpeg().path


ProgressCallback = Callable[[float], None]


def run_ffmpeg(
    args: Sequence[str],
    *,
    timeout_s: float = 600.0,
    duration_s: float | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    what: str = "ffmpeg",
) -> str:
    """Run ffmpeg with ``args`` (everything after the executable); return its stderr.

    ``duration_s`` is the expected output duration: with it and ``on_progress``, the
    ``-progress`` stream is parsed and ``on_progress(fraction)`` called as frames are
    written. ``cancel`` set from another thread kills ffmpeg and raises
    :class:`OperationCancelled`. A non-zero exit raises :class:`MediaError` carrying the
    last lines of stderr, which is where ffmpeg says why.
    """
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    if on_progress is not None and duration_s:
        argv += ["-progress", "pipe:1", "-nostats"]
    argv += list(args)

    if cancel is not None and cancel.is_set():  # a short run could finish before the first check below
        raise OperationCancelled(f"{what} cancelled")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,  # a kill of the group reaches every child ffmpeg spawns
    )
    children.register(proc)  # a SIGTERM of the server kills the group too (its own session outlives us)
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)

    def drain_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr_tail.append(line.rstrip())

    progress_failed = threading.Event()

    def read_progress() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            report = on_progress if not progress_failed.is_set() else None
            if report is None or not duration_s:
                continue  # keep draining: a full pipe would stall ffmpeg
            key, _, value = line.strip().partition("=")
            if key in ("out_time_us", "out_time_ms") and value.isdigit():
                # Both keys are microseconds (out_time_ms is a historic misnomer).
                try:
                    report(min(1.0, int(value) / 1e6 / duration_s))
                except Exception as exc:  # the thread's boundary: a progress sink that fails (a full disk
                    # under the registry) costs the progress reports, never a traceback or the encode
                    log.warning("%s: progress reports stopped: %s: %s", what, type(exc).__name__, exc)
                    progress_failed.set()

    readers = [threading.Thread(target=drain_stderr, daemon=True), threading.Thread(target=read_progress, daemon=True)]
    for t in readers:
        t.start()

    deadline = time.monotonic() + timeout_s
    cancelled = timed_out = False
    while True:
        try:
            proc.wait(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            pass
        if cancel is not None and cancel.is_set():
            cancelled = True
        elif time.monotonic() > deadline:
            timed_out = True
        if cancelled or timed_out:
            _kill(proc)
            break
    for t in readers:
        t.join(timeout=5)

    if cancelled:
        raise OperationCancelled(f"{what} cancelled")
    if timed_out:
        raise MediaError(f"{what} took longer than {timeout_s:.0f} s and was stopped")
    if proc.returncode != 0:
        # ffmpeg's own words (with its memory addresses) are for the operator's log; the agent
        # gets one sentence saying what failed, on which input, and what to change.
        log.info("%s failed (ffmpeg exit %s); ffmpeg said:\n%s", what, proc.returncode,
                 "\n".join(stderr_tail) or "(no output)")
        raise explain_failure(what, argv, list(stderr_tail), proc.returncode)
    if on_progress is not None and not progress_failed.is_set():
        on_progress(1.0)
    return "\n".join(stderr_tail)


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait(timeout=10)


# --- what a failed run tells the agent -------------------------------------------------------

_TAG = re.compile(r"\[[^\]@]*@ 0x[0-9a-f]+\]\s*")  # "[mjpeg @ 0x5587…] ": a context and its address
_INPUT_REF = re.compile(r"\b(?:in|vist|aist|sist|dist)#(\d+)")
_PICTURE_SIZE = re.compile(r"Picture size (\d+)x(\d+) is invalid|dimensions? (\d+)x(\d+)[^\n]*too large", re.I)
_MISSING_PART = re.compile(
    r"No such (filter|encoder|decoder|muxer|demuxer)[: ]+'([^']+)'|Unknown (encoder|decoder) '([^']+)'", re.I)
_CORRUPT = ("invalid data found when processing input", "moov atom not found", "partial file", "invalid nal unit",
            "error splitting the input", "error reading header", "end of file", "truncat", "corrupt",
            "contradictionary stsc", "decoding error", "error while decoding", "invalid frame")


def explain_failure(what: str, argv: Sequence[str], stderr_lines: Sequence[str], returncode: int) -> YtapError:
    """The error a failed ffmpeg run raises: one sentence in our words, naming the input at fault.

    The full log is not in it (it went to the server's log): memory addresses, thread
    names and the same reason repeated by every stage of ffmpeg's pipeline tell an agent
    nothing it can act on.
    """
    text = "\n".join(_TAG.sub("", line) for line in stderr_lines)
    low = text.lower()
    inputs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-i"]
    output = argv[-1] if argv and argv[-1] != "-" and not argv[-1].startswith("pipe:") else None
    code = f" (ffmpeg exit {returncode}; its log is in the server's log)"

    if "no space left on device" in low or "disk quota exceeded" in low:
        return DiskFull(Path(output).parent if output else Path.cwd(), what=what)
    culprit = _culprit(text, inputs)
    name = Path(culprit).name if culprit else None
    size = _PICTURE_SIZE.search(text)
    if size:
        w, h = (g for g in size.groups() if g)
        return MediaError(f"{what} failed: {name or 'a picture'} is {w}x{h} px, larger than ffmpeg can decode; "
                          f"use a picture at most {MAX_SIDE_PX} px on a side{code}")
    missing = _MISSING_PART.search(text)
    if missing:
        kind, part = (g for g in missing.groups() if g)
        return MediaError(f"{what} failed: the server's ffmpeg build has no {kind.lower()} '{part}'; its operator "
                          f"should run `ytap-mcp doctor` and set YTAP_FFMPEG to a full build{code}")
    if "no such file or directory" in low and name:
        return MediaError(f"{what} failed: {name} does not exist (any more); make or import it again{code}")
    if "permission denied" in low:
        where = name or (Path(output).name if output else "a file")
        return MediaError(f"{what} failed: permission denied on {where}; check who owns YTAP_HOME{code}")
    if "cannot allocate memory" in low or returncode in (-9, 137):
        return MediaError(f"{what} failed: ffmpeg ran out of memory; try a smaller height or fewer jobs at once{code}")
    if name and any(t in low for t in _CORRUPT):
        return MediaError(f"{what} failed: {name} is truncated or corrupt (ffmpeg cannot decode it); make that file "
                          f"again, or import a complete copy{code}")
    if returncode < 0:
        return MediaError(f"{what} failed: ffmpeg was stopped by signal {-returncode}{code}")
    reason = _last_reason(text)
    files = [Path(i).name for i in inputs if "/" in i or os.path.exists(i)]
    named = f" on {', '.join(files)}" if files else ""
    return MediaError(f"{what} failed{named}: ffmpeg said {reason!r}{code}")


def _culprit(text: str, inputs: Sequence[str]) -> str | None:
    """The input ffmpeg complained about: named in its log, or referred to as input #n, or the only one."""
    files = [i for i in inputs if "/" in i or os.path.exists(i)]  # not a lavfi source description
    for path in files:
        if path in text:
            return path
    for m in _INPUT_REF.finditer(text):
        n = int(m.group(1))
        if n < len(inputs) and inputs[n] in files:
            return inputs[n]
    return files[0] if len(files) == 1 else None


def _last_reason(text: str) -> str:
    """ffmpeg's most specific line: the first that is not a pipeline stage reporting it stopped."""
    noise = ("task finished with error", "terminating thread", "error opening output file", "nothing was written",
             "last message repeated", "conversion failed")
    for line in text.splitlines():
        line = line.strip()
        if line and not any(n in line.lower() for n in noise):
            return line[:160]
    return "nothing"
