"""Issue 19's speed target: the CPU viewer's FCN-8s, every stage at 480×360, within 2× torchvision's LR-ASPP MobileNetV3.

Prints numbers and the ratio; it is not a pass/fail test. Needs torchvision, a benchmark-only extra
(`pip install -e '.[bench]'`); the app itself never imports it. Examples:

    python benchmarks/bench_vs_lraspp.py                        # bundled camvid-fcn8s, 20 runs
    python benchmarks/bench_vs_lraspp.py --runs 50 --json lraspp.json
    python benchmarks/bench_vs_lraspp.py --model runs/x/camvid-fcn8s.safetensors
    python benchmarks/bench_vs_lraspp.py --model recipe         # the training recipe's net, random weights

Everything runs on the CPU, batch 1, on one 480×360 photo (a CamVid val photo when the data is there,
seeded noise otherwise), with PyTorch's default thread count. Rows:
- "FCN <precision> net pass": the app's own pass, Segmenter.run_stages (BatchNorm folded, channels-last,
  inference mode, fc6/fc7 as matrix products, padding skip), computing every stage, on the prepared input.
- "FCN <precision> segment()": what the viewer waits for: Segmenter.segment from the uint8 photo (normalise,
  the pass, every stage back as fp32) — stricter, as LR-ASPP is timed on the prepared input.
bf16 rows are added where the CPU has native bf16 (fcn_viewer.bf16.cpu_has_native_bf16).
LR-ASPP is lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=11), fp32, eval, under
torch.inference_mode, `model(x)["out"]` (its logits upsampled to the input size), on the same fp32 input as the
FCN's fp32 pass. Its best plain-eager path depends on the CPU, so it is timed both in NCHW and in
channels-last (model and input); every ratio is FCN time / the faster layout's time (medians).
All functions are timed alternately, run by run, after two warm-up rounds, so a noisy machine slows all alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from collections.abc import Callable
from pathlib import Path

import torch

try:
    from benchmarks.bench_inference import percentile, photos, recipe_fcn8s, timed_alternately
except ModuleNotFoundError as error:  # run as a script: benchmarks/ itself is on sys.path
    if error.name != "benchmarks":
        raise
    from bench_inference import percentile, photos, recipe_fcn8s, timed_alternately  # type: ignore[no-redef]

from fcn_viewer.bf16 import cpu_has_native_bf16
from fcn_viewer.inference import DEFAULT_MAX_PIXELS, Segmenter
from fcn_viewer.options import Precision
from fcn_viewer.weights.loader import LoadedModel, load_model

TARGET_RATIO = 2.0  # issue 19: the FCN-8s within 2× LR-ASPP's time
LAYOUTS = {"NCHW": torch.contiguous_format, "channels-last": torch.channels_last}


def lraspp(num_classes: int = 11) -> torch.nn.Module:
    """torchvision's LR-ASPP MobileNetV3-Large with random weights (speed does not depend on the values)."""
    try:
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large
    except ModuleNotFoundError as error:
        raise SystemExit(f"{error}: this benchmark needs torchvision; pip install -e '.[bench]'") from error
    return lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes).eval()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def precisions() -> list[Precision]:
    return ["fp32", "bf16"] if cpu_has_native_bf16() else ["fp32"]


def compare(loaded: LoadedModel, size: tuple[int, int], runs: int, warmup: int = 2) -> dict[str, object]:
    """Times the FCN (every precision of :func:`precisions`) against LR-ASPP, prints the table and returns it."""
    cpu = torch.device("cpu")
    height, width = size
    image = photos(size, 1)
    budget = max(height * width, DEFAULT_MAX_PIXELS)  # never downscaled
    segmenters = {p: Segmenter(loaded, cpu, max_pixels=budget, precision=p) for p in precisions()}
    inputs = {p: s.network_input(image) for p, s in segmenters.items()}
    same_input = inputs["fp32"].contiguous()
    references = {layout: lraspp().to(memory_format=form) for layout, form in LAYOUTS.items()}
    reference_inputs = {layout: same_input.contiguous(memory_format=form) for layout, form in LAYOUTS.items()}

    def reference(layout: str) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                return references[layout](reference_inputs[layout])["out"]
        return run

    def net_pass(precision: Precision) -> Callable[[], object]:
        return lambda: segmenters[precision].run_stages(inputs[precision])

    def segment(precision: Precision) -> Callable[[], object]:
        return lambda: segmenters[precision].segment(image[0])

    functions: dict[str, Callable[[], object]] = {f"LR-ASPP fp32 {layout}": reference(layout) for layout in LAYOUTS}
    for precision in segmenters:
        functions[f"FCN {precision} net pass"] = net_pass(precision)
        functions[f"FCN {precision} segment()"] = segment(precision)
    samples = timed_alternately(functions, cpu, runs, warmup)

    medians = {name: statistics.median(times) * 1e3 for name, times in samples.items()}
    fastest = min(LAYOUTS, key=lambda layout: medians[f"LR-ASPP fp32 {layout}"])
    reference_ms = medians[f"LR-ASPP fp32 {fastest}"]
    threads = torch.get_num_threads()
    print(f"\n{loaded.meta.title} ({loaded.meta.name}) vs LR-ASPP MobileNetV3-Large · {width}×{height} · batch 1")
    print(f"CPU: {cpu_name()} · {threads} threads · native bf16: {'yes' if cpu_has_native_bf16() else 'no'}"
          f" · torch {torch.__version__} · {runs} runs after {warmup} warm-up rounds, alternated")
    print(f"  {'':28} {'median':>10} {'p90':>10}   FCN / LR-ASPP ({fastest}, the faster layout)")
    rows: list[dict[str, object]] = []
    for name, times in samples.items():
        median, p90 = medians[name], percentile(times, 0.9) * 1e3
        ratio = median / reference_ms if name.startswith("FCN") else None
        verdict = "" if ratio is None else f"×{ratio:.2f}  {'within' if ratio <= TARGET_RATIO else 'OVER'} ×{TARGET_RATIO:g}"
        print(f"  {name:28} {median:7.1f} ms {p90:7.1f} ms   {verdict}".rstrip())
        rows.append({"name": name, "median_ms": median, "p90_ms": p90, "ratio_to_lraspp": ratio,
                     "samples_ms": [t * 1e3 for t in times]})
    return {"model": loaded.meta.name, "title": loaded.meta.title, "size": [height, width], "cpu": cpu_name(),
            "threads": threads, "native_bf16": cpu_has_native_bf16(), "torch": torch.__version__, "runs": runs,
            "warmup": warmup, "lraspp_layout": fastest, "lraspp_median_ms": reference_ms,
            "target_ratio": TARGET_RATIO, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each function (default 20)")
    parser.add_argument("--model", default="camvid-fcn8s",
                        help="a registry name or a .safetensors path (default camvid-fcn8s); 'recipe' = the "
                             "training recipe's net (`fcn-viewer train` defaults) with random weights")
    parser.add_argument("--size", type=_size, default=(360, 480), help="HxW of the input (default 360x480)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    loaded = recipe_fcn8s() if args.model == "recipe" else load_model(args.model)
    figures = compare(loaded, args.size, max(1, args.runs))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


if __name__ == "__main__":
    main()
