"""pytorch-fcn ``.pth`` state_dicts, loaded without ever unpickling arbitrary objects."""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path

import torch

from fcn_viewer.errors import WeightsError
from fcn_viewer.weights.validate import MAX_FILE_BYTES

CHECKPOINT_KEYS = ("model_state_dict", "state_dict")
_GLOBAL = re.compile(r"unsupported (?:global:? )?GLOBAL ([\w.]+)", re.IGNORECASE)  # torch names the object it stopped at
_ADVICE = re.compile(r"weights_only|trusted source|torch\.load", re.IGNORECASE)


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


def load_refusal(path: Path, error: Exception) -> WeightsError:
    """Our one-line reason why torch's safe loader refused ``path``. Torch's own message is never passed on: it
    advises loading with ``weights_only=False``, which would run whatever code the file holds."""
    text = str(error)
    found = _GLOBAL.search(text)
    if found:
        return WeightsError(f"{path}: refused to load: it holds a Python object ({found[1]}) besides tensors, and "
                            "loading such objects could run code")
    if isinstance(error, pickle.UnpicklingError):
        return WeightsError(f"{path}: refused to load: not a plain state_dict of tensors (it holds data that only "
                            "a loader running its code could read), or not a PyTorch file at all")
    if "legacy .tar format" in text:
        return WeightsError(f"{path}: not a PyTorch weights file that can be read safely (PyTorch's old .tar "
                            "format, which is not read, or not a PyTorch file at all)")
    reason = next((line.strip() for line in text.splitlines() if line.strip() and not _ADVICE.search(line)), "")
    if not isinstance(error, RuntimeError | OSError | EOFError | ValueError):
        reason = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
    return WeightsError(f"{path}: not a readable PyTorch weights file ({reason[:200] or type(error).__name__})")


def load_pth(path: str | Path) -> dict[str, torch.Tensor]:
    """Loads a state_dict (or a pytorch-fcn checkpoint holding one) with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: file not found")
    _check_archive(path)
    try:
        with warnings.catch_warnings():  # e.g. torch's note on a pickle protocol: the error below says what matters
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as error:  # whatever torch or pickle raise on a hostile file
        raise load_refusal(path, error) from None
    if isinstance(data, dict):
        for key in CHECKPOINT_KEYS:
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"{path}: does not hold a state_dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in data.items()}
