"""`fcn-viewer models` and `fcn-viewer download`: what is known, what is here, and fetching the rest."""

from __future__ import annotations

import argparse
import sys

from fcn_viewer.cli.common import byte_counter
from fcn_viewer.weights.registry import DEFAULT_MODEL, ENTRIES, entry, fetch_entry


def add_parsers(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    listing = subparsers.add_parser("models", help="list the known models and whether they are available")
    listing.set_defaults(run=run_models)
    fetch = subparsers.add_parser("download", help="download registry models into the cache")
    fetch.add_argument("names", nargs="+", metavar="NAME")
    fetch.set_defaults(run=run_download)


def run_models(args: argparse.Namespace) -> int:
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
    for name in args.names:
        item = entry(name)
        if item.bundled:
            print(f"{name}: bundled with the app, nothing to download", file=sys.stderr)
            continue
        print(f"{name}: {item.url} → {item.path}", file=sys.stderr)
        with byte_counter() as counter:
            fetch_entry(item, progress=counter)
    return 0
