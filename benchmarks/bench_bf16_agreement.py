"""bf16 against exact fp32 on the CPU, per net: the share of CamVid val pixels that keep fp32's class in every stage.

The number that gates auto precision's bf16 on a CPU (fcn_viewer.inference.choose_precision, ≥ 99.5 %): with
``--write`` it is stored, with the file's size and SHA-256, in fcn_viewer/bundled/models/bf16_agreement.json, which
the loader reads (fcn_viewer/weights/bf16_table.py), so a retrained net is unmeasured until this runs again.
Accuracy, not speed: it may run on a busy machine. Examples:

    python benchmarks/bench_bf16_agreement.py                   # the bundled nets, every CamVid val photo
    python benchmarks/bench_bf16_agreement.py --write           # and store the verdicts the viewer reads
    python benchmarks/bench_bf16_agreement.py --limit 4 --models camvid-fcn8s

Both precisions run the app's own path (Segmenter.segment, precision "fp32" and "bf16"; bf16 is emulated, slowly,
on a CPU without it, with the same classes up to rounding). Skips, saying so, when the data is absent.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch

try:
    from benchmarks.bench_vs_lraspp import cpu_name
except ModuleNotFoundError as error:  # run as a script: benchmarks/ itself is on sys.path
    if error.name != "benchmarks":
        raise
    from bench_vs_lraspp import cpu_name  # type: ignore[no-redef]

from fcn_viewer.imageio import list_images, load_image
from fcn_viewer.inference import BF16_MIN_AGREEMENT, Segmenter
from fcn_viewer.weights.bf16_table import file_sha256, read_table, table_path
from fcn_viewer.weights.loader import load_entry
from fcn_viewer.weights.registry import entry

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ("camvid-fcn8s", "camvid-fcn16s", "camvid-fcn32s")


def agreement(name: str, photos: list[Path]) -> dict[str, object]:
    """Per stage, the share of pixels whose bf16 argmax equals fp32's over ``photos``; ``agreement`` is the least."""
    item = entry(name)
    loaded = load_entry(item)
    exact, fast = (Segmenter(loaded, "cpu", precision=p) for p in ("fp32", "bf16"))
    same: dict[str, int] = {}
    pixels = 0
    for photo in photos:
        image = load_image(photo)
        reference, result = exact.segment(image), fast.segment(image)
        for stage in reference.stages:
            same[stage] = same.get(stage, 0) + int((reference.mask(stage) == result.mask(stage)).sum())
        pixels += image.shape[0] * image.shape[1]
    stages = {stage: count / pixels for stage, count in same.items()}
    return {"sha256": file_sha256(item.path), "bytes": item.path.stat().st_size, "agreement": min(stages.values()),
            "stages": stages, "images": len(photos), "pixels": pixels}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "camvid",
                        help="a CamVid folder (default ../shared/data/camvid)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--models", nargs="+", default=list(BUNDLED))
    parser.add_argument("--limit", type=int, help="only the first N photos (a quick check; not for --write)")
    parser.add_argument("--write", action="store_true", help=f"store the verdicts in {table_path().name}")
    parser.add_argument("--stored", action="store_true", help="print the stored verdicts and stop (measures nothing)")
    args = parser.parse_args(argv)
    if args.stored:
        for name, stored in read_table().items():
            print(f"  {name:15} least {100 * stored['agreement']:6.2f} % of pixels as in fp32 over "
                  f"{stored['images']} {stored['data']} photos; measured {stored['measured']} on {stored['machine']}, "
                  f"torch {stored['torch']}: `{stored['command']}`")
        return 0
    folder = args.data / args.split
    if not folder.is_dir():
        print(f"skipped: no CamVid {args.split} photos at {folder}")
        return 0
    if args.write and args.limit:
        parser.error("--write stores only measurements over the whole split: drop --limit")
    photos = list_images(folder)[: args.limit]
    command = "python benchmarks/bench_bf16_agreement.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"bf16 vs exact fp32, argmax per pixel, CamVid {args.split} ({len(photos)} photos), torch {torch.__version__}")
    table = read_table()
    for name in args.models:
        verdict = agreement(name, photos)
        stages = verdict["stages"]
        assert isinstance(stages, dict)
        worst = float(verdict["agreement"])  # type: ignore[arg-type]
        gate = "bf16 allowed" if worst >= BF16_MIN_AGREEMENT else "fp32 only"
        listed = ", ".join(f"{stage} {100 * share:.2f} %" for stage, share in stages.items())
        print(f"  {name:15} least {100 * worst:6.2f} %   ({listed})   → {gate} (≥ {100 * BF16_MIN_AGREEMENT:g} %)")
        table[name] = {**verdict, "data": f"CamVid {args.split}", "command": command.strip(),
                       "measured": datetime.date.today().isoformat(), "machine": cpu_name(),
                       "torch": torch.__version__}
    if args.write:
        table_path().write_text(json.dumps({"nets": table}, indent=2) + "\n")
        print(f"written: {table_path()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
