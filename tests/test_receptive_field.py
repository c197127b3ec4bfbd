"""Receptive fields come from the net's own geometry; a clicked pixel maps to exactly the cells that feed it."""

from __future__ import annotations

import pytest
import torch

from fcn_viewer.model.config import compact_config, vgg16_config
from fcn_viewer.teaching.receptive_field import feeding_cells, map_geometry, trunk_geometry
from tests.helpers import gradient_image, random_model, tiny_compact_config, tiny_paper_config


def test_the_paper_vgg16_receptive_fields() -> None:
    geometry = trunk_geometry(vgg16_config())
    sizes = {name: g.size for name, g in geometry.items()}
    assert sizes["pool3"] == 44 and sizes["pool4"] == 100 and sizes["pool5"] == 212
    assert sizes["fc6"] == sizes["fc7"] == 404
    assert [geometry[f"pool{b}"].stride for b in range(1, 6)] == [2, 4, 8, 16, 32]
    # conv1_1's 100-px padding puts the first cells far outside the image
    assert geometry["pool3"].center(0) == pytest.approx(-95.5)


def test_the_compact_net_is_centred_on_the_image() -> None:
    geometry = trunk_geometry(compact_config())
    assert geometry["fc7"].stride == 32 and geometry["fc7"].size == 212 + 2 * 32
    assert geometry["pool3"].center(0) == pytest.approx(3.5)  # cell 0 covers pixels 0..7


def _gradient_cells(config, size, row, column):
    """Independent: the cells of each coarse map whose gradient to one final logit pixel is non-zero."""
    model = random_model(config, seed=5)
    image = torch.from_numpy(gradient_image(*size)).permute(2, 0, 1)[None].float() / 255
    outputs = model.forward_stages(image)
    names = [n for n in ("fuse_pool3", "fuse_pool4", "score_fr") if n in outputs.tensors]
    grads = torch.autograd.grad(outputs.logits()[0, :, row, column].sum(), [outputs.tensors[n] for n in names])
    cells = {}
    for name, grad in zip(names, grads):
        nonzero = grad[0].abs().sum(0).nonzero()
        cells[name] = (set(nonzero[:, 0].tolist()), set(nonzero[:, 1].tolist()))
    return outputs, cells


@pytest.mark.parametrize("config", [tiny_paper_config("fcn8s"), tiny_compact_config("fcn8s"),
                                    tiny_paper_config("fcn16s"), tiny_paper_config("fcn32s"),
                                    tiny_compact_config("fcn32s")],
                         ids=lambda c: f"{c.variant}-{c.padding}")
@pytest.mark.parametrize("pixel", [(0, 0), (17, 30), (44, 58)])
def test_a_click_maps_to_the_cells_whose_gradient_reaches_it(config, pixel) -> None:
    outputs, expected = _gradient_cells(config, (45, 59), *pixel)
    mapped = feeding_cells(outputs, *pixel)
    assert set(mapped) == set(expected)
    for name, (rows, columns) in mapped.items():
        assert (set(rows), set(columns)) == expected[name], name


def test_fused_maps_sit_where_their_crops_put_them() -> None:
    config = tiny_paper_config("fcn8s")
    model = random_model(config)
    with torch.no_grad():
        outputs = model.forward_stages(torch.zeros(1, 3, 64, 64))
    geometry = map_geometry(config, outputs)
    assert set(geometry) == {"score_fr", "fuse_pool4", "fuse_pool3"}
    trunk = trunk_geometry(config)
    assert geometry["fuse_pool3"].start == trunk["pool3"].start + 9 * 8  # score_pool3 cropped at 9
    assert geometry["fuse_pool4"].start == trunk["pool4"].start + 5 * 16
    assert geometry["fuse_pool3"].size == 44 and geometry["score_fr"].size == 404
    low, high = geometry["fuse_pool3"].footprint(2)
    assert high - low == 8
