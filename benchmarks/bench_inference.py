"""Inference speed of the FCN stage pass: latency, throughput, memory, FLOPs, and the eager-fp32 baseline.

Prints numbers; it is not a pass/fail test. Examples:

    python benchmarks/bench_inference.py                        # CPU (and CUDA when present), both nets
    python benchmarks/bench_inference.py --device cpu --nets bundled --runs 30

"Optimised" is the app's own path (fcn_viewer.inference.Segmenter: BatchNorm folded, channels-last,
inference mode, every stage); on CUDA it also runs under bf16 autocast with cuDNN autotuning.
"Baseline" is the same network run the straightforward way, as pytorch-fcn does: eager fp32,
NCHW, `model(x)` for the final output only.
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch.utils.flop_counter import FlopCounterMode

from fcn_viewer.inference import Segmenter
from fcn_viewer.model import build_fcn, vgg16_config
from fcn_viewer.weights.loader import LoadedModel, load_entry
from fcn_viewer.weights.meta import CAFFE_PREPROCESSING, ModelMeta
from fcn_viewer.weights.registry import entry

# Dense bf16 tensor-core peaks (TFLOP/s) for the fraction-of-peak figure.
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "RTX 4090": 165.0}


def paper_fcn8s() -> LoadedModel:
    """The paper's VGG16 FCN-8s with random weights (speed does not depend on the values)."""
    config = vgg16_config("fcn8s", 21)
    meta = ModelMeta("vgg16-fcn8s", "paper FCN-8s (VGG16)", config, tuple(f"c{i}" for i in range(21)),
                     tuple((i, i, i) for i in range(21)), CAFFE_PREPROCESSING)
    return LoadedModel(build_fcn(config), meta, "random")


def bundled_fcn8s() -> LoadedModel:
    return load_entry(entry("camvid-fcn8s"))


def timed(run: Callable[[], object], device: torch.device, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - started)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench(loaded: LoadedModel, size: tuple[int, int], device: torch.device, batch: int, runs: int) -> None:
    height, width = size
    name = loaded.meta.title
    x = torch.randn(1, 3, height, width)
    xb = torch.randn(batch, 3, height, width)
    use_bf16 = device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats()

    segmenter = Segmenter(LoadedModel(copy.deepcopy(loaded.model), loaded.meta, loaded.source), device)
    fast = segmenter.model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else nullcontext()

    def optimised(inputs: torch.Tensor) -> Callable[[], object]:
        staged = inputs.to(device).contiguous(memory_format=torch.channels_last)

        def run() -> object:
            with torch.inference_mode(), autocast:
                return fast.forward_stages(staged)

        return run

    baseline_model = copy.deepcopy(loaded.model).to(device).eval()

    def baseline(inputs: torch.Tensor) -> Callable[[], object]:
        staged = inputs.to(device)

        def run() -> object:
            with torch.no_grad():
                return baseline_model(staged)

        return run

    warmup = 3 if device.type == "cpu" else 10
    latency = timed(optimised(x), device, runs, warmup)
    base_latency = timed(baseline(x), device, runs, warmup)
    throughput_runs = max(2, runs // 5)
    batch_time = statistics.median(timed(optimised(xb), device, throughput_runs, 1))
    base_batch_time = statistics.median(timed(baseline(xb), device, throughput_runs, 1))

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        fast.forward_stages(x.to(device).contiguous(memory_format=torch.channels_last))
    flops = counter.get_total_flops()
    if device.type == "cuda":
        memory = f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB GPU peak"
    else:
        memory = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB process peak RSS"

    p50, p95 = percentile(latency, 0.5) * 1e3, percentile(latency, 0.95) * 1e3
    b50 = percentile(base_latency, 0.5) * 1e3
    print(f"\n{name} · {height}×{width} · {device_name(device)}")
    print(f"  batch 1   optimised p50 {p50:8.1f} ms  p95 {p95:8.1f} ms   baseline p50 {b50:8.1f} ms"
          f"   speed-up ×{b50 / p50:.2f}")
    print(f"  batch {batch:<3} optimised {batch / batch_time:8.1f} img/s          baseline {batch / base_batch_time:8.1f} img/s"
          f"   speed-up ×{base_batch_time / batch_time:.2f}")
    print(f"  {flops / 1e9:.1f} GFLOP per image (all stages); {memory}")
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in device_name(device)), None)
    if peak is not None:
        achieved = flops * batch / batch_time / 1e12
        print(f"  batch {batch}: {achieved:.0f} TFLOP/s = {100 * achieved / peak:.1f} % of the {peak:.0f} TFLOP/s bf16 peak")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto = CPU, then CUDA too when available")
    parser.add_argument("--nets", choices=("all", "paper", "bundled"), default="all")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--batch", type=int, help="throughput batch (default 32 on CUDA, 4 on CPU)")
    args = parser.parse_args()
    devices = [torch.device("cpu")] if args.device in ("auto", "cpu") else []
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append(torch.device("cuda"))
    for device in devices:
        batch = args.batch or (32 if device.type == "cuda" else 4)
        if args.nets in ("all", "bundled"):
            bench(bundled_fcn8s(), (360, 480), device, batch, args.runs)
        if args.nets in ("all", "paper"):
            runs = args.runs if device.type == "cuda" else max(3, args.runs // 4)
            bench(paper_fcn8s(), (500, 500), device, batch, runs)


if __name__ == "__main__":
    main()
