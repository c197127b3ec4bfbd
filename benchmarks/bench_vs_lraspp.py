"""Ours against torchvision's lightest segmenters on the CPU, fp32 and bf16, in one run (issues 19 and 24).

Prints numbers and ratios, and the rows to paste into benchmarks/README.md; it is not a pass/fail test. Needs
torchvision, a benchmark-only extra (`pip install -e '.[bench]'`); the app itself never imports it. Examples:

    python benchmarks/bench_vs_lraspp.py                        # bundled camvid-fcn8s, 20 runs
    python benchmarks/bench_vs_lraspp.py --runs 50 --json lraspp.json
    python benchmarks/bench_vs_lraspp.py --model runs/x/camvid-fcn8s.safetensors
    python benchmarks/bench_vs_lraspp.py --model recipe         # the training recipe's net, random weights
    python benchmarks/bench_vs_lraspp.py --paper 5              # and the paper FCN-8s at 500×500, 5 runs

Everything runs on the CPU, batch 1, on one 480×360 photo (a CamVid val photo when the data is there,
seeded noise otherwise), with PyTorch's default thread count. Rows:
- "FCN <precision> net pass": the app's own pass, Segmenter.run_stages (BatchNorm folded, channels-last,
  inference mode, fc6/fc7 as matrix products, padding skip), computing every stage, on the prepared input.
- "FCN <precision> segment()": what the viewer waits for: Segmenter.segment from the uint8 photo (normalise,
  the pass, every stage back as fp32) — stricter, as the references are timed on the prepared input.
- "FCN auto segment()": segment() at the precision the viewer picks on this machine (inference.choose_precision;
  its reason is printed).
bf16 rows are added where the CPU has native bf16 (fcn_viewer.bf16.cpu_has_native_bf16).
The references are torchvision's lraspp_mobilenet_v3_large and deeplabv3_mobilenet_v3_large (weights=None,
weights_backbone=None, num_classes=11, no auxiliary head), eval, under torch.inference_mode, `model(x)["out"]`
(logits upsampled to the input size), on the same input as the FCN's pass, cast to the row's precision. Their best
plain-eager path depends on the CPU, so each is timed both in NCHW and in channels-last (model and input); every
ratio is FCN time / the faster layout's fp32 time (medians).
--paper N adds the paper's VGG16 FCN-8s (random weights) at 500×500: pytorch-fcn's FCN8s architecture run its way
(eager fp32, NCHW, `model(x)` for the final output only; this project's FCN in that geometry) against the app's
pass in fp32 and bf16, alternated, N runs after one warm-up round.
All functions are timed alternately, run by run, after warm-up rounds, so a noisy machine slows all alike, in a new
(seeded) order each round; the 480×360 ones each right after an untimed run of the same net, so every net's weights
are as warm in the cache as when it segments image after image (without it, the net timed just after a run of the
same weights was flattered by 8 ms).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

try:
    from benchmarks.bench_inference import paper_fcn8s, percentile, photos, recipe_fcn8s, timed_alternately
except ModuleNotFoundError as error:  # run as a script: benchmarks/ itself is on sys.path
    if error.name != "benchmarks":
        raise
    from bench_inference import (  # type: ignore[no-redef]
        paper_fcn8s,
        percentile,
        photos,
        recipe_fcn8s,
        timed_alternately,
    )

from fcn_viewer.bf16 import cpu_has_native_bf16
from fcn_viewer.inference import DEFAULT_MAX_PIXELS, Segmenter
from fcn_viewer.options import Precision
from fcn_viewer.weights.loader import LoadedModel, load_model

TARGET_RATIO = 1.0  # issue 24: the default model, all stages, auto precision, no slower than LR-ASPP in fp32
LAYOUTS = {"NCHW": torch.contiguous_format, "channels-last": torch.channels_last}
REFERENCES = {"LR-ASPP": "lraspp_mobilenet_v3_large", "DeepLabV3": "deeplabv3_mobilenet_v3_large"}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def reference_net(name: str, num_classes: int = 11) -> torch.nn.Module:
    """torchvision's ``name`` (a key of REFERENCES) with random weights (speed does not depend on the values)."""
    try:
        from torchvision.models import segmentation
    except ModuleNotFoundError as error:
        raise SystemExit(f"{error}: this benchmark needs torchvision; pip install -e '.[bench]'") from error
    build = getattr(segmentation, REFERENCES[name])
    net: torch.nn.Module = build(weights=None, weights_backbone=None, num_classes=num_classes).eval()
    return net


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


def machine() -> str:
    return (f"{cpu_name()}, {torch.get_num_threads()} threads, native bf16 {'yes' if cpu_has_native_bf16() else 'no'}, "
            f"torch {torch.__version__}")


def compare(loaded: LoadedModel, size: tuple[int, int], runs: int, warmup: int = 2,
            command: str = "python benchmarks/bench_vs_lraspp.py") -> dict[str, object]:
    """Times the FCN (every precision of :func:`precisions`, and auto) against both references, prints the table and
    the rows to paste, and returns them."""
    cpu = torch.device("cpu")
    height, width = size
    image = photos(size, 1)
    budget = max(height * width, DEFAULT_MAX_PIXELS)  # never downscaled
    segmenters = {p: Segmenter(loaded, cpu, max_pixels=budget, precision=p) for p in precisions()}
    automatic = Segmenter(loaded, cpu, max_pixels=budget, precision="auto")
    inputs = {p: s.network_input(image) for p, s in segmenters.items()}
    same_input = inputs["fp32"].contiguous()
    functions: dict[str, Callable[[], object]] = {}
    for reference in REFERENCES:
        built = reference_net(reference)
        for precision in precisions():
            for layout, form in LAYOUTS.items():
                net = copy.deepcopy(built).to(DTYPES[precision]).to(memory_format=form)
                x = same_input.to(DTYPES[precision]).contiguous(memory_format=form)
                functions[f"{reference} {precision} {layout}"] = _reference_run(net, x)

    def net_pass(precision: Precision) -> Callable[[], object]:
        return lambda: segmenters[precision].run_stages(inputs[precision])

    def segment(segmenter: Segmenter) -> Callable[[], object]:
        return lambda: segmenter.segment(image[0])

    for precision in segmenters:
        functions[f"FCN {precision} net pass"] = net_pass(precision)
        functions[f"FCN {precision} segment()"] = segment(segmenters[precision])
    functions["FCN auto segment()"] = segment(automatic)
    samples = timed_alternately(functions, cpu, runs, warmup, warm=True)

    medians = {name: statistics.median(times) * 1e3 for name, times in samples.items()}
    fastest = {reference: min(LAYOUTS, key=lambda layout: medians[f"{reference} fp32 {layout}"]) for reference in REFERENCES}
    reference_ms = {reference: medians[f"{reference} fp32 {fastest[reference]}"] for reference in REFERENCES}
    print(f"\n{loaded.meta.title} ({loaded.meta.name}) vs torchvision LR-ASPP and DeepLabV3 MobileNetV3-Large · "
          f"{width}×{height} · batch 1")
    print(f"CPU: {machine()} · {runs} runs after {warmup} warm-up rounds, alternated in a new order each round, each "
          "timed right after an untimed run of the same net")
    print(f"auto picked: {automatic.precision_note}")
    print(f"  {'':30} {'median':>10} {'p90':>10}   ÷ LR-ASPP fp32 ({fastest['LR-ASPP']})   ÷ DeepLabV3 fp32 "
          f"({fastest['DeepLabV3']})")
    rows: list[dict[str, object]] = []
    for name, times in samples.items():
        median, p90 = medians[name], percentile(times, 0.9) * 1e3
        ratios = {reference: median / reference_ms[reference] for reference in REFERENCES}
        print(f"  {name:30} {median:7.1f} ms {p90:7.1f} ms   ×{ratios['LR-ASPP']:.2f}{'':22}×{ratios['DeepLabV3']:.2f}")
        rows.append({"name": name, "median_ms": median, "p90_ms": p90, "ratio_to_lraspp": ratios["LR-ASPP"],
                     "ratio_to_deeplabv3": ratios["DeepLabV3"], "samples_ms": [t * 1e3 for t in times]})
    auto_ratio = medians["FCN auto segment()"] / reference_ms["LR-ASPP"]
    print(f"target (issue 24): FCN auto segment() ≤ ×{TARGET_RATIO:g} LR-ASPP fp32: "
          f"{medians['FCN auto segment()']:.1f} against {reference_ms['LR-ASPP']:.1f} ms, ×{auto_ratio:.2f} "
          f"{'met' if auto_ratio <= TARGET_RATIO else 'NOT met'}")
    shipped = medians["LR-ASPP fp32 NCHW"]  # as torchvision builds it, the layout of the 47.8 ms
    print(f"  against LR-ASPP fp32 as torchvision ships it (NCHW, {shipped:.1f} ms): "
          f"×{medians['FCN auto segment()'] / shipped:.2f}")
    print(f"\nRows for benchmarks/README.md (command: `{command}`; machine: {machine()}):")
    print("| what | median | p90 | ÷ LR-ASPP fp32 | ÷ DeepLabV3 fp32 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['name']} | {row['median_ms']:.1f} ms | {row['p90_ms']:.1f} ms | "
              f"×{row['ratio_to_lraspp']:.2f} | ×{row['ratio_to_deeplabv3']:.2f} |")
    return {"model": loaded.meta.name, "title": loaded.meta.title, "size": [height, width], "cpu": cpu_name(),
            "threads": torch.get_num_threads(), "native_bf16": cpu_has_native_bf16(), "torch": torch.__version__,
            "runs": runs, "warmup": warmup, "auto": automatic.precision_note,
            "lraspp_layout": fastest["LR-ASPP"], "lraspp_median_ms": reference_ms["LR-ASPP"],
            "deeplabv3_layout": fastest["DeepLabV3"], "deeplabv3_median_ms": reference_ms["DeepLabV3"],
            "target_ratio": TARGET_RATIO, "rows": rows}


def _reference_run(net: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.inference_mode():
            return net(x)["out"]
    return run


def compare_paper(runs: int, size: tuple[int, int] = (500, 500), command: str = "",
                  loaded: LoadedModel | None = None) -> dict[str, object]:
    """The paper FCN-8s (or ``loaded``, a net of its geometry): pytorch-fcn's way (eager fp32, NCHW, final output)
    against the app's pass in each precision."""
    cpu = torch.device("cpu")
    loaded = loaded or paper_fcn8s()
    image = photos(size, 1)
    segmenters = {p: Segmenter(loaded, cpu, max_pixels=max(size[0] * size[1], DEFAULT_MAX_PIXELS), precision=p)
                  for p in precisions()}
    inputs = {p: s.network_input(image) for p, s in segmenters.items()}
    plain = copy.deepcopy(loaded.model).eval()
    plain_input = loaded.meta.preprocessing.from_uint8(torch.from_numpy(image)).contiguous()

    def eager() -> object:
        with torch.no_grad():
            return plain(plain_input)

    functions: dict[str, Callable[[], object]] = {"pytorch-fcn FCN8s, eager fp32 (final output)": eager}
    for precision, segmenter in segmenters.items():
        functions[f"paper FCN-8s {precision} net pass (every stage)"] = (
            lambda s=segmenter, x=inputs[precision]: s.run_stages(x))
    samples = timed_alternately(functions, cpu, runs, 1)
    medians = {name: statistics.median(times) * 1e3 for name, times in samples.items()}
    baseline = medians["pytorch-fcn FCN8s, eager fp32 (final output)"]
    height, width = size
    print(f"\npaper FCN-8s (VGG16, random weights) · {width}×{height} · batch 1 · CPU: {machine()} · {runs} runs")
    print("| what | median | p90 | speed-up over eager fp32 |")
    print("| --- | ---: | ---: | ---: |")
    rows = []
    for name, times in samples.items():
        median, p90 = medians[name], percentile(times, 0.9) * 1e3
        print(f"| {name} | {median:.0f} ms | {p90:.0f} ms | ×{baseline / median:.2f} |")
        rows.append({"name": name, "median_ms": median, "p90_ms": p90, "speedup": baseline / median})
    print(f"(command: `{command}`)")
    return {"size": [height, width], "runs": runs, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each function (default 20)")
    parser.add_argument("--model", default="camvid-fcn8s",
                        help="a registry name or a .safetensors path (default camvid-fcn8s); 'recipe' = the "
                             "training recipe's net (`fcn-viewer train` defaults) with random weights")
    parser.add_argument("--size", type=_size, default=(360, 480), help="HxW of the input (default 360x480)")
    parser.add_argument("--paper", type=int, default=0, metavar="N",
                        help="also time the paper FCN-8s at 500×500 against pytorch-fcn's way, N runs (default 0: not)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    command = "python benchmarks/bench_vs_lraspp.py " + " ".join(sys.argv[1:] if argv is None else argv)
    loaded = recipe_fcn8s() if args.model == "recipe" else load_model(args.model)
    figures = compare(loaded, args.size, max(1, args.runs), command=command.strip())
    if args.paper > 0:
        figures["paper"] = compare_paper(args.paper, command=command.strip())
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


if __name__ == "__main__":
    main()
