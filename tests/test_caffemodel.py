"""read_caffemodel and caffe_state_dict on files written in every Caffe layout, and on broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from fcn_viewer.errors import CaffeModelError, ShapeMismatchError, WeightsError
from fcn_viewer.model import FCN, FCNConfig, build_fcn
from fcn_viewer.weights.caffemodel import caffe_state_dict, read_caffemodel
from tests.caffe_writer import (
    encode_blob,
    encode_layer,
    encode_net,
    field_bytes,
    tag,
    varint,
    write_caffemodel,
)

SMALL = {"variant": "fcn8s", "num_classes": 5, "widths": (4, 4, 8, 8, 8), "fc_width": 16, "padding": "paper"}
ENCODINGS = [
    pytest.param(form, packed, legacy, id=f"{form}-{('unpacked', 'packed')[packed]}-{('shape', 'dims')[legacy]}")
    for form in ("layer", "layers")
    for packed in (True, False)
    for legacy in (False, True)
]


def small_model(variant: str = "fcn8s", seed: int = 0) -> FCN:
    """A paper-style FCN with real layer names, tiny widths, and every parameter random."""
    model = build_fcn(FCNConfig(**{**SMALL, "variant": variant}))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return model


def model_blobs(model: nn.Module) -> dict[str, list[np.ndarray]]:
    """The Caffe blobs of a model: weight then bias per conv/deconv layer, with data/relu/loss layers around."""
    layers: dict[str, list[np.ndarray]] = {"data": []}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            params = [module.weight] + ([module.bias] if module.bias is not None else [])
            layers[name] = [p.detach().numpy().copy() for p in params]
            layers[f"relu_after_{name}"] = []
    layers["loss"] = []
    return layers


def stage_outputs(model: FCN) -> dict[str, torch.Tensor]:
    image = torch.randn(1, 3, 40, 36, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.forward_stages(image).tensors


def load(path: Path, model: FCN) -> None:
    model.load_state_dict(caffe_state_dict(read_caffemodel(path), model, str(path)), strict=True)


@pytest.fixture(scope="module")
def reference() -> tuple[FCN, dict[str, list[np.ndarray]], dict[str, torch.Tensor]]:
    model = small_model()
    return model, model_blobs(model), stage_outputs(model)


def assert_same_outputs(expected: dict[str, torch.Tensor], model: FCN) -> None:
    found = stage_outputs(model)
    assert list(found) == list(expected)
    for key, tensor in expected.items():
        torch.testing.assert_close(found[key], tensor, rtol=1e-6, atol=1e-6, msg=key)


# -- loading -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("form", "packed", "legacy_dims"), ENCODINGS)
def test_every_encoding_reproduces_the_outputs(tmp_path, reference, form, packed, legacy_dims):
    _model, blobs, expected = reference
    path = write_caffemodel(tmp_path / "fcn8s.caffemodel", blobs, form=form, packed=packed, legacy_dims=legacy_dims)
    fresh = small_model(seed=7)
    load(path, fresh)
    assert_same_outputs(expected, fresh)


@pytest.mark.parametrize("variant", ["fcn32s", "fcn16s", "fcn8s-atonce"])
def test_other_variants_load(tmp_path, variant):
    model = small_model(variant)
    path = write_caffemodel(tmp_path / f"{variant}.caffemodel", model_blobs(model))
    fresh = small_model(variant, seed=3)
    load(path, fresh)
    assert_same_outputs(stage_outputs(model), fresh)


def test_layers_without_blobs_are_skipped(tmp_path, reference):
    _, blobs, _ = reference
    found = read_caffemodel(write_caffemodel(tmp_path / "net.caffemodel", blobs))
    assert "data" not in found and "loss" not in found and "relu_after_fc6" not in found
    assert list(found) == [name for name, arrays in blobs.items() if arrays]
    for name, arrays in found.items():
        for array, original in zip(arrays, blobs[name], strict=True):
            assert array.dtype == np.float32 and array.shape == original.shape
            np.testing.assert_array_equal(array, original)


def test_legacy_dims_drop_the_leading_ones(tmp_path):
    layers = {
        "bias": [np.arange(7, dtype=np.float32)],
        "fc": [np.ones((3, 5), np.float32)],
        "conv": [np.ones((1, 2, 3, 3), np.float32)],
    }
    found = read_caffemodel(write_caffemodel(tmp_path / "legacy.caffemodel", layers, legacy_dims=True))
    assert [found[name][0].shape for name in layers] == [(7,), (3, 5), (2, 3, 3)]


def test_double_data_is_read_as_float32(tmp_path):
    values = np.linspace(-1, 1, 12).reshape(3, 4)
    for packed in (True, False):
        path = write_caffemodel(tmp_path / "d.caffemodel", {"x": [values]}, double=True, packed=packed)
        found = read_caffemodel(path)
        assert found["x"][0].dtype == np.float32
        np.testing.assert_array_equal(found["x"][0], values.astype(np.float32))


def test_split_and_mixed_data_chunks_are_concatenated(tmp_path):
    values = np.arange(10, dtype=np.float32)
    blob = field_bytes(7, field_bytes(1, varint(10)))
    blob += field_bytes(5, values[:3].tobytes())  # packed chunk
    blob += b"".join(tag(5, 5) + v.tobytes() for v in values[3:7])  # unpacked run
    blob += field_bytes(6, b"")  # an interrupting field (diff)
    blob += b"".join(tag(5, 5) + v.tobytes() for v in values[7:])  # another run
    path = tmp_path / "mixed.caffemodel"
    path.write_bytes(field_bytes(100, field_bytes(1, b"x") + field_bytes(7, blob)))
    np.testing.assert_array_equal(read_caffemodel(path)["x"][0], values)


def test_big_unpacked_blob(tmp_path):
    values = np.random.default_rng(0).standard_normal((1000, 1000)).astype(np.float32)
    path = write_caffemodel(tmp_path / "big.caffemodel", {"fc": [values]}, packed=False)
    np.testing.assert_array_equal(read_caffemodel(path)["fc"][0], values)


def test_fully_connected_fc6_is_reshaped(tmp_path, reference):
    _model, blobs, expected = reference
    flat = dict(blobs)
    flat["fc6"] = [blobs["fc6"][0].reshape(blobs["fc6"][0].shape[0], -1), blobs["fc6"][1]]
    path = write_caffemodel(tmp_path / "surgery.caffemodel", flat, legacy_dims=True)
    assert read_caffemodel(path)["fc6"][0].ndim == 2
    fresh = small_model(seed=5)
    load(path, fresh)
    assert_same_outputs(expected, fresh)


def test_state_dict_tensors_are_float32_and_contiguous(tmp_path, reference):
    model, blobs, _ = reference
    state = caffe_state_dict(read_caffemodel(write_caffemodel(tmp_path / "m.caffemodel", blobs)), model)
    assert set(state) == set(model.state_dict())
    assert all(t.dtype == torch.float32 and t.is_contiguous() for t in state.values())


def test_extra_layers_are_ignored(reference):
    model, blobs, _ = reference
    state = caffe_state_dict({**blobs, "fc8": [np.ones((1000, 4096), np.float32)]}, model)
    assert set(state) == set(model.state_dict())


# -- mapping errors ----------------------------------------------------------------------------


def test_another_network_raises_weights_error(tmp_path, reference):
    model, _, _ = reference
    lenet = {"conv1": [np.ones((2, 1, 5, 5), np.float32)], "ip1": [np.ones((3, 4), np.float32)]}
    path = write_caffemodel(tmp_path / "lenet.caffemodel", lenet)
    expected = r"lenet\.caffemodel: a caffemodel of another network\? unknown layers: conv1, ip1$"
    with pytest.raises(WeightsError, match=expected):
        caffe_state_dict(read_caffemodel(path), model, str(path))


def test_missing_layers_are_listed(reference):
    model, blobs, _ = reference
    partial = {k: v for k, v in blobs.items() if k not in ("score_pool3", "upscore8")}
    with pytest.raises(WeightsError, match=r"fcn8s\.caffemodel: missing layers: score_pool3, upscore8"):
        caffe_state_dict(partial, model, "fcn8s.caffemodel")


@pytest.mark.parametrize(
    ("layer", "shape"),
    [("fc7", (16, 16, 1, 2)), ("fc6", (8 * 7 * 7, 16)), ("conv1_1", (3, 4, 3, 3)), ("score_fr", (6,))],
)
def test_shape_mismatch_names_the_layer_and_both_shapes(reference, layer, shape):
    model, blobs, _ = reference
    broken = dict(blobs)
    index = 1 if len(shape) == 1 else 0
    broken[layer] = list(blobs[layer])
    broken[layer][index] = np.zeros(shape, np.float32)
    expected = tuple(blobs[layer][index].shape)
    with pytest.raises(ShapeMismatchError) as info:
        caffe_state_dict(broken, model, "net.caffemodel")
    assert info.value.layer == layer and info.value.found == shape and info.value.expected == expected
    assert all(s in str(info.value) for s in (repr(layer), "net.caffemodel", str(shape), str(expected)))


def test_wrong_blob_count_raises(reference):
    model, blobs, _ = reference
    with pytest.raises(WeightsError, match=r"layer 'fc7' has 1 blobs, the network needs weight and bias"):
        caffe_state_dict({**blobs, "fc7": blobs["fc7"][:1]}, model, "net.caffemodel")


def test_batch_norm_models_are_refused():
    model = build_fcn(FCNConfig(**{**SMALL, "batch_norm": True}))
    with pytest.raises(WeightsError, match="batch norm"):
        caffe_state_dict(model_blobs(model), model, "x.caffemodel")


# -- file errors -------------------------------------------------------------------------------


def negative_legacy_blob() -> bytes:
    """A legacy BlobProto with num = -1, as an int32 is sign-extended on the wire."""
    return tag(1, 0) + varint(-1) + tag(2, 0) + varint(1)


def read_error(path: Path) -> str:
    with pytest.raises(CaffeModelError) as info:
        read_caffemodel(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_missing_and_unreadable_files(tmp_path):
    assert "no such file" in read_error(tmp_path / "absent.caffemodel")
    assert "cannot read" in read_error(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.caffemodel"
    path.write_bytes(b"")
    assert "empty file" in read_error(path)


def test_truncated_file_names_the_layer_and_field(tmp_path):
    layers = {"conv1_1": [np.ones((4, 3, 3, 3), np.float32)], "fc6": [np.ones((16, 8, 7, 7), np.float32)]}
    data = encode_net(layers)
    path = tmp_path / "fcn8s.caffemodel"
    path.write_bytes(data[: len(data) - 1000])
    message = read_error(path)
    assert "truncated: field 7 of layer 'fc6' claims" in message and "bytes, only" in message


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_anywhere(tmp_path, reference, keep):
    data = encode_net(reference[1], packed=False)
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(data[: int(len(data) * keep)])
    assert "truncated" in read_error(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.caffemodel"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    read_error(path)


def test_length_past_end(tmp_path):
    path = tmp_path / "long.caffemodel"
    path.write_bytes(tag(100, 2) + varint(1000) + field_bytes(1, b"fc6"))
    assert "truncated: layer #0 (field 100 of the net) claims 1000 bytes, only 5 left" in read_error(path)
    blob = field_bytes(7, field_bytes(1, varint(4))) + tag(5, 2) + varint(16) + b"\0" * 8
    path.write_bytes(encode_layer("fc6", [blob]))
    assert "truncated: field 5 of blob 0 of layer 'fc6' claims 16 bytes, only 8 left" in read_error(path)


def test_data_count_differs_from_shape(tmp_path):
    path = tmp_path / "count.caffemodel"
    blob = encode_blob(np.ones(5, np.float32), shape=(2, 3))
    path.write_bytes(encode_layer("fc7", [blob]))
    assert "blob 0 of layer 'fc7' has 5 values, its shape (2, 3) needs 6" in read_error(path)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff" * 11, "longer than 64 bits"),
        (b"\xff" * 9 + b"\x02", "longer than 64 bits"),
        (tag(100, 3), "wire type 3 (group start)"),
        (tag(100, 4), "wire type 4 (group end)"),
        (tag(9, 6), "wire type 6"),
        (tag(0, 0) + varint(1), "field numbered 0"),
        (tag(100, 0) + varint(1), "field 100 of the net is varint"),
        (field_bytes(100, field_bytes(1, b"\xff\xfe")), "not UTF-8"),
        (field_bytes(100, field_bytes(7, encode_blob(np.ones(2, np.float32)))), "no name"),
        (field_bytes(100, field_bytes(1, b"x") + field_bytes(7, field_bytes(5, b"\0" * 6))), "not a multiple of 4"),
        (field_bytes(100, field_bytes(1, b"x") + field_bytes(7, field_bytes(5, b"\0" * 8))), "values but no shape"),
        (field_bytes(1, b"only a name") + field_bytes(100, field_bytes(1, b"data")), "no layer with weights"),
        (field_bytes(100, field_bytes(1, b"x") + field_bytes(7, negative_legacy_blob())), "negative dimension"),
    ],
)
def test_malformed_files(tmp_path, data, problem):
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(data)
    assert problem in read_error(path)


# -- fuzzing -----------------------------------------------------------------------------------

SEED_FILES = [
    encode_net({"data": [], "conv": [np.arange(6, dtype=np.float32).reshape(1, 2, 3), np.ones(2, np.float32)]}, **opts)
    for opts in (
        {},
        {"form": "layers", "packed": False},
        {"legacy_dims": True, "packed": False},
        {"form": "layers", "legacy_dims": True, "double": True},
    )
]
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # deterministic: the same 300 examples on every run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # each example rewrites the same file
)


def only_caffemodel_errors(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        result = read_caffemodel(path)
    except CaffeModelError as err:
        assert str(path) in str(err)
    else:
        assert result and all(isinstance(a, np.ndarray) and a.dtype == np.float32 for b in result.values() for a in b)


@FUZZ
@given(data=st.binary(max_size=600))
def test_fuzz_random_bytes(tmp_path, data):
    only_caffemodel_errors(tmp_path / "fuzz.caffemodel", data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEED_FILES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x0B, 0x0C, 0x2D, 0x41]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return bytes(data)


@FUZZ
@given(data=mutated())
def test_fuzz_mutated_files(tmp_path, data):
    only_caffemodel_errors(tmp_path / "fuzz.caffemodel", data)
