"""PASCAL VOC segmentation (VOCdevkit/VOC20xx layout), for training the paper's VGG16 FCNs."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from fcn_viewer.data.folder import LabelledImages, Sample
from fcn_viewer.errors import DatasetError
from fcn_viewer.imageio import file_kind

VOC_IGNORE = 255
# A split list names one image per line (VOC's names are 11 bytes, its lists about 3,000 lines; SBD's 11,355). A
# file name has at most 255 bytes on common file systems. Past these limits the file is something else, refused
# before it is read on: memory stays bounded (a few tens of MB) whatever the file holds.
MAX_LIST_LINE_BYTES = 256
MAX_LIST_LINES = 200_000
_NOT_A_LIST = "not a list of image names"


class VOCSegmentation(LabelledImages):
    """``JPEGImages/<id>.jpg`` with ``SegmentationClass/<id>.png`` (palette indices, 255 = void),
    listed by ``ImageSets/Segmentation/<split>.txt``."""

    def __init__(self, root: str | Path, split: str, ignore_index: int = VOC_IGNORE) -> None:
        self.root = Path(root)
        self.split = split
        self.ignore_index = ignore_index
        listing = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        self.samples = [
            Sample(stem, self.root / "JPEGImages" / f"{stem}.jpg", self.root / "SegmentationClass" / f"{stem}.png")
            for stem in read_split_list(listing)
        ]
        if not self.samples:
            raise DatasetError(f"{listing}: lists no images")


def read_split_list(listing: Path) -> list[str]:
    """The image names of a split list, one per line (blank lines skipped), read line by line under
    MAX_LIST_LINE_BYTES and MAX_LIST_LINES; only a regular file is opened (a FIFO would block for good)."""
    try:
        with _open_regular(listing) as file:
            return [name for name in _names(listing, file) if name]
    except OSError as error:
        raise DatasetError(f"{listing}: cannot read it ({error.strerror or error})") from None


def _open_regular(listing: Path) -> BinaryIO:
    """``listing`` opened for reading once stat says it is a regular file; opened without blocking and checked
    again, in case a FIFO took its place meanwhile."""
    try:
        mode = os.stat(listing).st_mode
    except FileNotFoundError:
        raise DatasetError(f"{listing}: missing; expected a VOCdevkit/VOC20xx folder") from None
    if stat.S_ISREG(mode):
        descriptor = os.open(listing, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISREG(mode):
            return os.fdopen(descriptor, "rb")
        os.close(descriptor)
    raise DatasetError(f"{listing}: not a regular file ({file_kind(mode)}), so not read as a list of image names")


def _names(listing: Path, file: BinaryIO) -> Iterator[str]:
    """Each line of ``file`` stripped; raises DatasetError at the first line past a limit or not an image name."""
    offset = 0
    for number, line in enumerate(iter(lambda: file.readline(MAX_LIST_LINE_BYTES + 1), b""), start=1):
        if number > MAX_LIST_LINES:
            raise DatasetError(f"{listing}: more than {MAX_LIST_LINES:,} lines: {_NOT_A_LIST}")
        if len(line) > MAX_LIST_LINE_BYTES and not line.endswith(b"\n"):
            raise DatasetError(f"{listing}: line {number} is longer than {MAX_LIST_LINE_BYTES} bytes: {_NOT_A_LIST}")
        try:
            name = line.decode("utf-8").strip()
        except UnicodeDecodeError as error:
            where = offset + error.start
            raise DatasetError(f"{listing}: not a text file of image names ({error.reason} at byte {where})") from None
        if "\0" in name or "/" in name or "\\" in name:
            raise DatasetError(f"{listing}: line {number} is not an image name (it holds a slash or a NUL byte)")
        offset += len(line)
        yield name


def is_voc_root(root: Path) -> bool:
    return (root / "ImageSets" / "Segmentation").is_dir()
