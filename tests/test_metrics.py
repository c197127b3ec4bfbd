"""Confusion-matrix metrics against hand-worked examples, and boundary F1 against a brute-force reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fcn_viewer.metrics import BoundaryF1, ConfusionMatrix, boundary_f1

VOID = 11

# Twelve pixels, three classes; the last two are void (11) and must not count.
#   target:     0 0 0 0 1 1 1 2 2 2 V V
#   prediction: 0 0 0 1 1 1 2 2 0 2 1 2
TARGET = np.array([[0, 0, 0, 0, 1, 1], [1, 2, 2, 2, VOID, VOID]], dtype=np.uint8)
PREDICTION = np.array([[0, 0, 0, 1, 1, 1], [2, 2, 0, 2, 1, 2]], dtype=np.uint8)
# Rows = ground truth, columns = prediction:
#   gt 0: 3 right, 1 as class 1          → [3, 1, 0]   t_0 = 4
#   gt 1: 2 right, 1 as class 2          → [0, 2, 1]   t_1 = 3
#   gt 2: 2 right, 1 as class 0          → [1, 0, 2]   t_2 = 3
EXPECTED_MATRIX = np.array([[3, 1, 0], [0, 2, 1], [1, 0, 2]])
# pixel accuracy = (3 + 2 + 2) / 10 = 0.7
# class accuracy = (3/4 + 2/3 + 2/3) / 3 = 25/36
# IoU: column sums are 4, 3, 3, so IoU_0 = 3 / (4 + 4 - 3) = 3/5, IoU_1 = 2 / (3 + 3 - 2) = 1/2, IoU_2 = 1/2
# mean IoU = (3/5 + 1/2 + 1/2) / 3 = 8/15
# frequency-weighted IoU = (4 · 3/5 + 3 · 1/2 + 3 · 1/2) / 10 = 0.54


def test_confusion_matrix_matches_the_hand_worked_example() -> None:
    confusion = ConfusionMatrix(3, ignore_index=VOID)
    confusion.update(PREDICTION, TARGET)
    np.testing.assert_array_equal(confusion.matrix, EXPECTED_MATRIX)
    assert confusion.matrix.dtype == np.int64
    summary = confusion.summary()
    assert summary["pixel_accuracy"] == pytest.approx(0.7)
    assert summary["mean_class_accuracy"] == pytest.approx(25 / 36)
    assert summary["per_class_iou"] == pytest.approx([3 / 5, 1 / 2, 1 / 2])
    assert summary["mean_iou"] == pytest.approx(8 / 15)
    assert summary["frequency_weighted_iou"] == pytest.approx(0.54)


def test_void_and_out_of_range_targets_do_not_count_whatever_is_predicted() -> None:
    confusion = ConfusionMatrix(3, ignore_index=VOID)
    confusion.update(PREDICTION, TARGET)
    confusion.update(np.array([[0, 1, 2]]), np.array([[VOID, VOID, 7]]))
    np.testing.assert_array_equal(confusion.matrix, EXPECTED_MATRIX)


def test_tensors_batches_and_merge_give_the_same_counts() -> None:
    batched = ConfusionMatrix(3, ignore_index=VOID)
    batched.update(torch.from_numpy(np.stack([PREDICTION, PREDICTION])), torch.from_numpy(np.stack([TARGET, TARGET])))
    merged = ConfusionMatrix(3, ignore_index=VOID)
    for _ in range(2):
        single = ConfusionMatrix(3, ignore_index=VOID)
        single.update(PREDICTION, TARGET)
        merged.merge(single)
    np.testing.assert_array_equal(batched.matrix, 2 * EXPECTED_MATRIX)
    np.testing.assert_array_equal(merged.matrix, 2 * EXPECTED_MATRIX)
    assert batched.summary() == merged.summary()


def test_absent_classes_are_nan_and_left_out_of_the_means() -> None:
    # Class 3 is neither in the labels nor predicted: NaN, and the 3-class numbers are unchanged.
    confusion = ConfusionMatrix(4, ignore_index=VOID)
    confusion.update(PREDICTION, TARGET)
    summary = confusion.summary()
    assert math.isnan(summary["per_class_iou"][3])
    assert summary["mean_iou"] == pytest.approx(8 / 15)
    assert summary["mean_class_accuracy"] == pytest.approx(25 / 36)
    assert summary["frequency_weighted_iou"] == pytest.approx(0.54)


def test_a_class_only_predicted_has_iou_zero_and_counts_in_the_mean() -> None:
    # target 0 0 1 1, prediction 0 2 1 1: IoU_0 = 1/2, IoU_1 = 1, IoU_2 = 0 → mIoU 1/2;
    # class 2 has no ground truth, so class accuracy is the mean of 1/2 and 1 only.
    confusion = ConfusionMatrix(3)
    confusion.update(np.array([0, 2, 1, 1]), np.array([0, 0, 1, 1]))
    summary = confusion.summary()
    assert summary["per_class_iou"] == pytest.approx([1 / 2, 1, 0])
    assert summary["mean_iou"] == pytest.approx(1 / 2)
    assert summary["mean_class_accuracy"] == pytest.approx(3 / 4)
    assert summary["frequency_weighted_iou"] == pytest.approx((2 * 1 / 2 + 2 * 1) / 4)


def test_empty_matrix_is_all_nan_and_bad_input_is_refused() -> None:
    confusion = ConfusionMatrix(3, ignore_index=VOID)
    assert all(math.isnan(confusion.summary()[key]) for key in ("pixel_accuracy", "mean_iou"))
    with pytest.raises(ValueError, match="shape"):
        confusion.update(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="predicted classes"):
        confusion.update(np.full((2, 2), 5, np.uint8), np.zeros((2, 2), np.uint8))


# -- boundary F1 ---------------------------------------------------------------------------------


def reference_boundary_f1(prediction: np.ndarray, target: np.ndarray, num_classes: int, ignore: int,
                          tolerance: float) -> float:
    """The documented definition, pixel by pixel and with all pairwise distances (tiny masks only)."""
    height, width = target.shape
    valid = (target < num_classes) & (target != ignore)

    def contour(labels: np.ndarray) -> np.ndarray:
        result = np.zeros(labels.shape, bool)
        for y in range(height):
            for x in range(width):
                for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < height and 0 <= nx < width and valid[y, x] and valid[ny, nx]:
                        result[y, x] |= labels[ny, nx] != labels[y, x]
        return result

    truth_contour, predicted_contour = contour(target), contour(prediction)
    scores = []
    for c in np.unique(target[valid]):
        truth = np.argwhere(truth_contour & (target == c))
        predicted = np.argwhere(predicted_contour & (prediction == c))
        if len(truth) == 0 and len(predicted) == 0:
            continue
        if len(truth) == 0 or len(predicted) == 0:
            scores.append(0.0)
            continue
        distance = np.sqrt(((predicted[:, None, :] - truth[None, :, :]) ** 2).sum(-1))
        precision = (distance.min(1) <= tolerance).mean()
        recall = (distance.min(0) <= tolerance).mean()
        scores.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(scores)) if scores else math.nan


def square(shift: int = 0, size: int = 24) -> np.ndarray:
    """Class 1: an 8×8 square on class 0, moved right by ``shift``."""
    mask = np.zeros((size, size), np.uint8)
    mask[6:14, 6 + shift : 14 + shift] = 1
    return mask


def test_identical_masks_score_one() -> None:
    target = square()
    target[18:, :5] = 2
    assert boundary_f1(target, target, 3, VOID) == 1.0


def test_a_square_one_pixel_off_is_within_the_tolerance() -> None:
    assert boundary_f1(square(1), square(), 2, VOID, tolerance=2) == 1.0


def test_a_square_five_pixels_off_matches_the_brute_force_reference() -> None:
    target, prediction = square(), square(5)
    score = boundary_f1(prediction, target, 2, VOID, tolerance=2)
    assert score < 0.8
    assert score == pytest.approx(reference_boundary_f1(prediction, target, 2, VOID, 2))
    # A larger, non-integer tolerance (SegNet's 0.75 % of the diagonal is 4.5 px on CamVid).
    assert boundary_f1(prediction, target, 2, VOID, 4.5) == pytest.approx(
        reference_boundary_f1(prediction, target, 2, VOID, 4.5)
    )


def test_random_maps_with_void_match_the_brute_force_reference() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        target = np.kron(rng.integers(0, 4, (4, 5)), np.ones((4, 4), int)).astype(np.uint8)
        target[rng.random(target.shape) < 0.1] = VOID
        prediction = np.kron(rng.integers(0, 4, (8, 10)), np.ones((2, 2), int)).astype(np.uint8)
        for tolerance in (0, 1, 2, 3.5):
            assert boundary_f1(prediction, target, 4, VOID, tolerance) == pytest.approx(
                reference_boundary_f1(prediction, target, 4, VOID, tolerance)
            )


def test_boundaries_touching_only_void_are_not_counted() -> None:
    # Top half: class 0 | void band | class 1; bottom half: class 0. The only real boundary is
    # class 1's lower edge. The prediction fills the void band with class 1 and a class-0 notch:
    # all its extra edges touch void, so they are masked out and the score stays perfect.
    target = np.zeros((12, 12), np.uint8)
    target[:6, 7:] = 1
    target[:6, 5:7] = VOID
    prediction = np.where(target == VOID, 1, target).astype(np.uint8)
    prediction[2:4, 5:7] = 0
    assert boundary_f1(prediction, target, 2, VOID) == 1.0
    # Were void a class, its edges would count and the prediction (which never says void) would lose.
    assert boundary_f1(prediction, target, 12, None) < 1.0


def test_predicting_one_class_everywhere_scores_low() -> None:
    target = square()
    target[18:, :12] = 2
    assert boundary_f1(np.zeros_like(target), target, 3, VOID) == 0.0


def test_no_contour_is_nan_and_the_accumulator_averages_scored_images() -> None:
    flat = np.zeros((10, 10), np.uint8)
    assert math.isnan(boundary_f1(flat, flat, 2, VOID))
    assert math.isnan(boundary_f1(flat, np.full_like(flat, VOID), 2, VOID))
    accumulator = BoundaryF1(2, VOID, tolerance=2)
    assert math.isnan(accumulator.value)
    accumulator.update(flat, flat)  # not scored
    accumulator.update(square(), square())  # 1.0
    accumulator.update(np.stack([square(5)]), np.stack([square()]))  # a batch of one
    expected = (1.0 + reference_boundary_f1(square(5), square(), 2, VOID, 2)) / 2
    assert accumulator.images == 2
    assert accumulator.value == pytest.approx(expected)
