"""Atomic writes: a temporary name in the same folder, then one rename.

A crash leaves at worst a ``.*.part`` file, never a half-written asset under its final
name; :func:`sweep_partials` removes leftovers at start-up (and ``archive_video`` before it
packs a folder), and never one whose writer still runs (:func:`writer_alive`).

Two ways to the final name: :func:`atomic_target` renames when its block ends (manifests,
sidecars, anything the registry does not describe); :func:`staged` renames nothing and
leaves the rename to ``Registry.add_asset(staged=...)``, which does it inside the write
transaction that registers the file, so the file under a slot's name and the row that
describes it change together.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "PART_SUFFIX",
    "temp_path_for",
    "atomic_target",
    "staged",
    "file_sha256",
    "copy_hashing",
    "fsync_file",
    "fsync_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "sweep_partials",
    "live_partials",
    "partial_writer_pid",
    "writer_alive",
    "pid_alive",
    "PROCESS_MARK",
    "HOST_TAG",
    "scratch_dir",
]

PART_SUFFIX = ".part"
# This process's mark, the first hex digits of the token in every temporary name it makes (and on
# the jobs it owns): with the pid it tells this process's work from a predecessor's that had the same pid.
PROCESS_MARK = secrets.token_hex(4)
# This machine's tag (8 hex digits of its host name's hash): on a shared media root (DESIGN.md §8) a
# pid from another machine cannot be checked here, so every temporary name and job carries the host.
HOST_TAG = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
# Another machine's leftover is removed only once nothing has touched it for this long (its writer
# cannot be asked; a live writer touches its file or scratch folder far more often than this).
FOREIGN_STALE_S = 24 * 3600.0


def _writer_tag() -> str:
    """``{pid}-{token}~{host}``: who is writing, where (see :func:`writer_alive`), and a unique name."""
    return f"{os.getpid()}-{PROCESS_MARK}{secrets.token_hex(4)}~{HOST_TAG}"


def temp_path_for(final: Path) -> Path:
    """A unique hidden sibling of ``final`` that keeps its extension visible to tools."""
    # The writer's pid and mark in the name tell a crashed writer's leftover from a live one's.
    return final.with_name(f".{final.stem}.{_writer_tag()}{final.suffix}{PART_SUFFIX}")


@contextlib.contextmanager
def atomic_target(final: Path) -> Iterator[Path]:
    """Yield a temp path; on success it is renamed onto ``final``, on any error it is removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(final)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written for {final.name}")
        fsync_file(tmp)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def staged(final: Path) -> Iterator[Path]:
    """Yield a temp path beside ``final`` for bytes a registration will rename into place.

    Leaving the block renames nothing: ``Registry.add_asset(path=final, staged=tmp)`` does,
    inside its write transaction. Whatever is still at the temp path when the block ends
    (an error, or nothing was registered) is removed.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(final)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def copy_hashing(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` (created, never overwritten) and return the SHA-256 of the bytes written.

    One read of the source: hashing a copy afterwards would read it all again.
    """
    h = hashlib.sha256()
    with src.open("rb") as fin, dst.open("xb") as fout:
        for block in iter(lambda: fin.read(_BLOCK), b""):
            h.update(block)
            fout.write(block)
    return h.hexdigest()


@contextlib.contextmanager
def scratch_dir(near: Path, label: str = "scratch") -> Iterator[Path]:
    """A private working folder beside ``near`` (an output path), removed on exit.

    Named like a ``.part`` leftover of this process (``.{stem}.{pid}-{token}.{label}.part``), so a
    crash that skips the removal leaves something :func:`sweep_partials` deletes at the next
    start, unlike a folder in the system temp dir, which nothing would ever clean. Being on the
    output's filesystem, files made in it can be renamed into place.
    """
    near.parent.mkdir(parents=True, exist_ok=True)
    path = near.with_name(f".{near.stem}.{_writer_tag()}.{label}{PART_SUFFIX}")
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def atomic_write_bytes(final: Path, data: bytes) -> None:
    with atomic_target(final) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(final: Path, text: str) -> None:
    atomic_write_bytes(final, text.encode("utf-8"))


# ".{stem}.{pid}-{token}~{host}{suffix}.part", plus anything a writer derived from such a name
# (e.g. a scratch folder ".{that name}.xyz.text" next to it). Names from before the token
# carried the process's mark have 8 hex digits; from before the host tag, no "~{host}" (this machine's).
_PART_RE = re.compile(r"^\..*?\.(\d+)-([0-9a-f]{8,}(?:~[0-9a-f]{8})?)\.[^./]*\.part(?:\..*)?$")


def partial_writer_pid(name: str) -> int | None:
    """The pid of the process that wrote a ``.*.part`` leftover named ``name``; None if it is not one."""
    m = _PART_RE.match(name)
    return int(m.group(1)) if m else None


def writer_alive(pid: int, token: str | None) -> bool:
    """Whether the process ``pid`` that marked its work with ``token`` (``{mark}…[~{host}]``) may still be at it.

    The one rule for ``.part`` files and for jobs: the writer is alive while a process with its
    pid exists, on its machine, whoever owns it. This process recognises its own work by
    :data:`PROCESS_MARK`, so a predecessor that had the same pid (a container's server is pid 1
    at every start) reads as gone. A pid the system has since given to another live process
    reads as alive: its leftovers wait until that process ends, never removed under a writer.
    A writer on another machine (another :data:`HOST_TAG`, a shared media root or database)
    cannot be checked from here and reads as alive.
    """
    mark, _, host = (token or "").partition("~")
    if host and host != HOST_TAG:
        return True
    if pid == os.getpid():
        return token is not None and mark.startswith(PROCESS_MARK)
    return pid_alive(pid)


def _foreign_and_stale(path: Path, token: str) -> bool:
    """A leftover of another machine's writer that nothing has touched for :data:`FOREIGN_STALE_S`."""
    host = token.partition("~")[2]
    if not host or host == HOST_TAG:
        return False
    try:
        return time.time() - path.lstat().st_mtime > FOREIGN_STALE_S
    except OSError:
        return False


def _leftovers(root: Path) -> Iterator[tuple[Path, bool]]:
    """Every ``.*.part`` file or scratch folder under ``root`` (outer ones first), and whether its writer lives."""
    if not root.is_dir():
        return
    for p in sorted(root.rglob(".*"), key=lambda x: len(x.parts)):
        m = _PART_RE.match(p.name)
        if m is not None and os.path.lexists(p):
            yield p, writer_alive(int(m.group(1)), m.group(2)) and not _foreign_and_stale(p, m.group(2))


def sweep_partials(root: Path) -> int:
    """Delete ``.*.part`` leftovers (files or scratch folders) under ``root`` whose writer is gone."""
    removed = 0
    for p, alive in _leftovers(root):
        if alive or not os.path.lexists(p):  # inside a folder removed a moment ago
            continue
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed += 1
    return removed


def live_partials(root: Path) -> list[Path]:
    """``.*.part`` files and folders under ``root`` that a live writer is still working on."""
    return [p for p, alive in _leftovers(root) if alive]


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive all the same
        return True
    except OSError:
        return False
    return True


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
