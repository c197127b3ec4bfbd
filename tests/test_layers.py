"""The import contracts name every core module, so a module added later cannot slip past the layering rule."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE_THE_CORE = {"cli", "gui", "__init__", "__main__"}


def core_modules() -> set[str]:
    """Every top-level module and package of fcn_viewer except the command line and the GUI."""
    package = ROOT / "fcn_viewer"
    names = {path.stem for path in package.glob("*.py")}
    names |= {path.parent.name for path in package.glob("*/__init__.py")}
    return {f"fcn_viewer.{name}" for name in names - OUTSIDE_THE_CORE}


def test_the_forbidden_import_contracts_cover_every_core_module() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    forbidden = [contract for contract in contracts if contract["type"] == "forbidden"]
    assert len(forbidden) == 2  # no Qt in the core; no GUI or CLI in the core
    for contract in forbidden:
        assert set(contract["source_modules"]) == core_modules(), contract["name"]
