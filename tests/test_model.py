"""The networks: paper-exact geometry, parameter counts, state_dict layout, and the fusion arithmetic."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fcn_viewer.model import FCNConfig, build_fcn, compact_config, vgg16_config
from fcn_viewer.model.config import paper_crops
from fcn_viewer.model.fold import fold_batchnorm
from fcn_viewer.model.upsample import (
    BilinearDeconvolution,
    bilinear_kernel,
    bilinear_upsample,
    bilinear_weight,
    is_fixed_bilinear,
    with_separable_bilinear,
)
from tests.helpers import random_model, tiny_compact_config, tiny_paper_config

# Key → shape of pytorch-fcn's FCN8s(n_class=21) state_dict, written out from its definition.
VGG_LAYERS = [
    ("conv1_1", 64, 3), ("conv1_2", 64, 64), ("conv2_1", 128, 64), ("conv2_2", 128, 128),
    ("conv3_1", 256, 128), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
    ("conv4_1", 512, 256), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512),
]  # fmt: skip
PYTORCH_FCN8S_SHAPES = {
    **{f"{n}.weight": (o, i, 3, 3) for n, o, i in VGG_LAYERS},
    **{f"{n}.bias": (o,) for n, o, _ in VGG_LAYERS},
    "fc6.weight": (4096, 512, 7, 7), "fc6.bias": (4096,),
    "fc7.weight": (4096, 4096, 1, 1), "fc7.bias": (4096,),
    "score_fr.weight": (21, 4096, 1, 1), "score_fr.bias": (21,),
    "score_pool3.weight": (21, 256, 1, 1), "score_pool3.bias": (21,),
    "score_pool4.weight": (21, 512, 1, 1), "score_pool4.bias": (21,),
    "upscore2.weight": (21, 21, 4, 4),
    "upscore8.weight": (21, 21, 16, 16),
    "upscore_pool4.weight": (21, 21, 4, 4),
}  # fmt: skip


@pytest.mark.parametrize(
    ("variant", "expected"),
    [("fcn32s", 136_152_917), ("fcn16s", 134_815_994), ("fcn8s", 134_489_759), ("fcn8s-atonce", 134_489_759)],
)
def test_vgg16_parameter_counts_match_the_paper_nets(variant: str, expected: int) -> None:
    with torch.device("meta"):
        model = build_fcn(vgg16_config(variant))  # type: ignore[arg-type]
    assert sum(p.numel() for p in model.parameters()) == expected


def test_state_dict_has_pytorch_fcn_keys_and_shapes() -> None:
    with torch.device("meta"):
        model = build_fcn(vgg16_config("fcn8s"))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == PYTORCH_FCN8S_SHAPES


def test_deconvolutions_have_no_bias_and_start_bilinear() -> None:
    model = build_fcn(tiny_paper_config("fcn8s"))
    for name in ("upscore2", "upscore_pool4", "upscore8"):
        layer = getattr(model, name)
        assert layer.bias is None
        size = layer.kernel_size[0]
        assert torch.equal(layer.weight, bilinear_weight(layer.in_channels, size))
    assert (model.upscore2.kernel_size, model.upscore2.stride) == ((4, 4), (2, 2))
    assert (model.upscore8.kernel_size, model.upscore8.stride) == ((16, 16), (8, 8))


def test_bilinear_kernel_matches_the_reference_formula() -> None:
    kernel = bilinear_kernel(4)
    expected_row = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.allclose(kernel, expected_row[:, None] * expected_row[None, :])
    # Interior pixels of a ×2 upsampled constant stay constant.
    ones = torch.ones(1, 1, 5, 5)
    up = bilinear_upsample(ones, 2)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.ones_like(up[..., 2:-2, 2:-2]))


@pytest.mark.parametrize(("factor", "padding", "offset", "size"), [
    (2, 0, 0, None), (8, 0, 31, (9, 17)), (16, 8, 0, (40, 41)), (32, 0, 19, (50, 61)), (32, 16, 0, None)])
def test_separable_bilinear_upsampling_is_the_deconvolution_then_the_crop(
        factor: int, padding: int, offset: int, size: tuple[int, int] | None) -> None:
    scores = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    full = F.conv_transpose2d(scores, bilinear_weight(3, 2 * factor), stride=factor, padding=padding)
    rows, columns = size or full.shape[-2:]
    got = bilinear_upsample(scores, factor, padding, offset, size)
    torch.testing.assert_close(got, full[..., offset : offset + rows, offset : offset + columns], rtol=1e-6, atol=1e-6)


def test_only_an_exactly_bilinear_deconvolution_is_run_separably() -> None:
    model = random_model(tiny_paper_config("fcn8s"))  # every deconvolution learned (random)
    with torch.no_grad():
        model.upscore8.weight.copy_(bilinear_weight(5, 16))  # the fixed final upsampling
    fast = with_separable_bilinear(model)
    assert isinstance(fast.upscore8, BilinearDeconvolution) and fast.upscore8.weight is model.upscore8.weight
    assert type(model.upscore8) is nn.ConvTranspose2d  # the model itself is untouched
    assert type(fast.upscore2) is nn.ConvTranspose2d and not is_fixed_bilinear(model.upscore2)
    x = torch.randn(1, 3, 37, 45)
    with torch.no_grad():
        expected, got = model.forward_stages(x), fast.forward_stages(x)
    for name, tensor in expected.tensors.items():
        torch.testing.assert_close(got.tensors[name], tensor, rtol=1e-5, atol=1e-5, msg=name)
    assert got.deconvolutions.keys() == expected.deconvolutions.keys()


def test_paper_fcn8s_stage_shapes_for_500x500() -> None:
    model = random_model(tiny_paper_config("fcn8s"))
    with torch.no_grad():
        out = model.forward_stages(torch.randn(1, 3, 500, 500))
    shapes = {k: tuple(v.shape[-2:]) for k, v in out.tensors.items()}
    assert shapes["score_fr"] == (16, 16)
    assert shapes["upscore2"] == (34, 34)
    assert shapes["score_pool4"] == (44, 44)
    assert shapes["fuse_pool4"] == (34, 34)
    assert shapes["score_pool3"] == (88, 88)
    assert shapes["fuse_pool3"] == (70, 70)
    assert shapes["upscore8"] == (568, 568)
    for stage in ("32s", "16s", "8s"):
        assert shapes[f"logits_{stage}"] == (500, 500)
    assert out.stages == ("32s", "16s", "8s")
    assert out.upsampling == {"8s": "upscore8", "32s": "bilinear", "16s": "bilinear"}


def test_paper_crop_offsets_are_the_reference_ones() -> None:
    expected = {
        "fcn32s": {"upscore": 19},
        "fcn16s": {"score_pool4": 5, "upscore16": 27},
        "fcn8s": {"score_pool4": 5, "score_pool3": 9, "upscore8": 31},
    }
    for variant, offsets in expected.items():
        model = random_model(tiny_paper_config(variant))
        with torch.no_grad():
            out = model(torch.randn(1, 3, 64, 64)), model.forward_stages(torch.randn(1, 3, 64, 64))
        learned = {c.source: c.offset for c in out[1].crops if not c.source.startswith("bilinear")}
        assert learned == offsets
        assert out[0].shape[-2:] == (64, 64)


@pytest.mark.parametrize("size", [(1, 1), (31, 47), (333, 481), (360, 480), (97, 64)])
@pytest.mark.parametrize("padding", ["paper", "same"])
def test_every_stage_reaches_full_resolution_for_odd_sizes(size: tuple[int, int], padding: str) -> None:
    config = tiny_paper_config() if padding == "paper" else tiny_compact_config()
    model = random_model(config)
    with torch.no_grad():
        out = model.forward_stages(torch.randn(2, 3, *size))
    for stage in ("32s", "16s", "8s"):
        assert out.logits(stage).shape == (2, config.num_classes, *size)
    if padding == "same":
        h, w = size
        assert out.score_map("32s").shape[-2:] == (-(-h // 32), -(-w // 32))
        assert out.score_map("16s").shape[-2:] == (-(-h // 16), -(-w // 16))
        assert out.score_map("8s").shape[-2:] == (-(-h // 8), -(-w // 8))
        assert all(crop.offset == 0 for crop in out.crops)


def test_stages_per_variant() -> None:
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        out32 = random_model(tiny_paper_config("fcn32s")).forward_stages(x)
        out16 = random_model(tiny_paper_config("fcn16s")).forward_stages(x)
    assert out32.stages == ("32s",) and "fuse_pool4" not in out32.tensors
    assert out16.stages == ("32s", "16s") and "fuse_pool3" not in out16.tensors
    assert out16.upsampling == {"16s": "upscore16", "32s": "bilinear"}


def _reference_fcn8s(model: torch.nn.Module, x: torch.Tensor, atonce: bool = False) -> dict[str, torch.Tensor]:
    """FCN-8s written out step by step the way the Caffe net is, independently of the model's code."""
    p = dict(model.named_parameters())
    h = x
    taps = {}
    for block, depth in zip(range(1, 6), (2, 2, 3, 3, 3)):
        for layer in range(1, depth + 1):
            name = f"conv{block}_{layer}"
            h = F.relu(F.conv2d(h, p[f"{name}.weight"], p[f"{name}.bias"], padding=100 if name == "conv1_1" else 1))
        h = F.max_pool2d(h, 2, 2, ceil_mode=True)
        taps[block] = h
    h = F.relu(F.conv2d(h, p["fc6.weight"], p["fc6.bias"]))
    h = F.relu(F.conv2d(h, p["fc7.weight"], p["fc7.bias"]))
    score_fr = F.conv2d(h, p["score_fr.weight"], p["score_fr.bias"])
    upscore2 = F.conv_transpose2d(score_fr, p["upscore2.weight"], stride=2)
    pool4 = taps[4] * (0.01 if atonce else 1)
    score_pool4 = F.conv2d(pool4, p["score_pool4.weight"], p["score_pool4.bias"])
    n, m = upscore2.shape[-2:]
    fuse_pool4 = upscore2 + score_pool4[:, :, 5 : 5 + n, 5 : 5 + m]
    upscore_pool4 = F.conv_transpose2d(fuse_pool4, p["upscore_pool4.weight"], stride=2)
    pool3 = taps[3] * (0.0001 if atonce else 1)
    score_pool3 = F.conv2d(pool3, p["score_pool3.weight"], p["score_pool3.bias"])
    n, m = upscore_pool4.shape[-2:]
    fuse_pool3 = upscore_pool4 + score_pool3[:, :, 9 : 9 + n, 9 : 9 + m]
    upscore8 = F.conv_transpose2d(fuse_pool3, p["upscore8.weight"], stride=8)
    out = upscore8[:, :, 31 : 31 + x.shape[2], 31 : 31 + x.shape[3]]
    # The 16s/32s stages of an FCN-8s: the reference FCN-16s/32s geometry with bilinear kernels.
    eye = torch.eye(score_fr.shape[1])[:, :, None, None]
    up16 = F.conv_transpose2d(fuse_pool4, eye * bilinear_kernel(32), stride=16)
    up32 = F.conv_transpose2d(score_fr, eye * bilinear_kernel(64), stride=32)
    return {
        "score_fr": score_fr,
        "fuse_pool4": fuse_pool4,
        "fuse_pool3": fuse_pool3,
        "logits_8s": out,
        "logits_16s": up16[:, :, 27 : 27 + x.shape[2], 27 : 27 + x.shape[3]],
        "logits_32s": up32[:, :, 19 : 19 + x.shape[2], 19 : 19 + x.shape[3]],
    }


@pytest.mark.parametrize("variant", ["fcn8s", "fcn8s-atonce"])
def test_fusion_equals_an_independent_step_by_step_computation(variant: str) -> None:
    model = random_model(tiny_paper_config(variant))
    x = torch.randn(1, 3, 75, 91)
    with torch.no_grad():
        out = model.forward_stages(x)
        reference = _reference_fcn8s(model, x, atonce=variant == "fcn8s-atonce")
        plain = model(x)
    for name, expected in reference.items():
        assert torch.allclose(out.tensors[name], expected, atol=1e-4, rtol=1e-4), name
    assert torch.allclose(plain, reference["logits_8s"], atol=1e-4, rtol=1e-4)


def test_scores_are_fused_not_features() -> None:
    """Summing per-skip class scores equals classifying the concatenated features (why FCN sums)."""
    torch.manual_seed(0)
    a, b = torch.randn(1, 6, 5, 5), torch.randn(1, 4, 5, 5)
    wa, wb = torch.randn(3, 6, 1, 1), torch.randn(3, 4, 1, 1)
    fused = F.conv2d(a, wa) + F.conv2d(b, wb)
    concatenated = F.conv2d(torch.cat([a, b], 1), torch.cat([wa, wb], 1))
    assert torch.allclose(fused, concatenated, atol=1e-5)


def test_compact_config_round_trips_through_dict() -> None:
    config = compact_config("fcn16s", num_classes=11)
    assert FCNConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown FCN config keys"):
        FCNConfig.from_dict({**config.to_dict(), "bogus": 1})


def test_folding_batchnorm_keeps_every_stage_tensor() -> None:
    model = random_model(tiny_compact_config())
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-1, 1)
        x = torch.randn(1, 3, 50, 70)
        before = model.forward_stages(x)
        fold_batchnorm(model)
        after = model.forward_stages(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    for name, tensor in before.tensors.items():
        assert torch.allclose(tensor, after.tensors[name], atol=1e-3, rtol=1e-4), name


def test_crop_offsets_derived_from_the_geometry_are_the_reference_ones_for_a_7x7_fc6() -> None:
    crops = paper_crops(7)
    assert (crops.score_pool4, crops.score_pool3, crops.stage) == (5, 9, {"32s": 19, "16s": 27, "8s": 31})
    assert (paper_crops(5).score_pool4, paper_crops(5).score_pool3, paper_crops(5).stage["8s"]) == (3, 5, 63)
    with pytest.raises(ValueError, match="fc6 kernel 9"):
        paper_crops(9)


@pytest.mark.parametrize("fc6_kernel", [5, 7])
@pytest.mark.parametrize("path", ["score_fr", "score_pool4", "score_pool3"])
def test_derived_crops_centre_the_response_to_a_dot_on_the_dot(fc6_kernel: int, path: str) -> None:
    """With equal positive weights every layer spreads a dot symmetrically, so the final response
    through one score layer alone is centred on the dot when its crops align the maps; a crop one
    cell off would move it by a stride (8 px or more)."""
    config = FCNConfig(variant="fcn8s", num_classes=2, widths=(2, 2, 2, 2, 2), depths=(1, 1, 1, 1, 1),
                       fc_width=2, fc6_kernel=fc6_kernel, dropout=0.0)
    model = build_fcn(config)
    dot = torch.zeros(1, 3, 512, 544)
    dot[..., 250, 270] = 1.0
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                silent = name.startswith("score") and name != path
                module.weight.fill_(0.0 if silent else 0.1)
                if module.bias is not None:
                    module.bias.zero_()
        response = model.forward_stages(dot).logits("8s")[0, 0].double()
    rows, columns = torch.meshgrid(torch.arange(512.0), torch.arange(544.0), indexing="ij")
    centre = (float((response * rows).sum() / response.sum()), float((response * columns).sum() / response.sum()))
    assert abs(centre[0] - 250) < 3 and abs(centre[1] - 270) < 3, centre


def test_paper_geometry_needs_an_fc6_the_skip_maps_can_hold() -> None:
    for kernel in (3, 9):
        with pytest.raises(ValueError, match=f"fc6 kernel {kernel}"):
            FCNConfig(fc6_kernel=kernel)


def test_upsampling_first_run_in_inference_mode_still_trains() -> None:
    scores = torch.randn(1, 3, 4, 5, requires_grad=True)
    with torch.inference_mode():
        bilinear_upsample(torch.randn(1, 3, 4, 5), 8, 0, 3, (20, 30))  # the same geometry, made here first
    bilinear_upsample(scores, 8, 0, 3, (20, 30)).sum().backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0
