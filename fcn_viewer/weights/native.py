"""The project's own weights format: fp16 safetensors with the ModelMeta as JSON metadata."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from fcn_viewer.atomic import atomic_output
from fcn_viewer.errors import WeightsError
from fcn_viewer.weights.meta import ModelMeta

METADATA_KEY = "fcn_viewer"
FORMAT_VERSION = 1


def save_native(path: str | Path, state_dict: dict[str, torch.Tensor], meta: ModelMeta, half: bool = True) -> Path:
    """Writes ``state_dict`` (floating tensors as fp16 when ``half``) with ``meta`` to ``path`` atomically."""
    path = Path(path)
    tensors = {
        key: (value.half() if half and value.is_floating_point() else value).detach().cpu().contiguous()
        for key, value in state_dict.items()
    }
    metadata = {METADATA_KEY: json.dumps(meta.to_dict()), "format_version": str(FORMAT_VERSION)}
    with atomic_output(path) as handle:
        handle.write(save(tensors, metadata=metadata))
    return path


def read_native_meta(path: str | Path) -> ModelMeta:
    """Reads only the metadata of a native weights file (cheap: no tensors are loaded)."""
    with _open(path) as handle:
        return _meta(path, handle.metadata())


def load_native(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelMeta]:
    """Returns the float32 state_dict and the metadata stored in a native weights file."""
    with _open(path) as handle:
        meta = _meta(path, handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, meta


def _open(path: str | Path):  # type: ignore[no-untyped-def]
    try:
        return safe_open(str(path), framework="pt")
    except FileNotFoundError:
        raise WeightsError(f"{path}: file not found") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(f"{path}: not a readable safetensors file ({error})") from None


def _meta(path: str | Path, metadata: dict[str, str] | None) -> ModelMeta:
    if not metadata or METADATA_KEY not in metadata:
        raise WeightsError(f"{path}: safetensors file without fcn-viewer metadata (classes, architecture)")
    version = int(metadata.get("format_version", "1"))
    if version > FORMAT_VERSION:
        raise WeightsError(f"{path}: written by a newer fcn-viewer (format {version}); please upgrade")
    try:
        return ModelMeta.from_dict(json.loads(metadata[METADATA_KEY]))
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsError(f"{path}: invalid fcn-viewer metadata ({error})") from None
