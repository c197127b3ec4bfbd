"""The lesson cores on tiny random-weight nets: classifier → FCN, why scores are summed, learned vs bilinear kernels."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from fcn_viewer.model import build_fcn
from fcn_viewer.model.config import FCNConfig
from fcn_viewer.model.upsample import bilinear_weight
from fcn_viewer.teaching.lessons.classifier import (
    cell_at,
    classifier_window,
    compare_cell,
    conv7_size,
    conv_flops,
    sliding_comparison,
)
from fcn_viewer.teaching.lessons.commute import commute_lesson
from fcn_viewer.teaching.lessons.upsampling import bilinear_logits, upsampling_lesson
from tests.helpers import random_model, tiny_compact_config, tiny_paper_config


def _input(height: int, width: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("config", "size"), [(tiny_paper_config(), (224, 232)), (tiny_compact_config(), (288, 296))],
                         ids=["paper", "same"])
def test_the_classifier_on_the_widened_crop_is_the_fcn_cell_and_on_the_crop_alone_is_close(
    config: FCNConfig, size: tuple[int, int]
) -> None:
    model = random_model(config)
    x = _input(*size)
    scores = model.score_fr(model.features(x).conv7)
    assert tuple(scores.shape[-2:]) == conv7_size(config, *size)
    rows, columns = scores.shape[-2:]
    interior = [(r, c) for r in range(rows) for c in range(columns) if classifier_window(config, (r, c), size).exact]
    assert interior, "the test image has no interior cell"
    cell = interior[len(interior) // 2]
    comparison = compare_cell(model, x, cell, scores)
    scale = comparison.score_range
    assert comparison.context_difference <= 1e-4 * scale  # exact to float tolerance
    assert comparison.max_abs_difference > 1e-3 * scale  # the crop's own padding changes the answer
    window = comparison.window
    assert window.size == 32 * config.fc6_kernel and window.receptive_field == 404 + 32 * (config.fc6_kernel - 7)
    # The pool5 cells the explanation calls untouched by the crop's padding are the ones equal to the FCN's.
    assert int((comparison.pool5_difference < 1e-5).sum()) == window.untouched_cells()
    assert cell_at(config, size, window.top + window.size // 2, window.left + window.size // 2) == cell
    assert "pool5" in comparison.sentence([f"c{i}" for i in range(config.num_classes)])


def test_conv7_size_matches_the_net_for_odd_sizes() -> None:
    for config in (tiny_paper_config("fcn32s"), tiny_compact_config("fcn32s")):
        model = random_model(config)
        for height, width in ((33, 70), (64, 95)):
            conv7 = model.features(_input(height, width)).conv7
            assert tuple(conv7.shape[-2:]) == conv7_size(config, height, width)


def test_flops_of_one_convolution_are_two_per_multiply_add() -> None:
    conv = nn.Conv2d(3, 5, 3, padding=1)
    x = _input(6, 7)
    assert conv_flops(lambda: conv(x), [conv]) == 2 * 5 * 3 * 9 * 6 * 7


def test_the_sliding_classifier_runs_every_crop_within_its_time_and_extrapolates_when_capped() -> None:
    model = random_model(tiny_paper_config())
    x = _input(40, 72)
    full = sliding_comparison(model, x, time_cap=60.0)
    assert full.crops == full.grid[0] * full.grid[1] == full.crops_run and not full.extrapolated
    assert 0.0 <= full.agreement <= 1.0 and full.flops_crops > full.flops_fcn > 0
    assert full.paper_example_grid == conv7_size(model.config, 500, 500)
    capped = sliding_comparison(model, x, time_cap=0.0)
    assert capped.crops_run == 1 and capped.extrapolated
    assert capped.seconds_crops == pytest.approx(capped.seconds_crops_run * capped.crops)
    assert set(capped.numbers()) >= {"crops", "flops_fcn", "flops_crops", "seconds_fcn", "seconds_crops",
                                     "argmax_agreement"}


@pytest.mark.parametrize("config", [tiny_paper_config("fcn16s"), tiny_compact_config(), tiny_paper_config("fcn8s-atonce")],
                         ids=["paper", "same", "atonce"])
def test_classifying_the_concatenated_features_equals_summing_the_scores(config: FCNConfig) -> None:
    model = random_model(config)
    lesson = commute_lesson(model, _input(50, 62))
    assert lesson.relative_difference <= 1e-4
    assert lesson.bytes_concatenated > lesson.bytes_summed
    assert not lesson.own_upsampling_is_bilinear and "learned C×C" in lesson.upsampling_note
    numbers = lesson.numbers()
    assert numbers["max_abs_difference"] <= 1e-4 * numbers["score_range"]


def test_with_a_bilinear_x2_the_summed_way_is_the_nets_own_fusion() -> None:
    model = random_model(tiny_paper_config())
    with torch.no_grad():
        model.upscore2.weight.copy_(bilinear_weight(model.config.num_classes, 4))
    x = _input(50, 62)
    lesson = commute_lesson(model, x)
    assert lesson.own_upsampling_is_bilinear
    torch.testing.assert_close(lesson.summed, model.forward_stages(x).tensors["fuse_pool4"][0], rtol=1e-5, atol=1e-5)


def test_an_fcn32s_has_no_fusion_to_show() -> None:
    with pytest.raises(ValueError, match="FCN-32s"):
        commute_lesson(random_model(tiny_paper_config("fcn32s")), _input(40, 40))


@pytest.mark.parametrize("config", [tiny_paper_config(), tiny_compact_config("fcn16s")], ids=["paper", "same"])
def test_bilinear_kernels_replayed_from_the_stored_scores_equal_a_new_pass_with_them(config: FCNConfig) -> None:
    model = random_model(config)
    x = _input(40, 52)
    with torch.no_grad():
        outputs = model.forward_stages(x)
    swapped = copy.deepcopy(model)
    with torch.no_grad():
        for module in swapped.modules():
            if isinstance(module, nn.ConvTranspose2d):
                module.weight.copy_(bilinear_weight(module.in_channels, module.kernel_size[0]))
    torch.testing.assert_close(bilinear_logits(outputs), swapped(x)[0], rtol=1e-4, atol=1e-4)

    label = np.asarray(outputs.logits()[0].argmax(0), dtype=np.uint8)
    lesson = upsampling_lesson(outputs, label, config.num_classes, 255)
    assert lesson.replay_error < 1e-4
    assert all(k.relative_difference > 0.1 and k.off_diagonal_share > 0 and not k.fixed for k in lesson.kernels)
    assert lesson.kernels_in_words().startswith("learned kernels differ from bilinear by ") and "fixed" not in \
        lesson.kernels_in_words()
    assert lesson.changed_pixels == int((lesson.learned_mask != lesson.bilinear_mask).sum()) > 0
    assert lesson.truth is not None and lesson.truth["learned"].pixel_accuracy == 1.0
    assert lesson.truth["bilinear"].pixel_accuracy < 1.0
    assert [k["layer"] for k in lesson.numbers()["kernels"]] == [k.layer for k in lesson.kernels]


def test_a_net_still_at_its_bilinear_start_changes_nothing() -> None:
    model = build_fcn(tiny_paper_config())
    with torch.no_grad():
        lesson = upsampling_lesson(model.forward_stages(_input(40, 52)))
    assert all(k.relative_difference == 0.0 and k.off_diagonal_share == 0.0 and k.fixed for k in lesson.kernels)
    assert all(k["fixed"] for k in lesson.numbers()["kernels"])
    assert lesson.kernels_in_words() == "upscore2, upscore_pool4, upscore8 are fixed bilinear (not learned)"
    assert lesson.changed_pixels == 0 and lesson.truth is None
    kernel = lesson.kernels[0]
    size = kernel.learned.shape[-1]
    assert kernel.tiles().shape == (tiny_paper_config().num_classes * size,) * 2
    np.testing.assert_allclose(kernel.diagonal_mean(), kernel.bilinear_kernel())
