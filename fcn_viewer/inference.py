"""Runs a loaded FCN on an image: the one path image → tensor → stage scores → masks."""

from __future__ import annotations

import copy
import gc
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from PIL import Image

from fcn_viewer.bf16 import cpu_has_native_bf16
from fcn_viewer.errors import DeviceError
from fcn_viewer.model.fcn import FCN
from fcn_viewer.model.fold import fold_batchnorm
from fcn_viewer.model.outputs import Deconvolution, FCNOutputs
from fcn_viewer.model.padding_skip import skip_padding
from fcn_viewer.model.sliding_linear import fc_layers_as_matmul
from fcn_viewer.model.upsample import with_separable_bilinear
from fcn_viewer.options import Precision
from fcn_viewer.render import mask_dtype
from fcn_viewer.weights.loader import LoadedModel
from fcn_viewer.weights.meta import ModelMeta

# Larger images are downscaled before inference: 4 MP (e.g. 2300×1730) keeps the paper's
# VGG16 FCN-8s within a few GB of memory.
DEFAULT_MAX_PIXELS = 4_000_000


def device_available(choice: str) -> bool:
    """Whether this machine has the device 'cuda' or 'mps' (the CPU and 'auto' always are)."""
    if choice == "cuda":
        return torch.cuda.is_available()
    if choice == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return True


def resolve_device(choice: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; 'cuda'/'cpu'/'mps' are taken as asked.

    Raises DeviceError when the device asked for is not on this machine.
    """
    if choice == "auto":
        return next(torch.device(kind) for kind in ("cuda", "mps", "cpu") if device_available(kind))
    if not device_available(choice):
        raise DeviceError(f"{choice.upper()} was asked for, but this machine has no {choice.upper()} device")
    return torch.device(choice)


@dataclass
class Segmentation:
    """All stages of one image, on the CPU as float32, with the per-stage masks derived from them.

    ``image`` is the picture the network saw: the opened image, or a downscaled copy when the
    original was over the pixel budget or the device ran out of memory (``notes`` says so).
    """

    outputs: FCNOutputs
    image: np.ndarray
    source_size: tuple[int, int]
    notes: tuple[str, ...] = ()
    _masks: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.image.shape[0], self.image.shape[1])

    @property
    def stages(self) -> tuple[str, ...]:
        return self.outputs.stages

    def mask(self, stage: str | None = None) -> np.ndarray:
        """H×W argmax classes of ``stage`` (default: the finest stage): uint8, or uint16 past 256 classes.
        Computed once per stage (the same array on every call: treat it as read-only)."""
        key = stage or self.stages[-1]
        if key not in self._masks:
            logits = self.outputs.logits(key)[0]
            # max's indices are argmax's (the first class of a tie), in two thirds of its time on channels-last scores
            classes = logits.max(0).indices
            if logits.shape[0] <= 256:
                self._masks[key] = classes.to(torch.uint8).numpy()
            else:
                self._masks[key] = classes.to(torch.int32).numpy().astype(mask_dtype(logits.shape[0]))
        return self._masks[key]

    def confidence(self, stage: str | None = None) -> np.ndarray:
        """H×W float32 max softmax probability of ``stage``."""
        return torch.softmax(self.outputs.logits(stage)[0], dim=0).amax(0).numpy()

    def arrays(self) -> dict[str, np.ndarray]:
        """Every stage tensor as float32 C×h×w, named as in the network."""
        return self.outputs.numpy(0)


_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
# Auto precision runs a net in bf16 on a CPU only where, on a dataset, at least this share of pixels keeps exact
# fp32's class in every stage (issue 24), and where bf16 is faster than fp32 on this machine by this factor.
BF16_MIN_AGREEMENT = 0.995
BF16_MIN_SPEEDUP = 1.1
PROBE_SIZE = (240, 320)  # (H, W) of the speed probe's input: under half of 480×360's cost per pass
CPU_BF16_ENV = "FCN_VIEWER_CPU_BF16"  # "off": auto keeps fp32 on every CPU (reproducible runs; the tests set it)


def resolve_precision(choice: Precision, device: torch.device) -> torch.dtype:
    """'auto' is bf16 on CUDA (fp16 where the GPU has no bf16) and exact fp32 elsewhere (see
    :func:`choose_precision` for the CPU's bf16, which depends on the net).

    Raises DeviceError for fp16 on the CPU, which has no fast fp16 convolutions.
    """
    if choice == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if choice == "fp16" and device.type == "cpu":
        raise DeviceError("fp16 needs a GPU; on the CPU use fp32 or bf16")
    return _DTYPES[choice]


def choose_precision(choice: Precision, device: torch.device, loaded: LoadedModel) -> tuple[torch.dtype, str]:
    """The dtype ``loaded`` runs at on ``device``, and why in words (the viewer's info panel shows it).

    'auto' on the CPU is bf16 only where the CPU computes bf16 natively (:func:`cpu_has_native_bf16`), bf16's argmax
    agreement with fp32 was measured for this very file at ≥ :data:`BF16_MIN_AGREEMENT`
    (``LoadedModel.bf16_agreement``), and a short probe found bf16 at least :data:`BF16_MIN_SPEEDUP`× faster here;
    exact fp32 otherwise, and always where ``$FCN_VIEWER_CPU_BF16`` is ``off``. Any other choice is taken as asked (:func:`resolve_precision`).
    """
    dtype = resolve_precision(choice, device)
    name = _NAMES[dtype]
    if choice != "auto":
        return dtype, f"{name} (chosen{', exact' if dtype == torch.float32 else ''})"
    if device.type != "cpu":
        return dtype, f"{name} (auto{', exact' if dtype == torch.float32 else ''})"
    agreement = loaded.bf16_agreement
    if os.environ.get(CPU_BF16_ENV) == "off":
        return torch.float32, f"fp32 (auto: CPU bf16 turned off by {CPU_BF16_ENV}=off)"
    if not cpu_has_native_bf16():
        return torch.float32, "fp32 (auto: this CPU has no native bf16)"
    if agreement is None:
        return torch.float32, "fp32 (auto: bf16 was not checked against fp32 for this net)"
    if agreement < BF16_MIN_AGREEMENT:
        return torch.float32, f"fp32 (auto: bf16 keeps fp32's class on only {100 * agreement:.2f} % of pixels)"
    fp32_s, bf16_s = bf16_probe(loaded)
    timings = f"{1e3 * bf16_s:.0f} against {1e3 * fp32_s:.0f} ms at {PROBE_SIZE[1]}×{PROBE_SIZE[0]}"
    if bf16_s * BF16_MIN_SPEEDUP > fp32_s:
        return torch.float32, f"fp32 (auto: bf16 is not faster on this CPU, {timings})"
    return torch.bfloat16, f"bf16 (auto: {100 * agreement:.2f} % of pixels as in fp32; {timings})"


_probe_lock = threading.Lock()
_probes: dict[tuple[str, str], tuple[float, float]] = {}


def bf16_probe(loaded: LoadedModel, rounds: int = 3) -> tuple[float, float]:
    """Seconds of one CPU pass in fp32 and in bf16 (the better of ``rounds``, alternated, after a warm-up) on a
    :data:`PROBE_SIZE` input; measured once per net and process (a few hundred ms for the bundled nets)."""
    key = (loaded.source, loaded.meta.name)
    with _probe_lock:
        if key not in _probes:
            cpu = torch.device("cpu")
            pixels = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, *PROBE_SIZE, 3), dtype=np.uint8))
            nets = {dtype: (prepare_model(loaded.model, cpu, dtype), loaded.meta.preprocessing.from_uint8(pixels, dtype))
                    for dtype in (torch.float32, torch.bfloat16)}
            best = {dtype: math.inf for dtype in nets}
            with torch.inference_mode():
                for net, x in nets.values():
                    net.forward_stages(x)
                for _ in range(rounds):
                    for dtype, (net, x) in nets.items():
                        started = time.perf_counter()
                        net.forward_stages(x)
                        best[dtype] = min(best[dtype], time.perf_counter() - started)
            _probes[key] = (best[torch.float32], best[torch.bfloat16])
        return _probes[key]


def configure_cuda(dtype: torch.dtype) -> None:
    """cuDNN autotuning on; for fp32, TF32 off, so 'fp32' means exact fp32.

    The switches are process-wide and never turned back on: bf16 and fp16 nets do not use TF32, so a
    bf16 segmenter made later (say, for the viewer's comparison) cannot make an fp32 one inexact.
    """
    torch.backends.cudnn.benchmark = True
    if dtype == torch.float32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


class Segmenter:
    """Keeps one model on one device, at one precision, and segments images with it.

    The net runs with BatchNorm folded into its convolutions, in channels-last memory layout, under
    ``torch.inference_mode``; on the CPU as :func:`prepare_model` says (fc6/fc7 and the fixed bilinear upsampling as
    matrix products, the paper nets' conv blocks skipping their constant padding); on CUDA in bf16 by default, on a
    CPU in bf16 where :func:`choose_precision` finds it agreeing and faster (``precision="fp32"`` is exact), with
    cuDNN autotuning and pinned, non-blocking copies.
    ``precision_note`` says which precision runs and why.
    ``compile=True`` compiles the pass with torch.compile, once per input size (CUDA graphs on
    CUDA): worth it for many images of one size, not for a viewer opening photos of every size.
    The loaded model is never moved or cast: on the CPU in fp32 the segmenter shares its weights,
    elsewhere it runs a copy.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: str | torch.device = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        precision: Precision = "auto",
        compile: bool = False,
    ) -> None:
        self.loaded = loaded
        self.max_pixels = max_pixels
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.precision = precision
        self.dtype, self.precision_note = choose_precision(precision, self.device, loaded)
        self.compiled = compile
        if self.device.type == "cuda":
            configure_cuda(self.dtype)
        self.model = prepare_model(loaded.model, self.device, self.dtype)
        self._run = self._compiled_pass() if compile else None
        self._cpu_fallback: Segmenter | None = None

    @property
    def meta(self) -> ModelMeta:
        return self.loaded.meta

    def moved_to(self, device: torch.device, precision: Precision | None = None) -> Segmenter:
        """A segmenter of the same model and compile setting on ``device``, at ``precision`` (default: this
        one's). If making it fails (e.g. out of memory), this one is untouched and still works."""
        return Segmenter(self.loaded, device, self.max_pixels, precision or self.precision, self.compiled)

    def segment(self, image: np.ndarray) -> Segmentation:
        """Runs every stage of the net on an H×W×3 uint8 RGB image in one forward pass.

        Images over ``max_pixels`` are downscaled first. If the GPU runs out of memory the pass is
        retried at half the pixels, then on the CPU; each fallback is recorded in ``notes``.
        """
        source_size = (image.shape[0], image.shape[1])
        image, notes = self._within_budget(image)
        try:
            outputs = self._forward(image[None])
        except torch.OutOfMemoryError:
            release_device_memory()
            smaller = downscale(image, image.shape[0] * image.shape[1] // 2)
            try:
                outputs, image = self._forward(smaller[None]), smaller
                notes.append(f"out of {self.device.type} memory: ran at {image.shape[1]}×{image.shape[0]}")
            except torch.OutOfMemoryError:
                release_device_memory()
                outputs = self._on_cpu()._forward(image[None])
                notes.append(f"out of {self.device.type} memory: ran on the CPU")
        return with_finite_check(Segmentation(outputs=outputs, image=image, source_size=source_size, notes=tuple(notes)))

    def segment_batch(self, images: Sequence[np.ndarray]) -> list[Segmentation]:
        """:meth:`segment` for images of one size, in one forward pass; a batch that does not fit in
        memory is split in halves (down to single images, which fall back as :meth:`segment` does)."""
        if len({image.shape for image in images}) > 1:
            raise ValueError("a batch holds images of one size; group them first (fcn_viewer.batching)")
        if len(images) <= 1:
            return [self.segment(image) for image in images]
        source_size = (images[0].shape[0], images[0].shape[1])
        prepared = [self._within_budget(image) for image in images]
        try:
            outputs = self._forward(np.stack([image for image, _ in prepared]))
        except torch.OutOfMemoryError:
            release_device_memory()
            half = len(images) // 2
            return self.segment_batch(images[:half]) + self.segment_batch(images[half:])
        return [
            with_finite_check(Segmentation(outputs.sample(index), image, source_size, tuple(notes)))
            for index, (image, notes) in enumerate(prepared)
        ]

    def _within_budget(self, image: np.ndarray) -> tuple[np.ndarray, list[str]]:
        height, width = image.shape[:2]
        if height * width <= self.max_pixels:
            return image, []
        small = downscale(image, self.max_pixels)
        return small, [f"downscaled from {width}×{height} to {small.shape[1]}×{small.shape[0]} "
                       f"to stay within {self.max_pixels / 1e6:g} MP"]

    def _on_cpu(self) -> Segmenter:
        if self._cpu_fallback is None:
            self._cpu_fallback = Segmenter(self.loaded, "cpu", self.max_pixels)
        return self._cpu_fallback

    def _compiled_pass(self) -> Callable[[torch.Tensor], FCNOutputs]:
        mode = "reduce-overhead" if self.device.type == "cuda" else None  # reduce-overhead = CUDA graphs
        return torch.compile(self.model.forward_stages, mode=mode, dynamic=False)

    def network_input(self, batch: np.ndarray) -> torch.Tensor:
        """N×H×W×3 uint8 → the net's input on its device. Pixels travel as uint8 (a quarter of the bytes
        of float32) through pinned memory, without blocking, and are normalised on the device."""
        pixels = torch.from_numpy(np.require(batch, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"]))
        cuda = self.device.type == "cuda"
        if cuda:
            pixels = pixels.pin_memory()
        return self.meta.preprocessing.from_uint8(pixels.to(self.device, non_blocking=cuda), self.dtype)

    @torch.inference_mode()
    def run_stages(self, x: torch.Tensor) -> FCNOutputs:
        """The one forward pass on a prepared input (see :meth:`network_input`); outputs stay on the device."""
        return self._run(x) if self._run is not None else self.model.forward_stages(x)

    def _forward(self, batch: np.ndarray) -> FCNOutputs:
        """N×H×W×3 uint8 → every stage, as float32 on the CPU."""
        with torch.inference_mode():
            return to_host(self.run_stages(self.network_input(batch)))


def prepare_model(model: FCN, device: torch.device, dtype: torch.dtype) -> FCN:
    """The net ``Segmenter`` runs: eval, BatchNorm folded, on ``device`` at ``dtype``, channels-last, and
    on the CPU with fc6/fc7 as matrix products, the fixed bilinear upsampling as two small ones per channel, and
    blocks 1–5 skipping the constant padding of the paper nets. ``model`` itself is changed at most in memory layout."""
    model.eval()
    shared = device.type == "cpu" and dtype == torch.float32 and not model.config.batch_norm
    net = model if shared else fold_batchnorm(copy.deepcopy(model))
    net = net.to(device, dtype).to(memory_format=torch.channels_last)
    return skip_padding(fc_layers_as_matmul(with_separable_bilinear(net))) if device.type == "cpu" else net


def to_host(outputs: FCNOutputs) -> FCNOutputs:
    """Every tensor as float32 on the CPU; from a GPU through pinned buffers with one synchronisation."""
    first = next(iter(outputs.tensors.values()))
    if first.device.type != "cuda":
        return outputs.to("cpu", torch.float32)
    on_device = {name: tensor.float() for name, tensor in outputs.tensors.items()}  # alive until the sync
    host = {name: torch.empty(t.shape, dtype=torch.float32, pin_memory=True) for name, t in on_device.items()}
    for name, tensor in on_device.items():
        host[name].copy_(tensor, non_blocking=True)
    torch.cuda.current_stream(first.device).synchronize()
    layers = {name: Deconvolution(layer.weight.float().cpu(), layer.stride, layer.padding)
              for name, layer in outputs.deconvolutions.items()}
    return FCNOutputs(outputs.input_size, outputs.stages, host, outputs.crops, dict(outputs.upsampling), layers)


def with_finite_check(segmentation: Segmentation) -> Segmentation:
    """``segmentation`` with a note when a stage's scores hold NaN or infinity (damaged weights or an
    overflow in reduced precision): its mask is then meaningless, and says so instead of silently.

    A NaN or an infinity makes the stage's sum non-finite: one reduction, without isfinite's H×W×C boolean map (a
    tenth of the time). Only finite scores summing past 3.4e38 could be noted wrongly; no net's logits do."""
    broken = [stage for stage in segmentation.stages
              if not math.isfinite(float(segmentation.outputs.logits(stage).sum()))]
    if not broken:
        return segmentation
    note = f"the network gave NaN or infinite scores ({', '.join(broken)} stage): the mask is not meaningful"
    return replace(segmentation, notes=(*segmentation.notes, note))


def downscale(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Resizes ``image`` (antialiased) to at most ``max_pixels``, keeping its aspect ratio."""
    height, width = image.shape[:2]
    factor = math.sqrt(max_pixels / (height * width))
    size = (max(1, int(width * factor)), max(1, int(height * factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def release_device_memory() -> None:
    """Returns cached GPU blocks to the driver (after an out-of-memory error or a model change).

    The full garbage collection first (tensors held in reference cycles) runs only where there is a GPU
    cache to empty: it holds the GIL for ~100 ms, which stalls the viewer's window.
    """
    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()
