"""The inference path: one pass per image, a pixel budget for huge images, and out-of-memory fallbacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fcn_viewer.errors import DeviceError
from fcn_viewer.inference import Segmenter, configure_cuda, downscale, resolve_precision
from fcn_viewer.weights.loader import LoadedModel, load_weights_file
from tests.helpers import gradient_image, random_model, tiny_meta, tiny_paper_config


def test_images_over_the_budget_are_downscaled_and_the_user_told(tiny_weights: Path) -> None:
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu", max_pixels=40 * 30)
    result = segmenter.segment(gradient_image(120, 160))
    assert result.source_size == (120, 160)
    assert result.image_size == (30, 40) and result.mask().shape == (30, 40)
    assert "downscaled from 160×120 to 40×30" in result.notes[0]


def test_small_images_are_untouched(tiny_weights: Path) -> None:
    image = gradient_image(33, 47)
    result = Segmenter(load_weights_file(tiny_weights), "cpu").segment(image)
    assert result.notes == () and result.image is image and result.mask().shape == (33, 47)


def test_out_of_memory_retries_at_half_the_pixels(tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu")
    real = segmenter.model.forward_stages

    def limited(x: torch.Tensor):  # type: ignore[no-untyped-def]
        if x.shape[-2] * x.shape[-1] > 60 * 80 // 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(x)

    monkeypatch.setattr(segmenter.model, "forward_stages", limited)
    result = segmenter.segment(gradient_image(60, 80))
    assert result.image_size[0] * result.image_size[1] <= 60 * 80 // 2
    assert "out of cpu memory: ran at" in result.notes[0]


def test_out_of_memory_twice_falls_back_to_a_cpu_copy(tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu")
    segmenter.device = torch.device("meta")  # pretend the model lives on an accelerator that is full

    def full(x: torch.Tensor):  # type: ignore[no-untyped-def]
        raise torch.OutOfMemoryError("out of memory (simulated)")

    monkeypatch.setattr(segmenter.model, "forward_stages", full)
    result = segmenter.segment(gradient_image(20, 24))
    assert result.notes == ("out of meta memory: ran on the CPU",) and result.mask().shape == (20, 24)


def test_downscale_keeps_the_aspect_ratio() -> None:
    small = downscale(np.zeros((1000, 3000, 3), np.uint8), 30_000)
    assert small.shape == (100, 300, 3)


def test_a_batch_gives_each_image_what_it_gets_alone(tiny_weights: Path) -> None:
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu")
    images = [gradient_image(30, 44, seed) for seed in range(3)]
    batch = segmenter.segment_batch(images)
    assert len(batch) == 3
    for image, result in zip(images, batch):
        alone = segmenter.segment(image)
        assert result.image is image and result.outputs.logits().shape[0] == 1
        for name, tensor in alone.outputs.tensors.items():
            torch.testing.assert_close(result.outputs.tensors[name], tensor, rtol=1e-3, atol=1e-4)


def test_a_batch_of_mixed_sizes_is_refused(tiny_weights: Path) -> None:
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu")
    with pytest.raises(ValueError, match="images of one size"):
        segmenter.segment_batch([gradient_image(30, 44), gradient_image(44, 30)])


def test_a_batch_that_does_not_fit_is_split(tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    segmenter = Segmenter(load_weights_file(tiny_weights), "cpu")
    real = Segmenter._forward
    sizes: list[int] = []

    def two_at_most(self: Segmenter, batch: np.ndarray):  # type: ignore[no-untyped-def]
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("out of memory (simulated)")
        return real(self, batch)

    monkeypatch.setattr(Segmenter, "_forward", two_at_most)
    images = [gradient_image(20, 24, seed) for seed in range(5)]
    results = segmenter.segment_batch(images)
    assert sizes == [5, 2, 3, 1, 2]
    assert [result.image is image for result, image in zip(results, images)] == [True] * 5


def test_precision_auto_is_exact_fp32_off_cuda_and_fp16_needs_a_gpu() -> None:
    assert resolve_precision("auto", torch.device("cpu")) == torch.float32
    assert resolve_precision("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(DeviceError, match="fp16 needs a GPU"):
        resolve_precision("fp16", torch.device("cpu"))


def test_bf16_runs_a_copy_and_agrees_with_fp32() -> None:
    config = tiny_paper_config("fcn8s", 5)
    loaded = LoadedModel(random_model(config), tiny_meta(config), "test")
    image = gradient_image(40, 48)
    exact = Segmenter(loaded, "cpu").segment(image)
    fast = Segmenter(loaded, "cpu", precision="bf16")
    result = fast.segment(image)
    assert {p.dtype for p in fast.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}  # the loaded model is never cast
    assert result.outputs.logits().dtype == torch.float32
    for name, tensor in exact.outputs.tensors.items():
        scale = tensor.abs().max().item()
        torch.testing.assert_close(result.outputs.tensors[name], tensor, rtol=0, atol=0.05 * scale, msg=name)


def test_a_compiled_segmenter_gives_the_eager_result(tiny_weights: Path) -> None:
    loaded = load_weights_file(tiny_weights)
    image = gradient_image(24, 32)
    eager = Segmenter(loaded, "cpu").segment(image)
    compiled = Segmenter(loaded, "cpu", compile=True)
    for _ in range(2):  # the second call reuses the compiled graph
        result = compiled.segment(image)
        for name, tensor in eager.outputs.tensors.items():
            torch.testing.assert_close(result.outputs.tensors[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_exact_fp32_on_cuda_turns_tf32_off_and_bf16_never_turns_it_back_on() -> None:
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark
    try:
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark = True, True, False
        configure_cuda(torch.float32)
        configure_cuda(torch.bfloat16)
        assert (cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark) == (False, False, True)
    finally:
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark = saved


def test_each_stages_mask_is_its_argmax_computed_once(tiny_weights: Path) -> None:
    segmentation = Segmenter(load_weights_file(tiny_weights), "cpu").segment(gradient_image(40, 48))
    for stage in segmentation.stages:
        expected = segmentation.outputs.logits(stage)[0].argmax(0).to(torch.uint8).numpy()
        assert np.array_equal(segmentation.mask(stage), expected)
        assert segmentation.mask(stage) is segmentation.mask(stage)
    assert segmentation.mask() is segmentation.mask(segmentation.stages[-1])
