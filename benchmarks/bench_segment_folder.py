"""`fcn-viewer segment` on a folder: images per second against one image at a time in eager fp32, on the CPU.

Prints numbers; it is not a pass/fail test. Examples:

    python benchmarks/bench_segment_folder.py                       # the default model and the paper FCN-8s
    python benchmarks/bench_segment_folder.py --nets default --images 24

Both sides load the net from its file, read the same JPEG files from a folder and write each image's class map as
an indexed PNG:
- "one by one, eager fp32" is the straightforward loop (pytorch-fcn's way): decode an image, normalise it,
  ``model(x)`` in eager fp32, NCHW, PyTorch's defaults, final output only, argmax, write the mask; then the next.
- "segment" is the command itself, in this process (`fcn_viewer.cli.main.main(["segment", folder, ...])`): decoding
  on a thread ahead of the network (fcn_viewer/batching.py decode_ahead), the app's pass (BatchNorm folded,
  channels-last, fc6/fc7 as matrix products, padding skip), every stage computed, and it writes more (mask,
  overlay, on write threads). Timed at --precision auto (what a user gets) and fp32, so the two gains show apart.
Each side runs once on one image first (warm-up; auto precision's speed probe, cached per process, runs there),
then on the whole folder, sides alternated over ``--rounds``; the median round counts. Nets: "default" is the
bundled camvid-fcn8s at 480×360; "paper" the paper's VGG16 FCN-8s (pytorch-fcn's FCN8s architecture, random
weights: speed does not depend on them) at 500×500, written to a temporary file (half precision, ~270 MB).
Photos are CamVid val when ../shared/data/camvid is there.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

try:
    from benchmarks.bench_inference import paper_fcn8s, photos
    from benchmarks.bench_vs_lraspp import cpu_name
except ModuleNotFoundError as error:  # run as a script: benchmarks/ itself is on sys.path
    if error.name != "benchmarks":
        raise
    from bench_inference import paper_fcn8s, photos  # type: ignore[no-redef]
    from bench_vs_lraspp import cpu_name  # type: ignore[no-redef]

from fcn_viewer.cli.main import main as cli
from fcn_viewer.imageio import list_images, load_image
from fcn_viewer.render import save_indexed_png
from fcn_viewer.weights.loader import load_model
from fcn_viewer.weights.native import save_native

NETS = {"default": ("camvid-fcn8s", (360, 480)), "paper": ("paper", (500, 500))}


def write_photos(folder: Path, size: tuple[int, int], count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for index, pixels in enumerate(photos(size, count)):
        Image.fromarray(pixels).save(folder / f"photo{index:03d}.jpg", quality=90)
    return list_images(folder)


def one_by_one(model_name: str, paths: list[Path], out: Path) -> None:
    """The straightforward loop: load the net, then per image decode, normalise, eager fp32 forward (final output),
    argmax, write; next image."""
    loaded = load_model(model_name)
    model, meta = loaded.model.eval(), loaded.meta
    out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        pixels = torch.from_numpy(load_image(path)[None].copy())
        x = meta.preprocessing.from_uint8(pixels).contiguous()
        with torch.no_grad():
            classes = model(x).argmax(1)[0].to(torch.uint8).numpy()
        save_indexed_png(out / f"{path.stem}_mask.png", classes, meta.palette)


def segment_command(model: str, folder: Path, out: Path, precision: str) -> None:
    which = ["--weights", model] if model.endswith(".safetensors") else ["--model", model]
    argv = ["segment", str(folder), "--out", str(out), *which, "--device", "cpu", "--precision", precision, "--overwrite"]
    with contextlib.redirect_stderr(io.StringIO()) as log:
        code = cli(argv)
    if code != 0:
        raise SystemExit(f"segment failed ({code}): {log.getvalue()[-500:]}")


def model_of(net: str, work: Path) -> str:
    """The ``--model`` of ``net``: a registry name, or the paper net written to a file in ``work``."""
    name, _ = NETS[net]
    if name != "paper":
        return name
    loaded = paper_fcn8s()
    return str(save_native(work / "paper-fcn8s.safetensors", loaded.model.state_dict(), loaded.meta))


def compare(model: str, size: tuple[int, int], count: int, rounds: int, work: Path) -> dict[str, float]:
    """Images per second of each side on ``count`` photos of ``size`` (H, W); prints them and the speed-ups."""
    folder = work / "photos"
    paths = write_photos(folder, size, count)
    warm = work / "warm"
    warm.mkdir()
    (warm / paths[0].name).write_bytes(paths[0].read_bytes())
    sides = {
        "one by one, eager fp32": lambda src, dst: one_by_one(model, list_images(src), dst),
        "segment --precision auto": lambda src, dst: segment_command(model, src, dst, "auto"),
        "segment --precision fp32": lambda src, dst: segment_command(model, src, dst, "fp32"),
    }
    for side in sides.values():
        side(warm, work / "warm-out")
    seconds: dict[str, list[float]] = {label: [] for label in sides}
    for _ in range(rounds):
        for label, side in sides.items():
            started = time.perf_counter()
            side(folder, work / "out")
            seconds[label].append(time.perf_counter() - started)
    rates = {label: count / statistics.median(times) for label, times in seconds.items()}
    baseline = rates["one by one, eager fp32"]
    height, width = size
    print(f"\n{load_model(model).meta.title} · {count} JPEG photos of {width}×{height} · CPU: {cpu_name()}, "
          f"{torch.get_num_threads()} threads · median of {rounds} round(s)")
    for label, rate in rates.items():
        print(f"  {label:28} {rate:6.2f} images/s   ×{rate / baseline:.2f}")
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", choices=tuple(NETS), default=list(NETS))
    parser.add_argument("--images", type=int, help="photos per net (default 16 for default, 4 for paper)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fcn-viewer-bench.") as name:
        for net in args.nets:
            work = Path(name) / net
            work.mkdir()
            count = args.images or (16 if net == "default" else 4)
            compare(model_of(net, work), NETS[net][1], count, max(1, args.rounds), work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
