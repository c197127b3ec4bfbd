"""`fcn-viewer models`, `fcn-viewer download` and `fcn-viewer samples`: what is known, what is here, where the
bundled samples are, and fetching the rest (models into the cache, datasets into the cache or --out)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fcn_viewer.cli.common import ByteCounter, byte_counter, does_nothing
from fcn_viewer.dataset_download import DATASETS, fetch_dataset
from fcn_viewer.resources import SAMPLES, resources_dir, sample_images
from fcn_viewer.weights.registry import DEFAULT_MODEL, ENTRIES, entry, fetch_entry


def add_parsers(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    listing = subparsers.add_parser("models", help="list the known models and whether they are available")
    listing.set_defaults(run=run_models)
    fetch = subparsers.add_parser("download", help="download registry models into the cache, or CamVid",
                                  formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_names_accepted())
    fetch.add_argument("names", nargs="+", metavar="NAME",
                       help=f"a dataset ({', '.join(DATASETS)}) or a model (`fcn-viewer models`), listed below")
    fetch.add_argument("--out", type=Path, metavar="DIR",
                       help="the folder a dataset goes into (default: the cache); models always go to the cache")
    fetch.set_defaults(run=run_download)
    samples = subparsers.add_parser("samples", help="print where the bundled sample photos and their labels are")
    samples.set_defaults(run=run_samples)


def _names_accepted() -> str:
    """The names `download` takes, one a line, datasets then models, each with what it is (a name with no working
    source says so)."""
    models = [item for item in ENTRIES if not item.bundled]
    width = max(len(name) for name in [*DATASETS, *(item.name for item in models)])
    lines = ["datasets:", *(f"  {name:{width}}  {source.title}" for name, source in DATASETS.items()), "models:"]
    for item in models:
        note = " — unavailable: no source works (see `fcn-viewer models`)" if item.unavailable else ""
        lines.append(f"  {item.name:{width}}  {item.title}{note}")
    return "\n".join(lines)


def run_models(args: argparse.Namespace) -> int:
    print(f"{'NAME':32} {'VARIANT':13} {'STAGES':10} {'STATE':15} {'SIZE':>7}  TITLE")
    print(f"{'':32} FILE (where it is, or where a download puts it)")
    for item in ENTRIES:
        if item.bundled:
            state = "bundled" if item.available else "missing"
        elif item.available:
            state = "cached"
        else:
            state = "unavailable" if item.unavailable else "not downloaded"
        size = f"{item.size_bytes / 1e6:.0f} MB" if item.size_bytes else ""
        default = " (default)" if item.name == DEFAULT_MODEL else ""
        print(f"{item.name:32} {item.variant:13} {'/'.join(item.stages):10} {state:15} {size:>7}  {item.title}{default}")
        print(f"{'':32} {item.path}")
        if item.unavailable and not item.available:
            print(f"{'':32} unavailable: {item.unavailable}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    models = [entry(name) for name in args.names if name not in DATASETS]  # an unknown name: a usage error, at once
    if args.out is not None and not any(name in DATASETS for name in args.names):
        raise does_nothing("--out", "for models (they go to the cache); it is where a dataset goes")
    for name in args.names:
        if name in DATASETS:
            _download_dataset(name, args.out)
            continue
        item = next(item for item in models if item.name == name)
        if item.bundled:
            print(f"{name}: bundled with the app, nothing to download", file=sys.stderr)
            continue
        print(f"{name} → {item.path}", file=sys.stderr)
        with byte_counter() as counter:
            fetch_entry(item, progress=counter)
    return 0


def _download_dataset(name: str, out: Path | None) -> None:
    source = DATASETS[name]
    root = out if out is not None else source.default_dir()
    print(f"{name}: {source.title} → {root}", file=sys.stderr)
    with byte_counter() as counter:
        root = fetch_dataset(source, out, progress=counter, say=lambda text: _say(counter, text))
    print(f"{name}: ready; evaluate with: fcn-viewer evaluate --data {root} --split test", file=sys.stderr)
    print(root)


def _say(counter: ByteCounter, text: str) -> None:
    counter.end()  # a line of its own, after the byte counter's
    print(text, file=sys.stderr)


_LISTED = ("models", SAMPLES, f"{SAMPLES}annot")  # the folders `samples` does not list as more pictures


def run_samples(args: argparse.Namespace) -> int:
    """One line per bundled photo: the photo and its label, tab-separated (the folders first, as comments, with any
    other bundled folder of pictures)."""
    root = resources_dir()
    photos = sample_images()
    if not photos:
        print(f"error: no sample photos are installed in {root / SAMPLES}", file=sys.stderr)
        return 1
    print(f"# photos: {root / SAMPLES}")
    print(f"# labels: {root / (SAMPLES + 'annot')} (pixel value = CamVid class index, 11 = void)")
    for folder in sorted(path for path in root.iterdir() if path.is_dir() and path.name not in _LISTED):
        print(f"# {folder.name}: {folder}")  # more bundled pictures (a frame sequence, say)
    print("# score them: fcn-viewer evaluate (without --data); open one: fcn-viewer gui PHOTO")
    for photo in photos:
        label = root / f"{SAMPLES}annot" / f"{photo.stem}.png"
        print(f"{photo}\t{label}" if label.is_file() else str(photo))
    return 0
