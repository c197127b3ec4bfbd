"""Falls back to one stable cache folder when the configured one cannot be used, with a note saying so.

A cache folder that is a file, sits under /proc, or is on a read-only file system must not stop the
app: only downloads need the cache (the bundled models never do). They go to a fallback folder that
is the same on every run, ``<temp>/fcn-viewer-cache-<user id>``, so a 0.5 GB model is downloaded once
and found again, not fetched anew and left behind by each run. That folder is used only when it is a
real folder of this user's (never a link, nor another user's); otherwise there is no cache, the note
says so, and downloads are refused with an error naming the folder.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

_notes: list[str] = []


def usable_cache_dir(preferred: Path) -> Path:
    """``preferred``, created if missing and proved writable; else :func:`fallback_cache_dir` when it is usable,
    else ``preferred`` all the same (writing to it fails, naming it); see :func:`cache_note`."""
    return Path(_usable(str(preferred)))


def fallback_cache_dir() -> Path:
    """The cache folder used when the configured one cannot be: the same path on every run of this user."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"fcn-viewer-cache-{user}"


def cache_note() -> str:
    """Why the configured cache folder is not used in this run ('' when it is)."""
    return _notes[-1] if _notes else ""


@lru_cache(maxsize=8)
def _usable(preferred: str) -> str:
    reason = _unusable(Path(preferred))
    if not reason:
        return preferred
    fallback = fallback_cache_dir()
    refused = _unusable(fallback, own=True)
    if refused:
        note = (f"note: the cache folder {preferred} cannot be used ({reason}), nor the fallback {fallback} "
                f"({refused}): downloads are refused; set FCN_VIEWER_CACHE to a writable folder")
    else:
        note = (f"note: the cache folder {preferred} cannot be used ({reason}); downloads go to {fallback}, "
                "the same folder on every run (set FCN_VIEWER_CACHE to a writable folder)")
    _notes.append(note)
    print(note, file=sys.stderr)
    return preferred if refused else str(fallback)


def _unusable(folder: Path, own: bool = False) -> str:
    """Why ``folder`` cannot hold the cache ('' when it can), once created if missing; with ``own``, it must be
    a real folder of this user's, closed to others (a shared temporary folder is anyone's to fill)."""
    try:
        if own:
            folder.mkdir(mode=0o700, exist_ok=True)
            info = os.lstat(folder)
            if not stat.S_ISDIR(info.st_mode):
                return "it is a link or a file, not a folder"
            if hasattr(os, "getuid") and info.st_uid != os.getuid():
                return "it belongs to another user"
            if info.st_mode & 0o077:
                os.chmod(folder, 0o700)
        else:
            folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return ""
    except OSError as error:
        if folder.exists() and not folder.is_dir():
            return "it is a file"
        return error.strerror or str(error)


def clear() -> None:
    """Forgets which folders were found usable (tests change the environment)."""
    _usable.cache_clear()
    _notes.clear()


__all__ = ["cache_note", "clear", "fallback_cache_dir", "usable_cache_dir"]
