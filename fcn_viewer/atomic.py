"""Atomic file writes: a crash, SIGTERM or a full disk never leaves a half-written file under the final name.

Also the checks every command runs on its output paths before any work (writable, enough free space), the
removal of temporary files a killed run left behind, and the lock that keeps two runs writing into one
folder from mixing their files.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from fcn_viewer.errors import DiskSpaceError, UsageError

TEMPORARY_STEM = 16  # characters of the final name kept in the temporary one: any name up to 255 bytes works
TEMPORARY_NAME = re.compile(rf"\..{{1,{TEMPORARY_STEM}}}\.[0-9a-f]{{8}}\.tmp", re.DOTALL)  # ours, and only ours
LOCK_NAME = ".fcn-viewer.lock"  # on Windows only


@contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """Yields a binary file in ``path``'s folder; on success it is flushed, synced and renamed onto ``path``.

    The temporary name is short (``.<first 16 characters>.<8 hex>.tmp``) whatever the final name's
    length. It is created like any other file (``open(..., "xb")``), so the result gets the user's
    usual permissions (umask), not a temp file's private ones, and it is locked while written, so that
    :func:`remove_stale_temporaries` leaves it alone. Any exception, KeyboardInterrupt and the CLI's
    SIGTERM included, removes it; an OSError about it (a full disk) names ``path`` instead.
    """
    path = Path(path)
    handle, temporary = _locked_temporary(path)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.filename not in (None, os.fspath(temporary)):
            raise
        raise OSError(error.errno, error.strerror or str(error), os.fspath(path)) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _locked_temporary(path: Path) -> tuple[BinaryIO, Path]:
    """A new temporary file beside ``path``, open and locked (POSIX): a cleaner that removed it between the two
    (its writer looked dead) makes this start again under another name."""
    while True:
        temporary = path.with_name(f".{path.name[:TEMPORARY_STEM]}.{secrets.token_hex(4)}.tmp")
        handle = open(temporary, "xb")
        try:
            _hold(handle.fileno())
            if os.fstat(handle.fileno()).st_nlink:
                return handle, temporary
        except BaseException:
            handle.close()
            temporary.unlink(missing_ok=True)
            raise
        handle.close()


def remove_stale_temporaries(folder: Path) -> list[str]:
    """Removes the temporary files of :func:`atomic_output` in ``folder`` that no live writer holds (what a
    SIGKILL or a power cut leaves); their names, sorted. Links, folders and other names are never touched."""
    try:
        entries = [entry for entry in os.scandir(folder) if TEMPORARY_NAME.fullmatch(entry.name)]
    except OSError:
        return []
    return sorted(entry.name for entry in entries
                  if entry.is_file(follow_symlinks=False) and _remove_if_unheld(Path(entry.path)))


def _remove_if_unheld(path: Path) -> bool:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return False
        if sys.platform != "win32":  # removed while locked: a writer that opened it meanwhile starts again
            if not _try_lock(descriptor):
                return False
            os.unlink(path)
            return True
    except OSError:  # no locks on this file system: it cannot be told from a live one
        return False
    finally:
        os.close(descriptor)
    try:
        os.unlink(path)  # Windows refuses while its writer has it open
    except OSError:
        return False
    return True


def check_free_space(folder: Path, needed: int, where: str, what: str) -> None:
    """Raises a DiskSpaceError (``where: not enough free space: what about N MB, and M kB are free there``) when
    the disk holding ``folder`` has fewer than ``needed`` bytes free."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # not a place a disk can be asked about: writing will say what is wrong
    if free < needed:
        raise DiskSpaceError(f"{where}: not enough free space: {what} about {size_text(needed)}, and "
                             f"{size_text(free)} are free there")


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def size_text(size: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} bytes"


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

    def _hold(descriptor: int) -> None:
        """Nothing: Windows refuses to remove a file its writer has open."""

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

    def _hold(descriptor: int) -> None:
        """Locks a temporary file for as long as it is open (a file system without locks leaves it unlocked)."""
        with suppress(OSError):
            fcntl.flock(descriptor, fcntl.LOCK_EX)
