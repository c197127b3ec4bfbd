"""`fcn-viewer models` and `fcn-viewer download`: what is known, what is here, and fetching the rest."""

from __future__ import annotations

import argparse
import sys

from fcn_viewer.cli.common import byte_counter
from fcn_viewer.weights.registry import DEFAULT_MODEL, ENTRIES, entry, fetch_entry


def add_parsers(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    listing = subparsers.add_parser("models", help="list the known models and whether they are available")
    listing.set_defaults(run=run_models)
    fetch = subparsers.add_parser("download", help="download registry models into the cache",
                                  epilog=_names_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    fetch.add_argument("names", nargs="+", metavar="NAME",
                       help="a model to fetch, one of the names below (`fcn-viewer models` describes them)")
    fetch.set_defaults(run=run_download)


def _names_epilog() -> str:
    """The names `download` takes, one a line, each with what it is (a name with no working source says so)."""
    lines = ["names:"]
    for item in ENTRIES:
        if not item.bundled:
            note = " — unavailable: no source works (see `fcn-viewer models`)" if item.unavailable else ""
            lines.append(f"  {item.name:32} {item.title}{note}")
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
    for name in args.names:
        item = entry(name)
        if item.bundled:
            print(f"{name}: bundled with the app, nothing to download", file=sys.stderr)
            continue
        print(f"{name}: {item.url} → {item.path}", file=sys.stderr)
        with byte_counter() as counter:
            fetch_entry(item, progress=counter)
    return 0
