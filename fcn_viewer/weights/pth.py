"""pytorch-fcn ``.pth`` state_dicts, loaded without ever unpickling arbitrary objects."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from fcn_viewer.errors import WeightsError

CHECKPOINT_KEYS = ("model_state_dict", "state_dict")


def load_pth(path: str | Path) -> dict[str, torch.Tensor]:
    """Loads a state_dict (or a pytorch-fcn checkpoint holding one) with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: file not found")
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
