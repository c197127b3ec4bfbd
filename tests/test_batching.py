"""Batch runs: decoding on worker processes, batches of one size, and the same numbers as one image at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fcn_viewer.batching import Decoded, Failed, decode_ahead, group_by_size, load_batches
from fcn_viewer.cli import segment
from fcn_viewer.cli.main import main
from fcn_viewer.data.folder import SegmentationFolder
from fcn_viewer.errors import ImageLoadError
from fcn_viewer.evaluation import EvaluatedModel, ImageScores, evaluate_models
from fcn_viewer.imageio import load_image
from fcn_viewer.inference import Segmentation, Segmenter
from fcn_viewer.weights.loader import load_weights_file
from tests.helpers import gradient_image
from tests.test_evaluate import make_dataset

SIZES = [(20, 30), (24, 24), (20, 30), (16, 40), (24, 24), (20, 30), (16, 40), (20, 30), (12, 12), (20, 30),
         (24, 24), (16, 40), (30, 20), (20, 30), (12, 12), (24, 24), (20, 30)]


def test_grouping_gives_batches_of_one_size_each_item_once_within_the_memory_bound() -> None:
    batch_size = 3
    taken: list[int] = []  # how many items the grouping had taken when it gave each batch

    sizes = [(8 + index % 5, 8) for index in range(17)] + SIZES  # five sizes in turn, then a mix

    def items() -> Iterator[Decoded[np.ndarray] | Failed]:
        for index, size in enumerate(sizes):
            taken.append(index)
            yield Failed(index, f"item {index}: broken") if index == 6 else Decoded(index, np.zeros(size), 0.0)

    seen: list[int] = []
    early = False
    for batch in group_by_size(items(), lambda image: image.shape, batch_size):
        if isinstance(batch, Failed):
            assert batch.index == 6 and batch.error == "item 6: broken"
            seen.append(batch.index)
            continue
        seen.extend(item.index for item in batch)
        assert 1 <= len(batch) <= batch_size
        assert len({item.value.shape for item in batch}) == 1
        assert len(taken) - len(seen) <= 2 * batch_size  # items taken in but not given out yet
        early |= len(batch) < batch_size and len(taken) < len(sizes)
    assert sorted(seen) == list(range(len(sizes)))
    assert early  # the bound sent a part-filled batch before the end


def _write_images(folder: Path, sizes: list[tuple[int, int]]) -> list[Path]:
    folder.mkdir()
    paths = []
    for index, (height, width) in enumerate(sizes):
        paths.append(folder / f"image{index:02d}.png")
        Image.fromarray(gradient_image(height, width, seed=index)).save(paths[-1])
    return paths


def test_a_broken_file_is_named_and_the_others_are_decoded_by_the_workers(tmp_path: Path) -> None:
    paths = _write_images(tmp_path / "images", SIZES[:7])
    broken = tmp_path / "images" / "broken.png"
    broken.write_bytes(b"not a png")
    paths.insert(3, broken)
    batches = list(load_batches(paths, load_image, lambda image: image.shape[:2], 2, workers=2))
    failures = [batch for batch in batches if isinstance(batch, Failed)]
    assert [(failure.index, failure.error.split(":")[0]) for failure in failures] == [(3, str(broken))]
    assert "not an image" in failures[0].error
    decoded = [item for batch in batches if not isinstance(batch, Failed) for item in batch]
    assert sorted(item.index for item in decoded) == [index for index in range(len(paths)) if index != 3]
    for item in decoded:
        np.testing.assert_array_equal(item.value, load_image(paths[item.index]))


def _count_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every batch segmenters are given from now on."""
    lengths: list[int] = []
    segment_batch = Segmenter.segment_batch

    def counted(self: Segmenter, images: Sequence[np.ndarray]) -> list[Segmentation]:
        lengths.append(len(images))
        return segment_batch(self, images)

    monkeypatch.setattr(Segmenter, "segment_batch", counted)
    return lengths


def test_segment_in_batches_writes_the_masks_of_one_image_at_a_time(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_images(tmp_path / "images", SIZES[:9])  # 4 images of 20×30, 2 of 24×24, 2 of 16×40, 1 of 12×12
    outputs = {}
    for name, options, batches in (("single", ["--batch-size", "1", "--workers", "0"], [1] * 9),
                                   ("batched", ["--batch-size", "4", "--workers", "2"], [1, 2, 2, 4])):
        lengths = _count_batches(monkeypatch)
        argv = ["segment", str(tmp_path / "images"), "--weights", str(tiny_weights), "--out", str(tmp_path / name)]
        assert main([*argv, "--device", "cpu", *options]) == 0
        assert sorted(lengths) == batches
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
        assert sorted(int(line[1:].split("/")[0]) for line in lines) == list(range(1, 10))
        outputs[name] = sorted(path.name for path in (tmp_path / name).iterdir())
    assert outputs["single"] == outputs["batched"] and len(outputs["single"]) == 18
    for mask in (tmp_path / "single").glob("*_mask.png"):
        single, batched = Image.open(mask), Image.open(tmp_path / "batched" / mask.name)
        assert np.array_equal(np.asarray(single), np.asarray(batched)), mask.name
        assert single.getpalette() == batched.getpalette()


def test_evaluate_in_batches_gives_the_numbers_of_one_image_at_a_time(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_dataset(tmp_path / "camvid", count=5)
    for index, (height, width) in enumerate([(32, 48), (24, 40)]):  # two more images of other sizes
        Image.fromarray(gradient_image(height, width, seed=9 + index)).save(data / "val" / f"other{index}.png")
        label = np.random.default_rng(index).integers(0, 12, (height, width)).astype(np.uint8)
        Image.fromarray(label, mode="L").save(data / "valannot" / f"other{index}.png")
    dataset = SegmentationFolder(data, "val")
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu")
    model = EvaluatedModel("tiny", segmenter, ("32s", "16s", "8s"))
    alone: list[ImageScores] = []
    single = evaluate_models([model], dataset, image_scores=alone.append).summaries()["tiny"]
    seen: list[ImageScores] = []
    progress: list[int] = []
    lengths = _count_batches(monkeypatch)
    evaluation = evaluate_models([model], dataset, image_scores=seen.append,
                                 progress=lambda step: progress.append(step.index), batch_size=3, workers=2)
    assert evaluation.images == 7 and not evaluation.failures and not evaluation.cancelled
    assert sorted(lengths) == [1, 1, 2, 3]  # five frames of 40×56 and two images of other sizes
    assert sorted(scores.index for scores in seen) == list(range(7))
    for scores in seen:
        assert scores.path == dataset.samples[scores.index].image_path
        assert _numbers(scores.summaries) == pytest.approx(_numbers(alone[scores.index].summaries), nan_ok=True)
    assert progress == list(range(1, 8))
    assert _numbers(evaluation.summaries()["tiny"]) == pytest.approx(_numbers(single), nan_ok=True)


def _numbers(summaries: dict[str, Any] | list[float] | float) -> list[float]:
    """Every number of nested summaries, in order."""
    if isinstance(summaries, dict):
        return [number for key in sorted(summaries) for number in _numbers(summaries[key])]
    return [float(n) for n in summaries] if isinstance(summaries, list) else [float(summaries)]


def test_a_failed_write_is_named_and_the_other_images_are_written(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_images(tmp_path / "images", SIZES[:4])
    write_outputs = segment.write_outputs

    def failing(out: Path, stem: str, *rest: Any) -> None:
        if stem == "image02":
            raise OSError(5, "Input/output error")  # a full disk stops the run instead (test_hostile_outputs)
        write_outputs(out, stem, *rest)

    monkeypatch.setattr(segment, "write_outputs", failing)
    argv = ["segment", str(tmp_path / "images"), "--weights", str(tiny_weights), "--out", str(tmp_path / "out")]
    assert main([*argv, "--device", "cpu", "--batch-size", "2", "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'images' / 'image02.png'}: writing its outputs failed" in err
    assert "Input/output error" in err and "1 of 4 image(s) failed" in err
    written = sorted(path.name for path in (tmp_path / "out").glob("*_mask.png"))
    assert written == ["image00_mask.png", "image01_mask.png", "image03_mask.png"]


def test_without_workers_images_decode_in_order_on_one_thread_a_bounded_number_ahead() -> None:
    consumed: list[int] = []
    decoded: list[tuple[int, str, int]] = []  # (source, thread, how many the consumer had taken by then)

    def decode(source: int) -> int:
        decoded.append((source, threading.current_thread().name, len(consumed)))
        if source == 3:
            raise ImageLoadError(f"image {source}: broken")
        return source * 10

    for item in decode_ahead(range(8), decode, ahead=2):
        consumed.append(item.index)
        time.sleep(0.01)  # the network's turn: the thread decodes meanwhile
        if isinstance(item, Decoded):
            assert item.value == item.index * 10
        else:
            assert item.error == "image 3: broken"
    assert consumed == list(range(8))
    assert {thread for _, thread, _ in decoded} == {"fcn-viewer decode"}
    assert all(source - taken <= 3 for source, _, taken in decoded)  # ≤ 2 queued + 1 in hand


def test_a_bug_while_decoding_reaches_the_consumer_and_stopping_early_stops_the_thread() -> None:
    def decode(source: int) -> int:
        if source == 2:
            raise ZeroDivisionError("a bug")
        return source

    items = decode_ahead(range(5), decode, ahead=1)
    assert [next(items).index, next(items).index] == [0, 1]
    with pytest.raises(ZeroDivisionError):
        next(items)
    stopped = decode_ahead(range(100), lambda source: source, ahead=1)
    next(stopped)
    stopped.close()
    assert not any(thread.name == "fcn-viewer decode" for thread in threading.enumerate())
