"""Atomic writes: a temporary name in the same folder, then one rename.

A crash leaves at worst a ``.*.part`` file, never a half-written asset under its final
name; :func:`sweep_partials` removes leftovers at start-up.

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
    "partial_writer_pid",
    "pid_alive",
    "scratch_dir",
]

PART_SUFFIX = ".part"


def temp_path_for(final: Path) -> Path:
    """A unique hidden sibling of ``final`` that keeps its extension visible to tools."""
    # The pid in the name lets start-up tell a crashed writer's leftover from a live one's.
    return final.with_name(f".{final.stem}.{os.getpid()}-{secrets.token_hex(4)}{final.suffix}{PART_SUFFIX}")


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

    Named like a ``.part`` leftover of this process (``.{stem}.{pid}-{hex}.{label}.part``), so a
    crash that skips the removal leaves something :func:`sweep_partials` deletes at the next
    start, unlike a folder in the system temp dir, which nothing would ever clean. Being on the
    output's filesystem, files made in it can be renamed into place.
    """
    near.parent.mkdir(parents=True, exist_ok=True)
    path = near.with_name(f".{near.stem}.{os.getpid()}-{secrets.token_hex(4)}.{label}{PART_SUFFIX}")
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


# ".{stem}.{pid}-{hex8}{suffix}.part", plus anything a writer derived from such a name
# (e.g. a scratch folder ".{that name}.xyz.text" next to it).
_PART_RE = re.compile(r"^\..*?\.(\d+)-[0-9a-f]{8}\.[^./]*\.part(?:\..*)?$")


def partial_writer_pid(name: str) -> int | None:
    """The pid of the process that wrote a ``.*.part`` leftover named ``name``; None if it is not one."""
    m = _PART_RE.match(name)
    return int(m.group(1)) if m else None


def sweep_partials(root: Path) -> int:
    """Delete ``.*.part`` leftovers (files or scratch folders) under ``root`` whose writer process is gone."""
    if not root.exists():
        return 0
    removed = 0
    for p in sorted(root.rglob(".*"), key=lambda x: len(x.parts)):
        m = _PART_RE.match(p.name)
        if m is None or not p.exists():
            continue
        if int(m.group(1)) == os.getpid() or not pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
                removed += 1
    return removed


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
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
