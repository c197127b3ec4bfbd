"""Test-only encoder of Caffe NetParameter files, in every layout read_caffemodel must accept."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

Form = Literal["layer", "layers"]


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 → two's complement, as protobuf does
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def field_varint(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def field_bytes(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def encode_blob(
    array: np.ndarray,
    *,
    packed: bool = True,
    legacy_dims: bool = False,
    double: bool = False,
    shape: tuple[int, ...] | None = None,
) -> bytes:
    """A BlobProto of ``array``; ``shape`` overrides the recorded shape (to write broken blobs)."""
    shape = tuple(array.shape) if shape is None else shape
    if legacy_dims:
        if len(shape) > 4:
            raise ValueError("legacy num/channels/height/width holds at most 4 dimensions")
        padded = (1,) * (4 - len(shape)) + shape
        out = b"".join(field_varint(number, dim) for number, dim in zip((1, 2, 3, 4), padded))
    elif packed:
        out = field_bytes(7, field_bytes(1, b"".join(varint(d) for d in shape)))
    else:
        out = field_bytes(7, b"".join(field_varint(1, d) for d in shape))
    number, wire, dtype = (8, 1, "<f8") if double else (5, 5, "<f4")
    values = np.ascontiguousarray(array, dtype=dtype).reshape(-1)
    if packed:
        return out + field_bytes(number, values.tobytes())
    records = np.empty((len(values), 1 + values.itemsize), np.uint8)  # a one-byte tag before each value
    records[:, 0] = number << 3 | wire
    records[:, 1:] = values.view(np.uint8).reshape(len(values), values.itemsize)
    return out + records.tobytes()


def encode_layer(name: str, blobs: list[bytes], form: Form = "layer") -> bytes:
    """A LayerParameter (net field 100) or a V1LayerParameter (net field 2), with type and tops."""
    if form == "layer":
        body = field_bytes(1, name.encode()) + field_bytes(2, b"Convolution") + field_bytes(3, b"in")
        body += field_bytes(4, name.encode()) + b"".join(field_bytes(7, b) for b in blobs)
        return field_bytes(100, body)
    body = field_bytes(2, b"in") + field_bytes(3, name.encode()) + field_bytes(4, name.encode())
    body += field_varint(5, 4) + b"".join(field_bytes(6, b) for b in blobs)
    return field_bytes(2, body)


def encode_net(
    layers: dict[str, list[np.ndarray]],
    *,
    form: Form = "layer",
    packed: bool = True,
    legacy_dims: bool = False,
    double: bool = False,
) -> bytes:
    """A NetParameter named "test" holding ``layers`` in order (an empty list: a layer without blobs)."""
    options = {"packed": packed, "legacy_dims": legacy_dims, "double": double}
    net = field_bytes(1, b"test")
    for name, arrays in layers.items():
        net += encode_layer(name, [encode_blob(a, **options) for a in arrays], form)
    return net


def write_caffemodel(
    path: Path,
    layers: dict[str, list[np.ndarray]],
    *,
    form: Form = "layer",
    packed: bool = True,
    legacy_dims: bool = False,
    double: bool = False,
) -> Path:
    """Writes :func:`encode_net` of ``layers`` to ``path`` and returns the path."""
    path.write_bytes(encode_net(layers, form=form, packed=packed, legacy_dims=legacy_dims, double=double))
    return path
