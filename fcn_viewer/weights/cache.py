"""Falls back to a temporary cache folder when the configured one cannot be used, with a note saying so.

A cache folder that is a file, sits under /proc, or is on a read-only file system must not stop the
app: only downloads need the cache (the bundled models never do), so they go to a fresh temporary
folder for this run instead.
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

_notes: list[str] = []


def usable_cache_dir(preferred: Path) -> Path:
    """``preferred``, created if missing and proved writable; else a temporary folder (see :func:`cache_note`)."""
    return Path(_usable(str(preferred)))


def cache_note() -> str:
    """Why the configured cache folder is not used in this run ('' when it is)."""
    return _notes[-1] if _notes else ""


@lru_cache(maxsize=8)
def _usable(preferred: str) -> str:
    try:
        Path(preferred).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=preferred):
            pass
        return preferred
    except OSError as error:
        fallback = tempfile.mkdtemp(prefix="fcn-viewer-cache-")
        atexit.register(_remove_if_empty, fallback)
        existing = Path(preferred)
        reason = "it is a file" if existing.exists() and not existing.is_dir() else error.strerror or str(error)
        note = (f"note: the cache folder {preferred} cannot be used ({reason}); downloads go to {fallback} "
                "for this run (set FCN_VIEWER_CACHE to a writable folder)")
        _notes.append(note)
        print(note, file=sys.stderr)
        return fallback


def _remove_if_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:  # something was downloaded into it, or it is gone
        pass


def clear() -> None:
    """Forgets which folders were found usable (tests change the environment)."""
    _usable.cache_clear()
    _notes.clear()


__all__ = ["cache_note", "clear", "usable_cache_dir"]
