"""`fcn-viewer segment`: masks, overlays and every stage tensor for images or folders of images."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fcn_viewer.cli.common import add_model_arguments, load_from_args
from fcn_viewer.atomic import atomic_output
from fcn_viewer.errors import FCNViewerError, OutputExistsError
from fcn_viewer.imageio import is_image_path, list_images, load_image
from fcn_viewer.inference import Segmentation, Segmenter
from fcn_viewer.render import overlay, save_indexed_png, save_rgb_png
from fcn_viewer.weights.meta import ModelMeta

OVERLAY_OPACITY = 0.5


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("segment", help="segment images and save masks, overlays and score maps")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_DIR")
    add_model_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if needed)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--save-scores", action="store_true", help="also write every stage tensor to <stem>.npz")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    parser.set_defaults(run=run)


def expand_inputs(inputs: list[Path]) -> Iterator[Path]:
    """Files as given; folders expanded to the images directly inside them."""
    for item in inputs:
        if item.is_dir() and not is_image_path(item):
            yield from list_images(item)
        else:
            yield item


def run(args: argparse.Namespace) -> int:
    loaded = load_from_args(args)
    segmenter = Segmenter(loaded, args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    images = list(expand_inputs(args.inputs))
    if not images:
        print("error: no images found in the given paths", file=sys.stderr)
        return 2
    print(f"{loaded.meta.title} on {segmenter.device}: {len(images)} image(s) → {args.out}", file=sys.stderr)
    failures = 0
    used_stems: set[str] = set()
    for index, path in enumerate(images, start=1):
        started = time.perf_counter()
        try:
            image = load_image(path)
            result = segmenter.segment(image)
            stem = _unique_stem(path.stem, used_stems)
            if not args.overwrite:
                refuse_existing(args.out, stem, args.save_scores)
            write_outputs(args.out, stem, result, loaded.meta, args.save_scores)
        except FCNViewerError as error:
            failures += 1
            print(f"[{index}/{len(images)}] error: {error}", file=sys.stderr)
            continue
        except RuntimeError as error:  # e.g. CUDA out of memory: report, go on with the next image
            failures += 1
            print(f"[{index}/{len(images)}] error: {path}: inference failed ({error})", file=sys.stderr)
            continue
        elapsed = (time.perf_counter() - started) * 1000
        notes = "".join(f"; {note}" for note in result.notes)
        print(f"[{index}/{len(images)}] {path} ({elapsed:.0f} ms{notes})", file=sys.stderr)
    if failures:
        print(f"{failures} of {len(images)} image(s) failed", file=sys.stderr)
    return 1 if failures else 0


def _unique_stem(stem: str, used: set[str]) -> str:
    candidate, suffix = stem, 2
    while candidate in used:
        candidate, suffix = f"{stem}-{suffix}", suffix + 1
    used.add(candidate)
    return candidate


def output_names(stem: str, save_scores: bool) -> list[str]:
    return [f"{stem}_mask.png", f"{stem}_overlay.png"] + ([f"{stem}.npz"] if save_scores else [])


def refuse_existing(out: Path, stem: str, save_scores: bool) -> None:
    existing = [name for name in output_names(stem, save_scores) if (out / name).exists()]
    if existing:
        raise OutputExistsError(f"{out / existing[0]}: already exists; pass --overwrite to replace it")


def write_outputs(out: Path, stem: str, result: Segmentation, meta: ModelMeta, save_scores: bool) -> None:
    """``<stem>_mask.png`` (indexed, finest stage), ``<stem>_overlay.png`` and optionally ``<stem>.npz``,
    each written atomically, at the size the network saw (see ``result.notes`` for a downscale)."""
    mask = result.mask()
    save_indexed_png(out / f"{stem}_mask.png", mask, meta.palette)
    save_rgb_png(out / f"{stem}_overlay.png", overlay(result.image, mask, meta.palette, OVERLAY_OPACITY))
    if save_scores:
        arrays = result.arrays()
        info = {
            "model": meta.name,
            "stages": list(result.stages),
            "upsampling": result.outputs.upsampling,
            "source_size": list(result.source_size),
            "notes": list(result.notes),
            "crops": [crop.__dict__ for crop in result.outputs.crops],
        }
        with atomic_output(out / f"{stem}.npz") as handle:
            np.savez(handle, **arrays, classes=np.array(meta.classes), info_json=np.array(json.dumps(info)))

