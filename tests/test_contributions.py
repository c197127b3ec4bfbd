"""The final logits split exactly into one term per score map; skip switches equal the net re-run without that skip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fcn_viewer.inference import Segmenter
from fcn_viewer.model.upsample import is_bilinear
from fcn_viewer.teaching.contributions import (
    diverging_picture,
    shared_limit,
    skip_flips,
    skip_variants,
    split_logits,
)
from fcn_viewer.teaching.ground_truth import score_mask
from fcn_viewer.weights.loader import load_entry, load_weights_file
from fcn_viewer.weights.registry import entry
from tests.helpers import gradient_image, random_model, tiny_compact_config, tiny_paper_config

CONFIGS = [
    tiny_paper_config("fcn8s"),
    tiny_paper_config("fcn16s"),
    tiny_paper_config("fcn32s"),
    tiny_paper_config("fcn8s-atonce"),
    tiny_compact_config("fcn8s"),
    tiny_compact_config("fcn16s"),
    tiny_compact_config("fcn32s"),
]
ODD_SIZES = [(37, 53), (61, 45)]


def _outputs(config, size, seed=0):
    model = random_model(config, seed)
    image = torch.from_numpy(gradient_image(*size, seed=seed)).permute(2, 0, 1)[None].float() / 255 - 0.5
    with torch.no_grad():
        return model, image, model.forward_stages(image)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.variant}-{c.padding}")
@pytest.mark.parametrize("size", ODD_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_terms_sum_to_the_final_logits(config, size) -> None:
    _, _, outputs = _outputs(config, size)
    split = split_logits(outputs)
    expected = {"fcn32s": ["score_fr"], "fcn16s": ["score_fr", "score_pool4"]}.get(
        config.variant, ["score_fr", "score_pool4", "score_pool3"])
    assert list(split.terms) == expected
    logits = outputs.logits()[0]
    assert split.logits.shape == logits.shape == split.total().shape
    torch.testing.assert_close(split.total(), logits, rtol=1e-5, atol=1e-5 * float(logits.abs().max()))
    if len(expected) > 1:  # every term matters: none is zero
        assert all(float(term.abs().max()) > 1e-3 for term in split.terms.values())


def _zeroed(model, layer: str):
    return getattr(model, layer).register_forward_hook(lambda _m, _i, out: torch.zeros_like(out))


@pytest.mark.parametrize("config", [tiny_paper_config("fcn8s"), tiny_paper_config("fcn8s-atonce"),
                                    tiny_compact_config("fcn8s"), tiny_paper_config("fcn16s")],
                         ids=lambda c: f"{c.variant}-{c.padding}")
def test_a_skip_switched_off_equals_the_net_rerun_with_that_score_map_zeroed(config) -> None:
    model, image, outputs = _outputs(config, (45, 59), seed=3)
    split = split_logits(outputs)
    for skips in ([["score_pool4"]] + ([["score_pool3"], ["score_pool4", "score_pool3"]]
                                       if "score_pool3" in split.terms else [])):
        hooks = [_zeroed(model, layer) for layer in skips]
        with torch.no_grad():
            rerun = model.forward_stages(image).logits()[0]
        for hook in hooks:
            hook.remove()
        torch.testing.assert_close(split.total(without=skips), rerun, rtol=1e-5, atol=1e-5 * float(rerun.abs().max()))
        assert np.array_equal(split.mask(without=skips), rerun.argmax(0).numpy())


def test_the_skip_flips_are_the_mask_changes_each_skip_makes_when_added() -> None:
    _, _, outputs = _outputs(tiny_compact_config("fcn8s"), (48, 64), seed=1)
    split = split_logits(outputs)
    flips = skip_flips(split, radius=2)
    conv7 = split.mask(["score_pool4", "score_pool3"])
    with_pool4 = split.mask(["score_pool3"])
    assert list(flips) == ["score_pool4", "score_pool3"]
    assert np.array_equal(flips["score_pool4"].changed, conv7 != with_pool4)
    assert np.array_equal(flips["score_pool3"].changed, with_pool4 != split.mask())
    assert flips["score_pool4"].count > 0
    assert 0 <= flips["score_pool3"].near_count <= flips["score_pool3"].count


def test_skip_variants_count_changes_and_score_against_the_label() -> None:
    _, _, outputs = _outputs(tiny_compact_config("fcn8s"), (40, 56), seed=2)
    split = split_logits(outputs)
    label = np.random.default_rng(0).integers(0, 12, size=(40, 56)).astype(np.uint8)  # 11 is void
    variants = skip_variants(split, label, 11, 11)
    assert [v.title for v in variants] == ["all skips on", "without pool4 skip", "without pool3 skip",
                                           "conv7 only (no skips)"]
    assert variants[0].changed == 0
    for variant in variants:
        assert variant.changed == int((variant.mask != split.mask()).sum())
        assert variant.truth is not None
        assert variant.truth.summary == score_mask(variant.mask, label, 11, 11).summary
    assert skip_variants(split)[1].truth is None


def test_class_maps_pick_the_chosen_or_the_predicted_class() -> None:
    _, _, outputs = _outputs(tiny_paper_config("fcn8s"), (33, 41))
    split = split_logits(outputs)
    chosen = split.class_maps(2)
    assert np.array_equal(chosen["score_pool3"], split.terms["score_pool3"][2].numpy())
    predicted = split.class_maps(None)
    mask = split.mask()
    y, x = 10, 20
    assert predicted["score_fr"][y, x] == split.terms["score_fr"][mask[y, x], y, x]
    total = sum(predicted.values())
    np.testing.assert_allclose(total, split.logits.max(0).values.numpy(), rtol=1e-5, atol=1e-4)


def test_the_diverging_scale_is_white_at_zero_and_symmetric() -> None:
    picture = diverging_picture(np.array([[-2.0, -1.0, 0.0, 1.0, 2.0]]), limit=1.0)
    assert tuple(picture[0, 2]) == (255, 255, 255)
    assert tuple(picture[0, 3]) == tuple(picture[0, 4]) == (178, 24, 43)
    assert tuple(picture[0, 1]) == (33, 102, 172)
    assert shared_limit({"a": np.zeros((2, 2)), "b": np.full((2, 2), -3.0)}) == pytest.approx(3.0)


def test_outputs_of_the_segmenter_keep_what_the_split_needs(tiny_weights: Path) -> None:
    segmentation = Segmenter(load_weights_file(tiny_weights), "cpu").segment(gradient_image(47, 69))
    split = split_logits(segmentation.outputs)
    assert split.max_error() < 1e-4 * float(split.logits.abs().max())


def test_outputs_without_deconvolutions_are_refused_clearly() -> None:
    _, _, outputs = _outputs(tiny_compact_config("fcn8s"), (32, 32))
    outputs.deconvolutions = {}
    with pytest.raises(ValueError, match="no deconvolution weights"):
        split_logits(outputs)


@pytest.mark.skipif(not entry("camvid-fcn8s").available, reason="the bundled camvid-fcn8s model is not present")
def test_the_split_is_exact_on_the_bundled_model() -> None:
    segmentation = Segmenter(load_entry("camvid-fcn8s"), "cpu").segment(gradient_image(121, 163))
    split = split_logits(segmentation.outputs)
    assert split.max_error() < 1e-5 * float(split.logits.abs().max())
    fixed = {name: is_bilinear(layer.weight) for name, layer in segmentation.outputs.deconvolutions.items()}
    assert fixed == {"upscore2": False, "upscore_pool4": False, "upscore8": True}  # trained with a fixed final ×8


def test_the_figure_command_draws_the_contributions_headless(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from fcn_viewer.cli.main import main
    from tests.test_evaluate import make_dataset

    data = make_dataset(tmp_path / "camvid", count=1)
    image = data / "val" / "frame0.png"
    png, svg = tmp_path / "contributions.png", tmp_path / "contributions.svg"
    common = ["--weights", str(tiny_weights), "--device", "cpu", "--contributions"]
    assert main(["figure", str(image), "--out", str(png), *common]) == 0
    assert "terms sum to the logits within" in capsys.readouterr().err
    picture = Image.open(png)
    assert picture.size == (1920, 1080) and np.asarray(picture.convert("L")).std() > 20
    assert main(["figure", str(image), "--out", str(svg), *common, "--class", "Road"]) == 0
    text = svg.read_text()
    assert "pool3 skip (T3)" in text and "without pool4 skip" in text and "mIoU" in text and "“Road”" in text
    assert main(["figure", str(image), "--out", str(svg), *common, "--class", "Unicorn", "--overwrite"]) == 2
    assert "no class 'Unicorn'" in capsys.readouterr().err


def test_the_analysis_finds_each_switch_setting_and_reads_out_a_pixel() -> None:
    from fcn_viewer.teaching.contributions import analyse_contributions, term_pictures

    _, _, outputs = _outputs(tiny_compact_config("fcn8s"), (40, 48), seed=4)
    split = split_logits(outputs)
    analysis = analyse_contributions(split, gradient_image(40, 48))
    assert analysis.flip_picture.shape == (40, 48, 3)
    assert analysis.variant(["score_pool3"]).without == ("score_pool3",)
    assert np.array_equal(analysis.variant([]).mask, split.mask())
    pictures = term_pictures(split, 1)
    values = pictures.readout(5, 7)
    assert sum(values.values()) == pytest.approx(float(split.logits[1, 5, 7]), abs=1e-4)
    assert pictures.pictures["score_fr"].shape == (40, 48, 3)


def _scored(without: tuple[str, ...], pixel: float, iou: float = 0.5, bf: float = 0.4):  # type: ignore[no-untyped-def]
    from fcn_viewer.teaching.contributions import SkipVariant
    from fcn_viewer.teaching.ground_truth import StageTruth

    summary = {"pixel_accuracy": pixel, "mean_iou": iou, "boundary_f1": bf}
    return SkipVariant(without, np.zeros((2, 2), np.uint8), 0, StageTruth(summary, np.zeros((2, 2), bool)))


SKIPS = ("score_pool4", "score_pool3")


def test_the_32s_stage_note_says_which_of_the_nets_upsamplings_are_learned_and_which_fixed() -> None:
    from fcn_viewer.teaching.contributions import BilinearStage

    def stage(fixed: tuple[bool, ...]) -> BilinearStage:
        return BilinearStage((2, 2, 8), fixed, np.zeros((2, 2), np.uint8), 0)

    note = stage((False, False, True)).note(_scored(SKIPS, 0.8))
    assert "own ×2/×2/×8 upsamplings (×2/×2 learned, ×8 fixed bilinear), the 32s stage" in note
    assert stage((False, False, False)).chain_in_words() == "learned ×2/×2/×8 upsamplings"
    assert stage((True, True, True)).chain_in_words() == "×2/×2/×8 upsamplings (all fixed bilinear)"


def test_a_skip_that_lowers_a_score_on_the_image_is_said_in_words_with_both_numbers() -> None:
    from fcn_viewer.teaching.contributions import skip_drops
    from fcn_viewer.teaching.ground_truth import AVERAGE_NOTE

    # issue 19's default sample: conv7 only 84.0 %, without pool3 84.5 %, all skips on 83.1 %
    variants = [_scored((), 0.831, iou=0.52), _scored(("score_pool4",), 0.830, iou=0.51),
                _scored(("score_pool3",), 0.845, iou=0.55), _scored(SKIPS, 0.840)]
    assert skip_drops(variants, SKIPS) == [
        "On this image, adding the pool3 skip to conv7 alone lowers pixel accuracy from 84.0 % to 83.0 %.",
        "On this image, adding the pool3 skip to conv7 and the pool4 skip lowers pixel accuracy from 84.5 % to "
        "83.1 % and mean IoU from 55.0 % to 52.0 %.",
        "On this image, adding the pool4 and pool3 skips to conv7 lowers pixel accuracy from 84.0 % to 83.1 %.",
        AVERAGE_NOTE,
    ]
    fcn16s = [_scored((), 0.70, bf=0.30), _scored(("score_pool4",), 0.69, bf=0.35)]
    assert skip_drops(fcn16s, SKIPS[:1]) == [
        "On this image, adding the pool4 skip to conv7 alone lowers BF from 35.0 % to 30.0 %.", AVERAGE_NOTE]
    every = skip_drops([_scored((), 0.5, 0.4, 0.3), _scored(("score_pool4",), 0.6, 0.5, 0.4)], SKIPS[:1])
    assert every[0] == ("On this image, adding the pool4 skip to conv7 alone lowers pixel accuracy from 60.0 % to "
                        "50.0 %, mean IoU from 50.0 % to 40.0 % and BF from 40.0 % to 30.0 %.")


def test_when_every_skip_helps_or_there_is_no_label_nothing_is_said() -> None:
    from fcn_viewer.teaching.contributions import SkipVariant, skip_drops

    helping = [_scored((), 0.86, 0.6), _scored(("score_pool4",), 0.85, 0.55),
               _scored(("score_pool3",), 0.85, 0.58), _scored(SKIPS, 0.84, 0.5)]
    assert skip_drops(helping, SKIPS) == []
    same_when_shown = [_scored((), 0.83101), _scored(("score_pool4",), 0.83104)]  # both shown as 83.1 %
    assert skip_drops(same_when_shown, SKIPS[:1]) == []
    assert skip_drops([_scored((), 0.84, float("nan")), _scored(("score_pool4",), 0.84, 0.7)], SKIPS[:1]) == []
    unscored = [SkipVariant(without, np.zeros((2, 2), np.uint8), 0) for without in [(), ("score_pool4",)]]
    assert skip_drops(unscored, SKIPS[:1]) == []


def test_each_term_can_be_drawn_on_its_own_scale_and_the_shared_scale_stays() -> None:
    """A small term (the pool3 skip's, scaled by 0.0001 in an at-once net) is near white on the shared scale and
    spans the colours on its own."""
    from fcn_viewer.teaching.contributions import diverging_picture, shared_limit, term_pictures

    _, _, outputs = _outputs(tiny_compact_config("fcn8s"), (40, 48), seed=4)
    split = split_logits(outputs)
    small = split.terms["score_pool3"] * 0.01
    split = type(split)(split.stage, split.logits, {**split.terms, "score_pool3": small})
    shared, own = term_pictures(split, 1), term_pictures(split, 1, "own")
    assert shared.scale == "shared" and set(shared.limits.values()) == {shared.limit}
    assert own.limit == shared.limit  # the shared limit is still known
    for name, values in own.maps.items():
        limit = shared_limit({name: values})
        assert own.limit_of(name) == limit and limit != shared.limit
        np.testing.assert_array_equal(own.pictures[name], diverging_picture(values, limit))
    faint = 255 - shared.pictures["score_pool3"].min(axis=2)  # how far from white
    readable = 255 - own.pictures["score_pool3"].min(axis=2)
    assert faint.max() < 20 < readable.max()
