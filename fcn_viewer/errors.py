"""The project's error types: every failure a user can cause is one of these, with a clear message."""

from __future__ import annotations


class FCNViewerError(Exception):
    """Base of all errors the app reports to the user instead of crashing."""


class ImageLoadError(FCNViewerError):
    """An image file could not be read or decoded."""


class WeightsError(FCNViewerError):
    """A weights file is unreadable, corrupt, unsafe, or does not fit the network."""


class CaffeModelError(WeightsError):
    """A .caffemodel file is not a valid Caffe NetParameter."""


class ShapeMismatchError(WeightsError):
    """A tensor in a weights file has a different shape from the network's layer."""

    def __init__(self, layer: str, expected: tuple[int, ...], found: tuple[int, ...], source: str = "") -> None:
        where = f" in {source}" if source else ""
        super().__init__(
            f"layer {layer!r}{where}: weights have shape {tuple(found)}, the network expects {tuple(expected)}"
        )
        self.layer = layer
        self.expected = tuple(expected)
        self.found = tuple(found)


class DeviceError(FCNViewerError):
    """A device was asked for (CUDA, MPS) that this machine does not have."""


class DownloadError(FCNViewerError):
    """A download failed: network error, server error, hash mismatch or disk full."""


class DatasetError(FCNViewerError):
    """A dataset folder does not have the expected layout."""


class OutputExistsError(FCNViewerError):
    """An output file exists and the user did not ask to overwrite it."""


class UsageError(FCNViewerError):
    """An option or the environment is unusable: a bad value, an unknown name, an output that cannot be written."""


class DiskSpaceError(UsageError):
    """The disk an output goes to has too little free space, found before the work or when it filled."""


class UnknownModelError(UsageError, KeyError):
    """A model name that is not in the registry (a KeyError too, for callers that look names up)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
