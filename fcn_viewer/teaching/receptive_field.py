"""Receptive fields and alignment from a net's own geometry: how much of the photo one cell of each map sees, where
its cells sit on the photo, and which coarse cells feed an output pixel through the deconvolutions and crops (no Qt).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fcn_viewer.model.config import FCNConfig
from fcn_viewer.model.outputs import FCNOutputs
from fcn_viewer.teaching.contributions import LAYER_INPUTS, fusion_path

# The coarse maps the viewer shows, and the trunk layer whose geometry each one's own cells have.
MAP_TRUNK_LAYERS = {"score_fr": "fc7", "fuse_pool4": "pool4", "fuse_pool3": "pool3"}
MAP_TITLES = {"score_fr": "conv7", "fuse_pool4": "pool4-fused", "fuse_pool3": "pool3-fused"}
FUSED_SKIPS = {"fuse_pool4": "score_pool4", "fuse_pool3": "score_pool3"}


@dataclass(frozen=True)
class Geometry:
    """Where the cells of one feature map sit on the input: cell ``i`` is centred on input pixel ``start + i·stride``
    (pixel centres at integers; negative where the padding is) and sees a ``size``-pixel square (its theoretical
    receptive field)."""

    size: int
    stride: int
    start: float

    def center(self, index: int) -> float:
        return self.start + index * self.stride

    def footprint(self, index: int) -> tuple[float, float]:
        """The ``stride``-wide span of input (pixel edges) that this cell stands for."""
        middle = self.center(index)
        return middle - self.stride / 2, middle + self.stride / 2

    def field(self, index: int) -> tuple[float, float]:
        """The span of input pixels (edges) that can influence the cell."""
        middle = self.center(index)
        return middle - self.size / 2, middle + self.size / 2


def trunk_geometry(config: FCNConfig) -> dict[str, Geometry]:
    """The geometry of every pooling layer and of fc6 / fc7, walking the trunk layer by layer.

    A k×k layer of stride s and padding p makes ``size += (k−1)·stride``, ``start += ((k−1)/2 − p)·stride`` and
    ``stride *= s``. For the paper's VGG16: pool3 44 px, pool4 100, pool5 212, fc6 and fc7 404.
    """
    paper = config.padding == "paper"
    here = Geometry(1, 1, 0.0)
    result: dict[str, Geometry] = {}

    def layer(kernel: int, stride: int, padding: int) -> Geometry:
        return Geometry(here.size + (kernel - 1) * here.stride, here.stride * stride,
                        here.start + ((kernel - 1) / 2 - padding) * here.stride)

    for block, depth in enumerate(config.depths, start=1):
        for conv in range(1, depth + 1):
            here = layer(3, 1, 100 if paper and block == 1 and conv == 1 else 1)
        here = layer(2, 2, 0)
        result[f"pool{block}"] = here
    here = layer(config.fc6_kernel, 1, 0 if paper else config.fc6_kernel // 2)
    result["fc6"] = here
    result["fc7"] = replace(here)
    return result


def map_geometry(config: FCNConfig, outputs: FCNOutputs) -> dict[str, Geometry]:
    """The geometry of each coarse map the net made (conv7 scores, pool4- and pool3-fused): a fused map's cells are
    its skip's cells, moved by the crop that aligned the skip (paper nets); the receptive field is the skip's."""
    trunk = trunk_geometry(config)
    result = {}
    for name, layer in MAP_TRUNK_LAYERS.items():
        if name not in outputs.tensors:
            continue
        geometry = trunk[layer]
        crop = next((c for c in outputs.crops if c.source == FUSED_SKIPS.get(name)), None)
        if crop is not None:
            geometry = replace(geometry, start=geometry.start + crop.offset * geometry.stride)
        result[name] = geometry
    return result


def _feeding(positions: range, size: int, kernel: int, stride: int, padding: int) -> range:
    """The input indices of a transposed convolution whose kernel reaches any output index in ``positions``:
    output ``o`` takes input ``i`` when ``0 ≤ o + padding − i·stride < kernel``."""
    low = -((positions.start + padding - kernel + 1) // -stride)  # ceil division
    high = (positions.stop - 1 + padding) // stride
    return range(max(low, 0), min(high, size - 1) + 1)


def feeding_cells(outputs: FCNOutputs, row: int, column: int) -> dict[str, tuple[range, range]]:
    """The cells (rows, columns) of each coarse map that feed final-logit pixel (``row``, ``column``) through the
    net's own deconvolutions (×2, ×8, ×16 or ×32) and crops, finest map first."""
    rows, columns = range(row, row + 1), range(column, column + 1)
    result: dict[str, tuple[range, range]] = {}
    for layer, _ in reversed(fusion_path(outputs)):
        crop = next((c for c in outputs.crops if c.source == layer), None)
        if crop is not None:
            rows = range(rows.start + crop.offset, rows.stop + crop.offset)
            columns = range(columns.start + crop.offset, columns.stop + crop.offset)
        deconv = outputs.deconvolutions[layer]
        source = LAYER_INPUTS[layer]
        height, width = outputs.tensors[source].shape[-2:]
        kernel = deconv.weight.shape[-1]
        rows = _feeding(rows, height, kernel, deconv.stride, deconv.padding)
        columns = _feeding(columns, width, kernel, deconv.stride, deconv.padding)
        result[source] = (rows, columns)
    return result
