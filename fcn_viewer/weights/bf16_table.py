"""The measured argmax agreement of bf16 with exact fp32, per weights file: the number that lets auto precision run
a net in bf16 on a CPU (written by benchmarks/bench_bf16_agreement.py, read when a model is loaded)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fcn_viewer.resources import bundled_models_dir

TABLE_NAME = "bf16_agreement.json"


def table_path() -> Path:
    """The table beside the bundled models (in a wheel too)."""
    return bundled_models_dir() / TABLE_NAME


def read_table(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Net name → its entry (``sha256``, ``bytes``, ``agreement``, …); empty when the table is missing or unreadable,
    so an unmeasured or damaged verdict only ever means exact fp32."""
    try:
        data = json.loads((path or table_path()).read_text())
    except (OSError, ValueError):
        return {}
    nets = data.get("nets") if isinstance(data, dict) else None
    return {name: e for name, e in nets.items() if isinstance(e, dict)} if isinstance(nets, dict) else {}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def measured_agreement(path: Path, table: dict[str, dict[str, Any]] | None = None) -> float | None:
    """The least argmax agreement over the net's stages that the table holds for exactly this file (same size and
    SHA-256), or None where it was never measured. Only files of a listed size are hashed."""
    entries = read_table() if table is None else table
    size = path.stat().st_size
    candidates = [e for e in entries.values() if e.get("bytes") == size]
    if not candidates:
        return None
    digest = file_sha256(path)
    for candidate in candidates:
        agreement = candidate.get("agreement")
        if candidate.get("sha256") == digest and isinstance(agreement, int | float) and 0 <= agreement <= 1:
            return float(agreement)
    return None
