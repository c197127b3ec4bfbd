"""Every model the app knows: the paper's releases, pytorch-fcn's conversions, and the bundled ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fcn_viewer.classes import CAMVID_CLASSES, CAMVID_PALETTE, VOC_CLASSES, VOC_PALETTE, Color
from fcn_viewer.errors import DownloadError, UnknownModelError
from fcn_viewer.model.config import FCNConfig, Variant
from fcn_viewer.model.stages import Stage
from fcn_viewer.resources import bundled_models_dir
from fcn_viewer.weights.download import ExpectedSize, ProgressCallback, cache_dir, download

WeightsFormat = Literal["caffemodel", "pth", "safetensors"]

FCN_CITATION = (
    "J. Long, E. Shelhamer, T. Darrell. Fully Convolutional Networks for Semantic Segmentation. CVPR 2015."
)
PYTORCH_FCN_CITATION = FCN_CITATION + " Converted to PyTorch by K. Wada, pytorch-fcn (github.com/wkentaro/pytorch-fcn)."
CAMVID_CITATION = (
    FCN_CITATION + " Trained on CamVid: G. Brostow, J. Fauqueur, R. Cipolla. Semantic object classes in video: "
    "a high-definition ground truth database. Pattern Recognition Letters 2009."
)
CAFFE_URL = "http://dl.caffe.berkeleyvision.org/{}.caffemodel"
# The Internet Archive's copy of the same files (id_: the bytes as archived), for when the Berkeley host is down.
CAFFE_ARCHIVE_URL = "https://web.archive.org/web/2017id_/" + CAFFE_URL
# SHA-1s of the paper's releases as published in OpenCV's test-data model list (opencv_extra, dnn/download_models.py).
CAFFE_SHA1 = {
    "fcn8s-heavy-pascal": "c449ea74dd7d83751d1357d6a8c323fcf4038962",
    "fcn32s-heavy-pascal": "05eb922d7829c39448f57e5ab9d8cd75d6c0be6d",
}
# Registry sizes are parameter bytes; a file adds its format's few kilobytes, and a web page or a different
# network is far off.
SIZE_TOLERANCE = 0.02
# Google Drive serves large files without its virus-scan page when asked with confirm=t.
DRIVE_URL = "https://drive.usercontent.google.com/download?id={}&export=download&confirm=t"
VGG16_FCN_BYTES = {"fcn32s": 136_152_917 * 4, "fcn16s": 134_815_994 * 4, "fcn8s": 134_489_759 * 4}


@dataclass(frozen=True)
class RegistryEntry:
    """A known model: where to get it, what it is, and which stages it has."""

    name: str
    title: str
    variant: Variant
    format: WeightsFormat
    dataset: Literal["pascal-voc", "camvid"]
    filename: str
    citation: str
    url: str | None = None
    size_bytes: int | None = None
    md5: str | None = None
    sha256: str | None = None
    sha1: str | None = None
    mirrors: tuple[str, ...] = ()  # tried in turn when url fails
    unavailable: str | None = None  # why it cannot be downloaded, when no source is known to work
    bundled: bool = False

    @property
    def classes(self) -> tuple[str, ...]:
        return VOC_CLASSES if self.dataset == "pascal-voc" else CAMVID_CLASSES

    @property
    def palette(self) -> tuple[Color, ...]:
        return VOC_PALETTE if self.dataset == "pascal-voc" else CAMVID_PALETTE

    @property
    def stages(self) -> tuple[Stage, ...]:
        return FCNConfig(variant=self.variant).stages

    @property
    def path(self) -> Path:
        """Where the weights are (bundled) or will be cached once downloaded."""
        return bundled_models_dir() / self.filename if self.bundled else cache_dir() / "weights" / self.filename

    @property
    def available(self) -> bool:
        return self.path.is_file()


def fetch_entry(
    item: RegistryEntry, progress: ProgressCallback | None = None, cancel: Callable[[], bool] | None = None
) -> Path:
    """Downloads a registry model into the cache from its sources in turn, checking its hashes and size."""
    if item.unavailable is not None:
        raise DownloadError(f"model {item.name} cannot be downloaded: {item.unavailable}")
    if item.url is None:
        raise DownloadError(f"model {item.name} has no download source")
    size = ExpectedSize(item.size_bytes, SIZE_TOLERANCE) if item.size_bytes else None
    return download(
        item.url, item.path, sha256=item.sha256, sha1=item.sha1, md5=item.md5, size=size, mirrors=item.mirrors,
        progress=progress, cancel=cancel,
    )


def _caffe(name: str, variant: Variant, title: str) -> RegistryEntry:
    base = variant.replace("-atonce", "")
    return RegistryEntry(
        name=name,
        title=title,
        variant=variant,
        format="caffemodel",
        dataset="pascal-voc",
        filename=f"{name}.caffemodel",
        citation=FCN_CITATION,
        url=CAFFE_URL.format(name),
        mirrors=(CAFFE_ARCHIVE_URL.format(name),),
        size_bytes=VGG16_FCN_BYTES[base],
        sha1=CAFFE_SHA1.get(name),
    )


def _pth(
    name: str, variant: Variant, title: str, drive_id: str, md5: str, unavailable: str | None = None
) -> RegistryEntry:
    base = variant.replace("-atonce", "")
    return RegistryEntry(
        name=f"pytorch-{name}",
        title=title,
        variant=variant,
        format="pth",
        dataset="pascal-voc",
        filename=f"{name}.pth",
        citation=PYTORCH_FCN_CITATION,
        url=DRIVE_URL.format(drive_id),
        size_bytes=VGG16_FCN_BYTES[base],
        md5=md5,
        unavailable=unavailable,
    )


def _bundled(variant: Variant) -> RegistryEntry:
    return RegistryEntry(
        name=f"camvid-{variant}",
        title=f"FCN-{variant[3:]} CamVid (bundled, compact)",
        variant=variant,
        format="safetensors",
        dataset="camvid",
        filename=f"camvid-{variant}.safetensors",
        citation=CAMVID_CITATION,
        bundled=True,
    )


ENTRIES: tuple[RegistryEntry, ...] = (
    _bundled("fcn8s"),
    _bundled("fcn16s"),
    _bundled("fcn32s"),
    _caffe("fcn8s-heavy-pascal", "fcn8s", "FCN-8s VOC (paper, Caffe)"),
    _caffe("fcn16s-heavy-pascal", "fcn16s", "FCN-16s VOC (paper, Caffe)"),
    _caffe("fcn32s-heavy-pascal", "fcn32s", "FCN-32s VOC (paper, Caffe)"),
    _caffe("fcn8s-atonce-pascal", "fcn8s-atonce", "FCN-8s at-once VOC (paper, Caffe)"),
    # md5 sums as published by pytorch-fcn for its *_from_caffe.pth conversions.
    _pth("fcn8s_from_caffe", "fcn8s", "FCN-8s VOC (pytorch-fcn)", "1ieXWyoG68xqoHJPWdyrDyaIaaWlfmUxI", "de93e540ec79512f8770033849c8ae89"),
    _pth("fcn16s_from_caffe", "fcn16s", "FCN-16s VOC (pytorch-fcn)", "1bctu58B6YH9bu6lBBSBB2rUeGlGhYLoP", "a2d4035f669f09483b39c9a14a0d6670"),
    _pth("fcn32s_from_caffe", "fcn32s", "FCN-32s VOC (pytorch-fcn)", "11k2Q0bvRQgQbT6-jYWeh6nmAsWlSCY3f", "d3eb467a80e7da0468a20dfcbc13e6c8"),
    _pth("fcn8s-atonce_from_caffe", "fcn8s-atonce", "FCN-8s at-once VOC (pytorch-fcn)", "0B9P1L--7Wd2vblE1VUIxV1o2d2M", "bfed4437e941fef58932891217fe6464",
         unavailable="pytorch-fcn publishes only its pre-2021 Google Drive id for it, not re-uploaded when its "
                     "siblings' ids of that kind stopped working; use fcn8s-atonce-pascal (the paper's Caffe file, "
                     "the same weights) or place the .pth you have at the cache path"),
)
DEFAULT_MODEL = "camvid-fcn8s"


def entry(name: str) -> RegistryEntry:
    for candidate in ENTRIES:
        if candidate.name == name:
            return candidate
    known = ", ".join(e.name for e in ENTRIES)
    raise UnknownModelError(f"unknown model {name!r}; known models: {known}")
