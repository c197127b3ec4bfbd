"""Atomic file writes: a crash, SIGTERM or a full disk never leaves a half-written file under the final name.

Also the checks every command runs on its output paths before any work, and the lock that keeps two
runs writing into one folder from mixing their files.
"""

from __future__ import annotations

import errno
import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from fcn_viewer.errors import UsageError

TEMPORARY_STEM = 16  # characters of the final name kept in the temporary one: any name up to 255 bytes works
LOCK_NAME = ".fcn-viewer.lock"  # on Windows only


@contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """Yields a binary file in ``path``'s folder; on success it is flushed, synced and renamed onto ``path``.

    The temporary name is short (``.<first 16 characters>.<8 hex>.tmp``) whatever the final name's
    length. It is created like any other file (``open(..., "xb")``), so the result gets the user's
    usual permissions (umask), not a temp file's private ones. Any exception, KeyboardInterrupt and
    the CLI's SIGTERM included, removes it.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name[:TEMPORARY_STEM]}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomically(path: str | Path, data: bytes) -> None:
    with atomic_output(path) as handle:
        handle.write(data)


def prepare_output_folder(folder: Path, option: str = "--out") -> Path:
    """Creates ``folder`` if needed and proves it writable now, or raises a UsageError that says why."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UsageError(f"{option} {folder}: cannot write there ({_reason(error)})") from None
    return folder


def check_output_file(path: Path, option: str, suffixes: tuple[str, ...] = ()) -> Path:
    """Refuses, before any work, an output file that could not be written: its folder is created and tried."""
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"{option} {path}: use a {', '.join(suffixes)} file name")
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    if path.exists() and not path.is_file():
        raise UsageError(f"{option} {path}: exists and is not a regular file")
    prepare_output_folder(path.parent if str(path.parent) else Path("."), option)
    return path


def _reason(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "the disk is full"
    if error.errno == errno.EROFS:
        return "read-only file system"
    if error.errno in (errno.ENOTDIR, errno.EEXIST) and error.filename is not None:
        return f"{os.fsdecode(error.filename)} is not a folder"
    return error.strerror or str(error)


@contextmanager
def folder_lock(folder: Path, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Holds an exclusive lock on ``folder`` for the block: on the folder itself (POSIX), or on a
    ``.fcn-viewer.lock`` file in it (Windows, which cannot lock folders).

    Another run holding it makes this one wait (``waiting`` is called once first), so two runs into
    one folder never interleave one image's files.
    """
    if sys.platform == "win32":
        descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    else:
        descriptor = os.open(folder, os.O_RDONLY)
    try:
        if not _try_lock(descriptor):
            if waiting is not None:
                waiting()
            _lock(descriptor)
        try:
            yield
        finally:
            _unlock(descriptor)
    finally:
        os.close(descriptor)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(descriptor: int) -> bool:
        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _lock(descriptor: int) -> None:
        while True:
            try:
                msvcrt.locking(descriptor, msvcrt.LK_LOCK, 1)
                return
            except OSError as error:  # LK_LOCK gives up after about 10 s: keep waiting
                if error.errno != errno.EDEADLOCK:
                    raise

    def _unlock(descriptor: int) -> None:
        os.lseek(descriptor, 0, os.SEEK_SET)
        msvcrt.locking(descriptor, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(descriptor: int) -> bool:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _lock(descriptor: int) -> None:
        fcntl.flock(descriptor, fcntl.LOCK_EX)

    def _unlock(descriptor: int) -> None:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
