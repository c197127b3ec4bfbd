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
from fcn_viewer.weights.validate import check_finite, check_shapes, state_shapes

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
    """Returns the float32 state_dict and the metadata stored in a native weights file.

    The metadata is schema-checked and the tensor names and shapes in the header are compared with
    the network it describes before any tensor is read; NaN or infinite values are refused.
    """
    with _open(path) as handle:
        meta = _meta(path, handle.metadata())
        try:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
        except (SafetensorError, ValueError, OSError) as error:
            raise WeightsError(f"{path}: unreadable tensor header ({error})") from None
        check_shapes(shapes, state_shapes(meta.config), str(path))
        try:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, ValueError, OSError, RuntimeError) as error:
            raise WeightsError(f"{path}: damaged tensor data ({error})") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    check_finite(state, str(path))
    return state, meta


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
    stated = metadata.get("format_version", "1")
    if not (stated.isascii() and stated.isdigit()) or len(stated) > 6:
        raise WeightsError(f"{path}: invalid fcn-viewer metadata (format_version {stated[:40]!r} is not an integer)")
    version = int(stated)
    if version > FORMAT_VERSION:
        raise WeightsError(f"{path}: written by a newer fcn-viewer (format {version}); please upgrade")
    try:
        return ModelMeta.from_dict(json.loads(metadata[METADATA_KEY]))
    except RecursionError:
        raise WeightsError(f"{path}: invalid fcn-viewer metadata (JSON nested too deeply)") from None
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsError(f"{path}: invalid fcn-viewer metadata ({error})") from None
