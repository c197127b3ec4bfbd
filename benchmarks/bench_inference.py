"""Inference speed of the FCN stage pass: latency, throughput, memory, FLOPs, agreement, and the eager-fp32 baseline.

Prints numbers; it is not a pass/fail test. Examples:

    python benchmarks/bench_inference.py                        # CPU (and CUDA when present), both nets
    python benchmarks/bench_inference.py --device cpu --nets bundled --runs 30
    python benchmarks/bench_inference.py --device cuda --compile   # adds torch.compile + CUDA graphs

"Optimised" is the app's own path (fcn_viewer.inference.Segmenter: BatchNorm folded, channels-last,
inference mode, every stage; fc6/fc7 as matrix products on the CPU; on CUDA bf16 weights, cuDNN
autotuning, and with --compile torch.compile with CUDA graphs). "Baseline" is the same network run the
straightforward way, as pytorch-fcn does: eager fp32, NCHW, `model(x)` for the final output only,
PyTorch's default backend settings. The two are timed alternately, run by run, so a noisy machine
slows both alike. Inputs are CamVid photos when ../shared/data/camvid is there (random noise otherwise);
"agreement" is the share of pixels whose argmax class is the same in both paths.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from fcn_viewer.classes import CAMVID_CLASSES, CAMVID_PALETTE
from fcn_viewer.imageio import list_images
from fcn_viewer.inference import Segmenter
from fcn_viewer.model import build_fcn, vgg16_config
from fcn_viewer.options import PRECISIONS, Precision
from fcn_viewer.train.config import TrainConfig
from fcn_viewer.weights.loader import LoadedModel, RegistrySource, load_model
from fcn_viewer.weights.meta import CAFFE_PREPROCESSING, ModelMeta, Preprocessing
from fcn_viewer.weights.registry import entry

# Dense bf16 tensor-core peaks (TFLOP/s) for the fraction-of-peak figure.
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "RTX 4090": 165.0}
_ROOT = Path(__file__).resolve().parents[1]
CAMVID_FOLDERS = (_ROOT.parent / "shared" / "data" / "camvid" / "val", _ROOT / "data" / "camvid" / "val")


def paper_fcn8s() -> LoadedModel:
    """The paper's VGG16 FCN-8s with random weights (speed does not depend on the values)."""
    config = vgg16_config("fcn8s", 21)
    meta = ModelMeta("vgg16-fcn8s", "paper FCN-8s (VGG16)", config, tuple(f"c{i}" for i in range(21)),
                     tuple((i, i, i) for i in range(21)), CAFFE_PREPROCESSING)
    return LoadedModel(build_fcn(config), meta, "random")


def bundled_fcn8s() -> LoadedModel:
    return load_model(RegistrySource(entry("camvid-fcn8s")))


def recipe_fcn8s() -> LoadedModel:
    """The bundled family's recipe (``fcn-viewer train`` defaults) with random weights: its speed before training."""
    config = TrainConfig(data=Path("."), out=Path(".")).fcn_config()
    meta = ModelMeta("recipe-fcn8s", "recipe FCN-8s (compact, paper geometry)", config, CAMVID_CLASSES,
                     CAMVID_PALETTE, Preprocessing())
    return LoadedModel(build_fcn(config), meta, "random")


def timed_alternately(
    runs: dict[str, Callable[[], object]], device: torch.device, repeats: int, warmup: int, warm: bool = False
) -> dict[str, list[float]]:
    """Seconds per call of each function, calling them in turn so that machine noise hits all alike, in a new order
    each round (seeded): a call right after one of the same net finds its weights still in the cache, which had
    flattered whichever function a fixed order placed second (8 ms of a 46 ms pass). With ``warm``, every timed call
    follows an untimed one of the same function: each net as when it segments image after image."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    order = random.Random(0)
    for _ in range(repeats):
        for name in order.sample(list(runs), len(runs)):
            run = runs[name]
            if warm:
                run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            samples[name].append(time.perf_counter() - started)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def pytorch_defaults(device: torch.device) -> Iterator[None]:
    """PyTorch's out-of-the-box CUDA settings (no cuDNN autotuning, TF32 convolutions) for the baseline."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32 = False, True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32 = saved


def photos(size: tuple[int, int], count: int) -> np.ndarray:
    """``count`` CamVid photos resized to ``size`` (H, W) as N×H×W×3 uint8; seeded noise without the data."""
    folder = next((f for f in CAMVID_FOLDERS if f.is_dir()), None)
    paths = list_images(folder)[:count] if folder else []
    if len(paths) < count:
        return np.random.default_rng(0).integers(0, 256, (count, *size, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize(size[::-1], Image.Resampling.BILINEAR))
                     for p in paths])


def bench(loaded: LoadedModel, size: tuple[int, int], device: torch.device, batch: int, runs: int,
          precision: Precision, compile: bool) -> dict[str, object]:
    """Times one net, prints its figures and returns them (for ``--json``)."""
    height, width = size
    name = loaded.meta.title
    images = photos(size, batch)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    segmenter = Segmenter(LoadedModel(copy.deepcopy(loaded.model), loaded.meta, loaded.source), device,
                          precision=precision, compile=compile)
    x, xb = segmenter.network_input(images[:1]), segmenter.network_input(images)
    baseline_model = copy.deepcopy(loaded.model).to(device).eval()
    preprocessing = loaded.meta.preprocessing
    x_plain, xb_plain = (preprocessing.from_uint8(torch.from_numpy(a)).contiguous().to(device) for a in (images[:1], images))

    def baseline(inputs: torch.Tensor) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.no_grad(), pytorch_defaults(device):
                return baseline_model(inputs)
        return run

    with torch.inference_mode():
        optimised_classes = segmenter.run_stages(xb).logits().argmax(1)
    agreement = (optimised_classes == baseline(xb_plain)().argmax(1)).float().mean().item()

    warmup = 2 if device.type == "cpu" else 10
    latency = timed_alternately({"optimised": lambda: segmenter.run_stages(x), "baseline": baseline(x_plain)},
                                device, runs, warmup)
    throughput_runs = max(2, runs // 5)
    batch_times = timed_alternately({"optimised": lambda: segmenter.run_stages(xb), "baseline": baseline(xb_plain)},
                                    device, throughput_runs, 1)
    batch_time, base_batch_time = (statistics.median(batch_times[k]) for k in ("optimised", "baseline"))

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        segmenter.model.forward_stages(x)
    flops = counter.get_total_flops()
    if device.type == "cuda":
        memory = f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB GPU peak"
    else:
        memory = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB process peak RSS"

    p50, p95 = (percentile(latency["optimised"], q) * 1e3 for q in (0.5, 0.95))
    b50 = percentile(latency["baseline"], 0.5) * 1e3
    dtype = str(segmenter.dtype).removeprefix("torch.")
    print(f"\n{name} · {height}×{width} · {device_name(device)} · {dtype}{' · compiled' if compile else ''}")
    print(f"  batch 1   optimised p50 {p50:8.1f} ms  p95 {p95:8.1f} ms   baseline p50 {b50:8.1f} ms"
          f"   speed-up ×{b50 / p50:.2f}")
    print(f"  batch {batch:<3} optimised {batch / batch_time:8.1f} img/s          baseline {batch / base_batch_time:8.1f} img/s"
          f"   speed-up ×{base_batch_time / batch_time:.2f}")
    print(f"  argmax agreement with the fp32 baseline: {100 * agreement:.2f} % of the pixels of {batch} images")
    print(f"  {flops / 1e9:.1f} GFLOP per image (all stages); {memory}")
    figures: dict[str, object] = {
        "net": name, "size": [height, width], "device": device_name(device), "dtype": dtype, "compiled": compile,
        "batch1_p50_ms": p50, "batch1_p95_ms": p95, "baseline_batch1_p50_ms": b50, "speedup_batch1": b50 / p50,
        "batch": batch, "images_per_s": batch / batch_time, "baseline_images_per_s": batch / base_batch_time,
        "argmax_agreement_with_fp32_baseline": agreement, "gflop_per_image": flops / 1e9, "memory": memory,
    }
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in device_name(device)), None)
    if peak is not None:
        achieved = flops * batch / batch_time / 1e12
        print(f"  batch {batch}: {achieved:.0f} TFLOP/s = {100 * achieved / peak:.1f} % of the {peak:.0f} TFLOP/s bf16 peak")
        figures |= {"tflops_batch": achieved, "share_of_bf16_peak": achieved / peak}
    return figures


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto = CPU, then CUDA too when available")
    parser.add_argument("--nets", choices=("all", "paper", "bundled", "recipe"), default="all",
                        help="recipe = the bundled recipe with random weights (its speed before it is trained)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--batch", type=int, help="throughput batch (default 32 on CUDA, 4 on CPU)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="auto = bf16 on CUDA, fp32 on the CPU")
    parser.add_argument("--compile", action="store_true", help="torch.compile the pass (CUDA graphs on CUDA)")
    parser.add_argument("--size", type=_size, help="HxW for both nets (default 360x480 bundled, 500x500 paper)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    devices = [torch.device("cpu")] if args.device in ("auto", "cpu") else []
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append(torch.device("cuda"))
    for device in devices:
        batch = args.batch or (32 if device.type == "cuda" else 4)
        if args.nets in ("all", "bundled"):
            results.append(bench(bundled_fcn8s(), args.size or (360, 480), device, batch, args.runs, args.precision,
                                 args.compile))
        if args.nets == "recipe":
            results.append(bench(recipe_fcn8s(), args.size or (360, 480), device, batch, args.runs, args.precision,
                                 args.compile))
        if args.nets in ("all", "paper"):
            runs = args.runs if device.type == "cuda" else max(5, args.runs // 2)
            results.append(bench(paper_fcn8s(), args.size or (500, 500), device, batch, runs, args.precision,
                                 args.compile))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


if __name__ == "__main__":
    main()
