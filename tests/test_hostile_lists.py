"""Hostile split lists (VOC's ``ImageSets/Segmentation/<split>.txt``): huge, binary, endless, or not a file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fcn_viewer.data import VOCSegmentation, voc
from fcn_viewer.errors import DatasetError
from tests.hostile import memory_capped, run_capped, within


def voc_root(tmp_path: Path) -> Path:
    """An empty VOCdevkit layout; the test writes its ``val.txt``."""
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (tmp_path / "voc" / folder).mkdir(parents=True)
    return tmp_path / "voc"


def listing(root: Path) -> Path:
    return root / "ImageSets" / "Segmentation" / "val.txt"


@memory_capped
def test_a_3_gb_list_of_nul_bytes_fails_fast_in_bounded_memory(tmp_path: Path) -> None:
    root = voc_root(tmp_path)
    with open(listing(root), "wb") as file:
        file.truncate(3 << 30)  # sparse: 3 GB of NUL bytes that take no disk
    child = run_capped(f"""
        from fcn_viewer.data import VOCSegmentation
        from fcn_viewer.errors import DatasetError
        try:
            VOCSegmentation({str(root)!r}, "val")
        except DatasetError as error:
            print(error)
        """, memory_bytes=512 << 20, seconds=10)
    assert child.returncode == 0, child.stderr[-2000:]
    assert "val.txt: line 1 is longer than" in child.stdout and "not a list of image names" in child.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_list_is_refused_as_not_a_regular_file_without_blocking(tmp_path: Path) -> None:
    root = voc_root(tmp_path)
    os.mkfifo(listing(root))
    outcome = within(lambda: VOCSegmentation(root, "val"))
    assert isinstance(outcome, DatasetError), outcome
    assert "val.txt: not a regular file (a FIFO)" in str(outcome) and "missing" not in str(outcome)


def test_a_folder_named_like_the_list_is_not_a_regular_file(tmp_path: Path) -> None:
    root = voc_root(tmp_path)
    listing(root).mkdir()
    with pytest.raises(DatasetError, match=r"val.txt: not a regular file \(a folder\)"):
        VOCSegmentation(root, "val")


def test_too_many_lines_are_refused_with_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(voc, "MAX_LIST_LINES", 100)
    root = voc_root(tmp_path)
    listing(root).write_text("\n" * 101)  # blank lines count too: an endless file of newlines stops early
    with pytest.raises(DatasetError, match=r"val.txt: more than 100 lines: not a list of image names"):
        VOCSegmentation(root, "val")
    listing(root).write_text("2007_000032\n" * 100)
    assert len(VOCSegmentation(root, "val")) == 100


def test_lines_are_read_one_by_one_and_checked(tmp_path: Path) -> None:
    root = voc_root(tmp_path)
    listing(root).write_bytes(b"2007_000032\r\n\n  2007_000039  \n2007_000063")
    assert [sample.stem for sample in VOCSegmentation(root, "val").samples] == [
        "2007_000032", "2007_000039", "2007_000063"]
    listing(root).write_bytes(b"2007_000032\n" + b"x" * (voc.MAX_LIST_LINE_BYTES + 1) + b"\n")
    with pytest.raises(DatasetError, match=r"val.txt: line 2 is longer than \d+ bytes: not a list of image names"):
        VOCSegmentation(root, "val")
    listing(root).write_bytes(b"2007_000032\n\xff\xfe\n")
    with pytest.raises(DatasetError, match=r"val.txt: not a text file of image names \(.* at byte 12\)"):
        VOCSegmentation(root, "val")
    listing(root).write_bytes(b"2007_000032\n../../etc/passwd\n")
    with pytest.raises(DatasetError, match=r"val.txt: line 2 is not an image name \(it holds a slash"):
        VOCSegmentation(root, "val")
    listing(root).unlink()
    with pytest.raises(DatasetError, match=r"val.txt: missing; expected a VOCdevkit/VOC20xx folder"):
        VOCSegmentation(root, "val")
