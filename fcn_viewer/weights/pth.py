"""pytorch-fcn ``.pth`` state_dicts, loaded without ever unpickling arbitrary objects."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from fcn_viewer.errors import WeightsError
from fcn_viewer.weights.validate import MAX_FILE_BYTES

CHECKPOINT_KEYS = ("model_state_dict", "state_dict")


def _check_archive(path: Path) -> None:
    """Refuses a zip-format file whose members unpack to more than any FCN (a zip bomb), before loading."""
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise WeightsError(f"{path}: not a readable PyTorch weights file ({error})") from None
    if unpacked > MAX_FILE_BYTES:
        raise WeightsError(f"{path}: unpacks to {unpacked / 1e9:.1f} GB, more than any FCN weights file "
                           f"(at most {MAX_FILE_BYTES / 1e9:.1f} GB)")


def load_pth(path: str | Path) -> dict[str, torch.Tensor]:
    """Loads a state_dict (or a pytorch-fcn checkpoint holding one) with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: file not found")
    _check_archive(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightsError(
            f"{path}: refused to load: the file contains Python objects other than tensors, "
            f"which could run code ({str(error).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        raise WeightsError(f"{path}: not a readable PyTorch weights file ({error})") from None
    if isinstance(data, dict):
        for key in CHECKPOINT_KEYS:
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"{path}: does not hold a state_dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in data.items()}
