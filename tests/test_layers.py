"""The no-Qt contract names every core module, so a module added later cannot slip past it (the layers contract is
exhaustive: import-linter itself fails on a module it does not place)."""

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


def test_the_no_qt_contract_covers_every_core_module() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    forbidden = [contract for contract in contracts if contract["type"] == "forbidden"]
    assert len(forbidden) == 1  # no Qt in the core (the layers contract keeps the GUI and the CLI out of it)
    assert set(forbidden[0]["source_modules"]) == core_modules(), forbidden[0]["name"]
