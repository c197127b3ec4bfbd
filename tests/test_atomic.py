"""Atomic outputs: all or nothing under the final name, with ordinary file permissions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fcn_viewer.atomic import atomic_output


def test_success_renames_with_the_usual_permissions(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "a.png") as handle:
        handle.write(b"data")
    assert (tmp_path / "a.png").read_bytes() == b"data"
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"old")
    with pytest.raises(OSError), atomic_output(tmp_path / "a.png") as handle:
        handle.write(b"half")
        raise OSError(28, "No space left on device")
    assert (tmp_path / "a.png").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
