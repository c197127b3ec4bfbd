"""Reads the FCN paper's .caffemodel files natively, so its weights load without Caffe or the protobuf package."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fcn_viewer.errors import CaffeModelError, ShapeMismatchError, WeightsError

# Field numbers of caffe.proto (BVLC/caffe, src/caffe/proto/caffe.proto).
NET_LAYER = 100  # NetParameter.layer: repeated LayerParameter
NET_LAYERS = 2  # NetParameter.layers: repeated V1LayerParameter (deprecated)
LAYER_NAME, LAYER_BLOBS = 1, 7  # LayerParameter
V1_NAME, V1_BLOBS = 4, 6  # V1LayerParameter
LAYER_FIELDS = {NET_LAYER: (LAYER_NAME, LAYER_BLOBS), NET_LAYERS: (V1_NAME, V1_BLOBS)}  # name, blobs
BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH = 1, 2, 3, 4  # BlobProto, deprecated 4-D shape
BLOB_DATA, BLOB_SHAPE, BLOB_DOUBLE_DATA = 5, 7, 8  # BlobProto
SHAPE_DIM = 1  # BlobShape.dim: repeated int64

VARINT, I64, LEN, I32 = 0, 1, 2, 5  # protobuf wire types
WIRE_NAMES = {0: "varint", 1: "64-bit", 2: "length-delimited", 3: "group start", 4: "group end", 5: "32-bit"}
FIXED_WIDTH = {I64: 8, I32: 4}
MAX_VARINT_BYTES = 10


class _FormatError(Exception):
    """A problem in the bytes; read_caffemodel prefixes the file name and raises CaffeModelError."""


class _Truncated(_FormatError):
    """A field claims more bytes than its message has left."""


class _Reader:
    """Walks the fields of one protobuf message inside ``buf[pos:end]`` without copying payloads."""

    def __init__(self, buf: memoryview, what: str) -> None:
        self.buf = buf
        self.pos = 0
        self.end = len(buf)
        self.what = what

    def done(self) -> bool:
        return self.pos >= self.end

    def varint(self) -> int:
        result = 0
        for i in range(MAX_VARINT_BYTES):
            if self.pos >= self.end:
                raise _Truncated(f"truncated: a varint of {self.what} runs past its end")
            byte = self.buf[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << (7 * i)
            if byte < 0x80:
                if result >> 64:
                    break
                return result
        raise _FormatError(f"a varint of {self.what} is longer than 64 bits (at byte {self.pos} of it)")

    def tag(self) -> tuple[int, int]:
        """The next field's number and wire type; groups and unknown wire types are rejected."""
        key = self.varint()
        number, wire = key >> 3, key & 7
        if wire not in (VARINT, I64, LEN, I32):
            kind = WIRE_NAMES.get(wire, "unknown")
            raise _FormatError(f"field {number} of {self.what} has wire type {wire} ({kind}), which Caffe never writes")
        if number == 0:
            raise _FormatError(f"{self.what} has a field numbered 0")
        return number, wire

    def take(self, size: int, number: int) -> memoryview:
        left = self.end - self.pos
        if size > left:
            raise _Truncated(f"truncated: field {number} of {self.what} claims {size} bytes, only {left} left")
        start = self.pos
        self.pos += size
        return self.buf[start : self.pos]

    def value(self, number: int, wire: int) -> int | memoryview:
        """A varint as an int; the payload of any other wire type as a view."""
        if wire == VARINT:
            return self.varint()
        if wire == LEN:
            return self.take(self.varint(), number)
        return self.take(FIXED_WIDTH[wire], number)

    def expect(self, number: int, wire: int, expected: int) -> None:
        if wire != expected:
            raise _FormatError(
                f"field {number} of {self.what} is {WIRE_NAMES[wire]}, caffe.proto says {WIRE_NAMES[expected]}"
            )

    def fixed_run(self, tag_start: int, number: int, dtype: str) -> np.ndarray:
        """The values of an unpacked repeated float/double field whose first tag began at ``tag_start``.

        Writers repeat the same tag before every value, so the tags sit at a regular stride: one
        strided numpy comparison finds how long the run is (no Python loop per value), and one
        copy gathers the values out of the ``tag + value`` records.
        """
        width = np.dtype(dtype).itemsize
        if width > self.end - self.pos:
            raise _Truncated(
                f"truncated: field {number} of {self.what} needs {width} bytes, only {self.end - self.pos} left"
            )
        tag = np.frombuffer(self.buf[tag_start : self.pos], np.uint8)
        stride = len(tag) + width
        rest = np.frombuffer(self.buf[self.pos + width : self.end], np.uint8)
        whole = len(rest) // stride  # further records that fit entirely
        same = np.ones(whole, dtype=bool)
        for i, byte in enumerate(tag):
            same &= rest[i : i + whole * stride : stride] == byte
        count = 1 + (whole if same.all() else int(np.argmin(same)))
        records = np.frombuffer(self.buf[tag_start : tag_start + count * stride], np.uint8)
        self.pos = tag_start + count * stride
        return np.ascontiguousarray(records.reshape(count, stride)[:, len(tag) :]).view(dtype).reshape(-1)


@dataclass
class _Blob:
    """The fields of one BlobProto as found, before they become an array."""

    chunks: list[np.ndarray] = field(default_factory=list)
    double_chunks: list[np.ndarray] = field(default_factory=list)
    shape: tuple[int, ...] | None = None
    legacy: dict[int, int] = field(default_factory=dict)


def _floats(payload: memoryview, dtype: str, number: int, what: str) -> np.ndarray:
    """A packed run of little-endian floats or doubles as a read-only view of the file's buffer."""
    width = np.dtype(dtype).itemsize
    if len(payload) % width:
        raise _FormatError(f"packed field {number} of {what} has {len(payload)} bytes, not a multiple of {width}")
    return np.frombuffer(payload, dtype)


def _signed_dims(dims: list[int], what: str) -> tuple[int, ...]:
    """Varints as int64 (negative int32/int64 values are sign-extended to 10 bytes); none may be < 0."""
    signed = tuple(d - (1 << 64) if d >> 63 else d for d in dims)
    if any(d < 0 for d in signed):
        raise _FormatError(f"{what} has a negative dimension: {signed}")
    return signed


def _dims(payload: memoryview, what: str) -> tuple[int, ...]:
    """BlobShape: ``repeated int64 dim = 1``, packed or not."""
    reader = _Reader(payload, what)
    dims: list[int] = []
    while not reader.done():
        number, wire = reader.tag()
        value = reader.value(number, wire)
        if number != SHAPE_DIM:
            continue
        if isinstance(value, int):
            dims.append(value)
        elif wire == LEN:
            packed = _Reader(value, what)
            while not packed.done():
                dims.append(packed.varint())
        else:
            reader.expect(number, wire, VARINT)
    return _signed_dims(dims, what)


def _blob_fields(payload: memoryview, what: str) -> _Blob:
    reader = _Reader(payload, what)
    blob = _Blob()
    while not reader.done():
        tag_start = reader.pos
        number, wire = reader.tag()
        if number == BLOB_DATA and wire == I32:
            blob.chunks.append(reader.fixed_run(tag_start, number, "<f4"))
        elif number == BLOB_DOUBLE_DATA and wire == I64:
            blob.double_chunks.append(reader.fixed_run(tag_start, number, "<f8"))
        elif number == BLOB_DATA:
            reader.expect(number, wire, LEN)
            blob.chunks.append(_floats(reader.take(reader.varint(), number), "<f4", number, what))
        elif number == BLOB_DOUBLE_DATA:
            reader.expect(number, wire, LEN)
            blob.double_chunks.append(_floats(reader.take(reader.varint(), number), "<f8", number, what))
        elif number == BLOB_SHAPE:
            reader.expect(number, wire, LEN)
            blob.shape = _dims(reader.take(reader.varint(), number), f"the shape of {what}")
        elif number in (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH):
            reader.expect(number, wire, VARINT)
            blob.legacy[number] = reader.varint()
        else:
            reader.value(number, wire)
    return blob


def _strip_ones(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape without its leading 1s, keeping at least one dimension."""
    i = 0
    while i < len(shape) - 1 and shape[i] == 1:
        i += 1
    return shape[i:]


def _legacy_shape(legacy: dict[int, int], what: str) -> tuple[int, ...]:
    """num/channels/height/width (Caffe's defaults 0), less the leading 1s Caffe pads with.

    A bias is stored as (1, 1, 1, N) → (N,); an inner product as (1, 1, out, in) → (out, in);
    a convolution keeps (num, channels, h, w).
    """
    dims = [legacy.get(n, 0) for n in (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH)]
    return _strip_ones(_signed_dims(dims, what))


def _blob(payload: memoryview, what: str) -> np.ndarray:
    """One BlobProto as a float32 array of its shape.

    Packed float data stays a read-only view into the file's buffer (no copy of the ~540 MB);
    unpacked, double or multi-chunk data is copied into a new array.
    """
    blob = _blob_fields(payload, what)
    # Like Caffe's Blob::FromProto: double_data wins when present; a too-large double becomes inf.
    with np.errstate(over="ignore"):
        chunks = [c.astype(np.float32) for c in blob.double_chunks] or blob.chunks
    data = chunks[0] if len(chunks) == 1 else np.concatenate(chunks or [np.empty(0, np.float32)])
    if blob.shape is None and not blob.legacy and len(data):
        raise _FormatError(f"{what} has {len(data)} values but no shape")
    shape = blob.shape if blob.shape is not None else _legacy_shape(blob.legacy, what)
    if math.prod(shape) != len(data):
        raise _FormatError(f"{what} has {len(data)} values, its shape {shape} needs {math.prod(shape)}")
    try:
        return data.reshape(shape)
    except ValueError:  # an empty blob with absurd dimensions, e.g. (2**62, 0)
        raise _FormatError(f"{what} has an impossible shape {shape}") from None


def _layer(payload: memoryview, index: int, name_field: int, blobs_field: int) -> tuple[str, list[np.ndarray]]:
    """A LayerParameter or V1LayerParameter: its name and its blobs (empty for data, relu, loss...)."""
    reader = _Reader(payload, f"layer #{index}")
    name: str | None = None
    blobs: list[np.ndarray] = []
    while not reader.done():
        number, wire = reader.tag()
        if number == name_field:
            reader.expect(number, wire, LEN)
            raw = reader.take(reader.varint(), number)
            try:
                name = str(raw, "utf-8")
            except UnicodeDecodeError:
                raise _FormatError(f"the name of {reader.what} is not UTF-8 text") from None
            reader.what = f"layer {name!r}"
        elif number == blobs_field:
            reader.expect(number, wire, LEN)
            blob = reader.take(reader.varint(), number)
            blobs.append(_blob(blob, f"blob {len(blobs)} of {reader.what}"))
        else:
            reader.value(number, wire)
    if blobs and not name:
        raise _FormatError(f"{reader.what} has {len(blobs)} blobs but no name")
    return name or "", blobs


def _read_layer(reader: _Reader, number: int, index: int) -> tuple[str, list[np.ndarray]]:
    """Parses one layer; for a truncated one, reports the innermost field that runs past the end."""
    name_field, blobs_field = LAYER_FIELDS[number]
    size = reader.varint()
    left = reader.end - reader.pos
    if size > left:
        try:  # what is there names the layer and the field that was cut
            _layer(reader.buf[reader.pos : reader.end], index, name_field, blobs_field)
        except _Truncated:
            raise
        except _FormatError:  # e.g. a blob cut at a field boundary: the truncation is the news
            pass
        raise _Truncated(f"truncated: layer #{index} (field {number} of the net) claims {size} bytes, only {left} left")
    return _layer(reader.take(size, number), index, name_field, blobs_field)


def _net(buf: memoryview) -> dict[str, list[np.ndarray]]:
    """NetParameter: the layers with blobs, by name (a later duplicate wins, as in Caffe's copy)."""
    reader = _Reader(buf, "the net")
    layers: dict[str, list[np.ndarray]] = {}
    index = 0
    while not reader.done():
        number, wire = reader.tag()
        if number not in LAYER_FIELDS:
            reader.value(number, wire)
            continue
        reader.expect(number, wire, LEN)
        name, blobs = _read_layer(reader, number, index)
        index += 1
        if blobs:
            layers[name] = blobs
    if not layers:
        raise _FormatError(f"no layer with weights among its {index} layers: not a Caffe model?")
    return layers


# NetParameter's fields and their wire types: a Caffe model starts with one of them.
NET_FIELDS = {1: LEN, 2: LEN, 3: LEN, 4: VARINT, 5: VARINT, 6: LEN, 7: VARINT, 8: LEN, 100: LEN}


def _check_start(path: Path, head: bytes) -> None:
    """Refuses a file whose first field is not a NetParameter's, before the whole file is read."""
    if not head:
        raise CaffeModelError(f"{path}: empty file")
    try:
        number, wire = _Reader(memoryview(head), "the net").tag()
    except _FormatError as err:
        raise CaffeModelError(f"{path}: {err}") from None
    if number in NET_FIELDS and NET_FIELDS[number] != wire:
        raise CaffeModelError(
            f"{path}: field {number} of the net is {WIRE_NAMES[wire]}, caffe.proto says {WIRE_NAMES[NET_FIELDS[number]]}"
        )
    if number not in NET_FIELDS:
        raise CaffeModelError(f"{path}: does not start like a Caffe model (first bytes {head[:8].hex(' ')})")


def read_caffemodel(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Layer name → float32 blobs (weight, bias...) of a Caffe ``NetParameter`` file.

    Reads ``layer`` and legacy ``layers`` nets, packed or unpacked data, ``shape`` or legacy
    num/channels/height/width. The file is read with one ``read``; packed blobs are read-only
    views into that buffer, which the arrays keep alive. Any problem raises
    :class:`CaffeModelError` naming the file.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            _check_start(path, f.read(64))
            f.seek(0)
            data = f.read()
    except FileNotFoundError:
        raise CaffeModelError(f"{path}: no such file") from None
    except OSError as err:
        raise CaffeModelError(f"{path}: cannot read: {err.strerror or err}") from None
    if not data:
        raise CaffeModelError(f"{path}: empty file")
    try:
        return _net(memoryview(data))
    except _FormatError as err:
        raise CaffeModelError(f"{path}: {err}") from None


# -- mapping onto an FCN -----------------------------------------------------------------------


def _few(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _prefix(source: str) -> str:
    return f"{source}: " if source else ""


def _fits(found: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """Whether Caffe would accept ``found`` for ``expected``: equal up to leading 1s, or an
    inner product (out, in) for a convolution (out, c, h, w) with in = c·h·w (FCN's net surgery)."""
    if math.prod(found) != math.prod(expected):
        return False
    if _strip_ones(found) == _strip_ones(expected):
        return True
    return len(found) == 2 and len(expected) == 4 and found[0] == expected[0]


def _tensor(layer: str, array: np.ndarray, expected: tuple[int, ...], source: str) -> torch.Tensor:
    found = tuple(array.shape)
    if not _fits(found, expected):
        raise ShapeMismatchError(layer, expected, found, source)
    owned = np.array(array, dtype=np.float32, order="C", copy=True)  # aligned, writable, the file can go
    return torch.from_numpy(owned).reshape(expected)


def caffe_state_dict(
    blobs: dict[str, list[np.ndarray]], model: nn.Module, source: str = ""
) -> dict[str, torch.Tensor]:
    """The model's state_dict filled from Caffe blobs: blob 0 → ``<layer>.weight``, blob 1 → ``.bias``.

    Layer names must match the model's modules (Caffe names). Extra layers in the file are
    ignored, unless none of the model's layers is there. Models with batch norm have no Caffe
    counterpart and are refused.
    """
    where = _prefix(source)
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise WeightsError(f"{where}Caffe FCN weights have no batch norm, but this network has batch norm layers")
    learnable = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
    missing = [n for n in learnable if n not in blobs]
    if len(missing) == len(learnable):
        unknown = _few(sorted(blobs)) or "none"
        raise WeightsError(f"{where}a caffemodel of another network? unknown layers: {unknown}")
    if missing:
        raise WeightsError(f"{where}missing layers: {_few(missing)}")
    state: dict[str, torch.Tensor] = {}
    for name, module in learnable.items():
        params = [("weight", module.weight)] + ([("bias", module.bias)] if module.bias is not None else [])
        if len(blobs[name]) != len(params):
            needs = " and ".join(p for p, _ in params)
            raise WeightsError(f"{where}layer {name!r} has {len(blobs[name])} blobs, the network needs {needs}")
        for (param, tensor), array in zip(params, blobs[name]):
            state[f"{name}.{param}"] = _tensor(name, array, tuple(tensor.shape), source)
    return state


__all__ = ["caffe_state_dict", "read_caffemodel"]
