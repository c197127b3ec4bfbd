"""Atomic file writes: a crash or a full disk never leaves a half-written file under the final name."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """Yields a binary file in ``path``'s folder; on success it is flushed, synced and renamed onto ``path``.

    The temporary file is created like any other (``open(..., "xb")``), so the result gets the
    user's usual permissions (umask), not a temp file's private ones.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
