"""PASCAL VOC segmentation (VOCdevkit/VOC20xx layout), for training the paper's VGG16 FCNs."""

from __future__ import annotations

from pathlib import Path

from fcn_viewer.data.folder import LabelledImages, Sample
from fcn_viewer.errors import DatasetError

VOC_IGNORE = 255


class VOCSegmentation(LabelledImages):
    """``JPEGImages/<id>.jpg`` with ``SegmentationClass/<id>.png`` (palette indices, 255 = void),
    listed by ``ImageSets/Segmentation/<split>.txt``."""

    def __init__(self, root: str | Path, split: str, ignore_index: int = VOC_IGNORE) -> None:
        self.root = Path(root)
        self.split = split
        self.ignore_index = ignore_index
        listing = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not listing.is_file():
            raise DatasetError(f"{listing}: missing; expected a VOCdevkit/VOC20xx folder")
        try:
            stems = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as error:
            raise DatasetError(f"{listing}: not a text file of image names ({error.reason} at byte {error.start})") from None
        except OSError as error:
            raise DatasetError(f"{listing}: cannot read it ({error.strerror or error})") from None
        if any("\0" in stem or "/" in stem or "\\" in stem for stem in stems):
            raise DatasetError(f"{listing}: a line is not an image name (it holds a slash or a NUL byte)")
        self.samples = [
            Sample(stem, self.root / "JPEGImages" / f"{stem}.jpg", self.root / "SegmentationClass" / f"{stem}.png")
            for stem in stems
        ]
        if not self.samples:
            raise DatasetError(f"{listing}: lists no images")


def is_voc_root(root: Path) -> bool:
    return (root / "ImageSets" / "Segmentation").is_dir()
