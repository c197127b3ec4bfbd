"""Checks what a weights file claims (metadata, sizes, shapes, values) against sane bounds before any
tensor is built from it, with messages that name the file and the field.

The bounds sit far above every FCN in use (VGG16 FCN-8s: 134 M parameters, 512 channels, 21 classes)
and far below what would exhaust memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fcn_viewer.errors import WeightsError
from fcn_viewer.model.config import VARIANTS, FCNConfig

MAX_CLASSES = 4096
MAX_CHANNELS = 4096  # per conv block
MAX_DEPTH = 4  # conv layers per block (VGG16: 2–3)
MAX_FC_WIDTH = 16384  # fc6/fc7 (VGG16: 4096)
MAX_FC6_KERNEL = 15  # (VGG16: 7)
MAX_PARAMETERS = 400_000_000  # 1.6 GB in float32
MAX_TEXT = 500  # characters of a name, title or class name
MAX_NESTING = 32  # of metrics and provenance
MAX_FILE_BYTES = 4 * 1024**3  # the paper's largest file is 0.54 GB

_CONFIG_KEYS = {"variant", "num_classes", "widths", "depths", "fc_width", "fc6_kernel", "batch_norm", "dropout",
                "padding"}


class SchemaError(ValueError):
    """One field of the metadata is wrong; the message names it (``config.widths[2]: ...``)."""


def meta_fields(data: object) -> dict[str, Any]:
    """The checked, normalised fields of a ModelMeta dict (see :meth:`ModelMeta.from_dict`), or SchemaError."""
    root = _mapping(data, "metadata")
    for key in ("name", "config", "classes", "palette", "preprocessing"):
        if key not in root:
            raise SchemaError(f"metadata: missing {key!r}")
    config = config_from_dict(root["config"])
    classes = _sequence(root["classes"], "classes", config.num_classes, config.num_classes)
    palette = _sequence(root["palette"], "palette", config.num_classes, MAX_CLASSES)
    return {
        "name": _text(root["name"], "name"),
        "title": _text(root.get("title", root["name"]), "title"),
        "config": config,
        "classes": tuple(_text(name, f"classes[{i}]") for i, name in enumerate(classes)),
        "palette": tuple(_color(entry, f"palette[{i}]") for i, entry in enumerate(palette)),
        "preprocessing": preprocessing_fields(root["preprocessing"]),
        "metrics": _nested(root.get("metrics", {}), "metrics"),
        "provenance": _nested(root.get("provenance", {}), "provenance"),
        "domain": _text(root.get("domain", ""), "domain"),
        "familiarity": _nested(root.get("familiarity", {}), "familiarity"),
    }


def config_from_dict(data: object) -> FCNConfig:
    """An FCNConfig from stored JSON, every field type- and range-checked, then its size bounded."""
    fields = _mapping(data, "config")
    unknown = set(fields) - _CONFIG_KEYS
    if unknown:
        raise SchemaError(f"config: unknown keys {sorted(map(str, unknown))}")
    values: dict[str, Any] = {}
    if "variant" in fields:
        values["variant"] = _choice(fields["variant"], "config.variant", VARIANTS)
    if "padding" in fields:
        values["padding"] = _choice(fields["padding"], "config.padding", ("paper", "same"))
    if "num_classes" in fields:
        values["num_classes"] = _integer(fields["num_classes"], "config.num_classes", 1, MAX_CLASSES)
    for key, top in (("widths", MAX_CHANNELS), ("depths", MAX_DEPTH)):
        if key in fields:
            items = _sequence(fields[key], f"config.{key}", 5, 5)
            values[key] = tuple(_integer(v, f"config.{key}[{i}]", 1, top) for i, v in enumerate(items))
    if "fc_width" in fields:
        values["fc_width"] = _integer(fields["fc_width"], "config.fc_width", 1, MAX_FC_WIDTH)
    if "fc6_kernel" in fields:
        values["fc6_kernel"] = _integer(fields["fc6_kernel"], "config.fc6_kernel", 1, MAX_FC6_KERNEL)
    if "batch_norm" in fields:
        if not isinstance(fields["batch_norm"], bool):
            raise SchemaError(f"config.batch_norm: expected true or false, found {_kind(fields['batch_norm'])}")
        values["batch_norm"] = fields["batch_norm"]
    if "dropout" in fields:
        values["dropout"] = _number(fields["dropout"], "config.dropout", 0.0, 1.0)
    try:
        config = FCNConfig(**values)
    except ValueError as error:
        raise SchemaError(f"config: {error}") from None
    check_config(config)
    return config


def preprocessing_fields(data: object) -> dict[str, Any]:
    fields = _mapping(data, "preprocessing")
    for key in ("channel_order", "scale", "mean", "std"):
        if key not in fields:
            raise SchemaError(f"preprocessing: missing {key!r}")
    mean = _sequence(fields["mean"], "preprocessing.mean", 3, 3)
    std = _sequence(fields["std"], "preprocessing.std", 3, 3)
    return {
        "channel_order": _choice(fields["channel_order"], "preprocessing.channel_order", ("RGB", "BGR")),
        "scale": _number(fields["scale"], "preprocessing.scale", 1e-6, 1e6),
        "mean": tuple(_number(v, f"preprocessing.mean[{i}]", -1e6, 1e6) for i, v in enumerate(mean)),
        "std": tuple(_number(v, f"preprocessing.std[{i}]", 1e-6, 1e6) for i, v in enumerate(std)),
    }


def check_config(config: FCNConfig) -> None:
    """Refuses a network over the size bounds, counting its parameters without allocating them."""
    problems = []
    if not 1 <= config.num_classes <= MAX_CLASSES:
        problems.append(f"{config.num_classes} classes (at most {MAX_CLASSES:,})")
    if any(not 1 <= w <= MAX_CHANNELS for w in config.widths):
        problems.append(f"block widths {config.widths} (each 1 … {MAX_CHANNELS:,})")
    if any(not 1 <= d <= MAX_DEPTH for d in config.depths):
        problems.append(f"block depths {config.depths} (each 1 … {MAX_DEPTH})")
    if not 1 <= config.fc_width <= MAX_FC_WIDTH:
        problems.append(f"fc width {config.fc_width} (at most {MAX_FC_WIDTH:,})")
    if not 1 <= config.fc6_kernel <= MAX_FC6_KERNEL:
        problems.append(f"fc6 kernel {config.fc6_kernel} (at most {MAX_FC6_KERNEL})")
    if problems:
        raise SchemaError("the network is out of bounds: " + "; ".join(problems))
    count = parameter_count(config)
    if count > MAX_PARAMETERS:
        raise SchemaError(f"the network would have {count:,} parameters (at most {MAX_PARAMETERS:,})")


def parameter_count(config: FCNConfig) -> int:
    """The exact number of parameters and buffers of ``config``'s net, counted on the meta device (no memory)."""
    return sum(math.prod(shape) for shape in state_shapes(config).values())


def state_shapes(config: FCNConfig) -> dict[str, tuple[int, ...]]:
    """The state_dict names and shapes of ``config``'s net, built on the meta device (no memory)."""
    from fcn_viewer.model.fcn import FCN

    class Unfilled(FCN):
        def reset_parameters(self) -> None:  # random init on the meta device would import torch._dynamo
            pass

    with torch.device("meta"):
        net = Unfilled(config)
    return {key: tuple(tensor.shape) for key, tensor in net.state_dict().items()}


def checked_config(config: FCNConfig, source: str | Path) -> FCNConfig:
    """``config`` if within the bounds, else a WeightsError naming ``source``."""
    try:
        check_config(config)
    except SchemaError as error:
        raise WeightsError(f"{source}: {error}") from None
    return config


def check_file_size(path: Path) -> None:
    size = os.stat(path).st_size
    if size > MAX_FILE_BYTES:
        raise WeightsError(f"{path}: {size / 1e9:.1f} GB is larger than any FCN weights file "
                           f"(at most {MAX_FILE_BYTES / 1e9:.1f} GB are read)")


def check_shapes(found: Mapping[str, tuple[int, ...]], expected: Mapping[str, torch.Size | tuple[int, ...]],
                 source: str) -> None:
    """The file's tensor names and shapes (read from its header) against the network's, before loading any."""
    from fcn_viewer.errors import ShapeMismatchError

    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        parts = ([f"missing {_few(missing)}"] if missing else []) + ([f"unexpected {_few(unexpected)}"] if unexpected else [])
        raise WeightsError(f"{source}: weights do not fit the network: {'; '.join(parts)}")
    for key, shape in expected.items():
        if tuple(found[key]) != tuple(shape):
            raise ShapeMismatchError(key, tuple(shape), tuple(found[key]), source)


def check_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuses weights holding NaN or infinity: the net would give one class everywhere, silently."""
    bad = [key for key, tensor in state.items() if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if bad:
        raise WeightsError(f"{source}: NaN or infinite values in {_few(bad)}; the file is damaged")


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError(f"{where}: expected an object, found {_kind(value)}")
    return value


def _sequence(value: object, where: str, low: int, high: int) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise SchemaError(f"{where}: expected a list, found {_kind(value)}")
    if not low <= len(value) <= high:
        wanted = f"{low}" if low == high else f"{low} … {high}"
        raise SchemaError(f"{where}: {len(value)} entries, expected {wanted}")
    return list(value)


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise SchemaError(f"{where}: expected text, found {_kind(value)}")
    if len(value) > MAX_TEXT:
        raise SchemaError(f"{where}: {len(value)} characters (at most {MAX_TEXT})")
    return value


def _choice(value: object, where: str, choices: tuple[str, ...]) -> Any:
    if value not in choices or not isinstance(value, str):
        raise SchemaError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


def _integer(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(f"{where}: expected an integer, found {_kind(value)} {value!r:.40}")
    if not low <= value <= high:
        raise SchemaError(f"{where}: {value} is out of range ({low} … {high:,})")
    return value


def _number(value: object, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(f"{where}: expected a number, found {_kind(value)} {value!r:.40}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise SchemaError(f"{where}: {value} is out of range ({low:g} … {high:g})")
    return number


def _color(value: object, where: str) -> tuple[int, int, int]:
    channels = _sequence(value, where, 3, 3)
    red, green, blue = (_integer(c, f"{where}[{i}]", 0, 255) for i, c in enumerate(channels))
    return red, green, blue


def _nested(value: object, where: str) -> dict[str, Any]:
    """A JSON object of any content, at most MAX_NESTING deep (checked without recursion)."""
    root = _mapping(value, where)
    stack: list[tuple[object, int]] = [(root, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            raise SchemaError(f"{where}: nested more than {MAX_NESTING} levels deep")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return root
