"""Hostile weights files: malformed or oversized metadata, wrong shapes, NaN values, foreign bytes, fuzz."""

from __future__ import annotations

import copy
import json
import resource
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save

from fcn_viewer.errors import FCNViewerError, ShapeMismatchError, WeightsError
from fcn_viewer.weights import validate
from fcn_viewer.weights.loader import load_weights_file
from fcn_viewer.weights.native import METADATA_KEY
from tests.helpers import random_model, tiny_compact_config, tiny_meta

CONFIG = tiny_compact_config()
STATE = {key: value.detach().clone() for key, value in random_model(CONFIG).state_dict().items()}
META = tiny_meta(CONFIG).to_dict()


def write(path: Path, meta: Any = None, state: dict[str, torch.Tensor] | None = None,
          version: str = "1", raw_meta: str | None = None) -> Path:
    text = raw_meta if raw_meta is not None else json.dumps(META if meta is None else meta)
    path.write_bytes(save(STATE if state is None else state, metadata={METADATA_KEY: text, "format_version": version}))
    return path


def changed(path: list[str | int], value: Any) -> dict[str, Any]:
    meta = copy.deepcopy(META)
    target = meta
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return meta


@pytest.mark.parametrize(("path", "value", "message"), [
    (["palette", 0, 1], 300, r"palette\[0\]\[1\]: 300 is out of range"),
    (["palette", 0], [1, 2], r"palette\[0\]: 2 entries, expected 3"),
    (["palette", 0], [], r"palette\[0\]: 0 entries"),
    (["palette", 0, 0], 1.5, r"palette\[0\]\[0\]: expected an integer, found a number"),
    (["palette"], [[1, 2, 3]] * 5000, r"palette: 5000 entries"),
    (["config", "num_classes"], "eleven", r"config.num_classes: expected an integer, found text"),
    (["config", "num_classes"], 70000, r"config.num_classes: 70000 is out of range"),
    (["config", "widths"], [100000] * 5, r"config.widths\[0\]: 100000 is out of range"),
    (["config", "widths"], [4096] * 5, r"the network would have [0-9,]+ parameters \(at most"),
    (["config", "depths"], [2, 2, 3], r"config.depths: 3 entries, expected 5"),
    (["config", "fc_width"], 10**12, r"config.fc_width: 1000000000000 is out of range"),
    (["config", "variant"], "fcn4s", r"config.variant: 'fcn4s' is not one of"),
    (["config", "batch_norm"], "yes", r"config.batch_norm: expected true or false"),
    (["classes"], ["a"] * 3, r"classes: 3 entries, expected 11"),
    (["preprocessing", "std"], [0.0, 1.0, 1.0], r"preprocessing.std\[0\]: 0.0 is out of range"),
    (["preprocessing", "mean"], [float("nan"), 0, 0], r"preprocessing.mean\[0\]: nan is out of range"),
    (["preprocessing"], "RGB", r"preprocessing: expected an object, found text"),
    (["name"], {"a": 1}, r"name: expected text, found an object"),
])
def test_malformed_metadata_is_named_field_by_field(tmp_path: Path, path: list[str | int], value: Any, message: str) -> None:
    file = write(tmp_path / "bad.safetensors", changed(path, value))
    with pytest.raises(WeightsError, match=r"bad.safetensors: invalid fcn-viewer metadata \(" + message):
        load_weights_file(file)


def test_a_long_palette_is_cut_to_the_classes(tmp_path: Path) -> None:
    file = write(tmp_path / "long.safetensors", changed(["palette"], [[1, 2, 3]] * 300))
    assert len(load_weights_file(file).meta.palette) == CONFIG.num_classes


def test_deeply_nested_metadata_is_refused_without_recursion_error(tmp_path: Path) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    file = write(tmp_path / "deep.safetensors", raw_meta=json.dumps(META)[:-1] + f', "metrics": {{"x": {nested}}}}}')
    with pytest.raises(WeightsError, match=r"deep.safetensors: invalid fcn-viewer metadata .*nested"):
        load_weights_file(file)
    shallow = write(tmp_path / "shallow.safetensors", changed(["metrics"], {"a": [[[[[[[[[[1]]]]]]]]]]}))
    assert load_weights_file(shallow).meta.metrics["a"]


@pytest.mark.parametrize("version", ["1.5", "one", "", "99999999999999999999"])
def test_a_non_integer_format_version_is_refused(tmp_path: Path, version: str) -> None:
    with pytest.raises(WeightsError, match=r"format_version|newer fcn-viewer"):
        load_weights_file(write(tmp_path / "v.safetensors", version=version))


def test_huge_claimed_sizes_are_refused_before_allocating(tmp_path: Path) -> None:
    file = write(tmp_path / "huge.safetensors", changed(["config"], {**META["config"], "widths": [4096] * 5,
                                                                      "fc_width": 16384, "num_classes": 4096}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(WeightsError, match="parameters"):
        load_weights_file(file)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: no tensor was built


def test_shapes_are_checked_against_the_header_before_loading(tmp_path: Path) -> None:
    state = dict(STATE)
    key = next(k for k in state if k.endswith("weight"))
    state[key] = torch.zeros(3, 3)
    with pytest.raises(ShapeMismatchError, match=f"layer '{key}'"):
        load_weights_file(write(tmp_path / "shape.safetensors", state=state))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path: Path, value: float) -> None:
    state = dict(STATE)
    key = next(k for k in state if k.endswith("weight"))
    state[key] = state[key].clone()
    state[key].view(-1)[0] = value
    with pytest.raises(WeightsError, match=f"NaN or infinite values in {key}"):
        load_weights_file(write(tmp_path / "nan.safetensors", state=state))


def test_a_foreign_file_named_caffemodel_is_refused_from_its_first_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.caffemodel"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 1000)
    with pytest.raises(WeightsError, match=r"big.caffemodel: does not start like a Caffe model"):
        load_weights_file(path)


@pytest.mark.parametrize("suffix", [".caffemodel", ".pth", ".safetensors"])
def test_files_larger_than_any_fcn_are_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str) -> None:
    monkeypatch.setattr(validate, "MAX_FILE_BYTES", 100)
    path = tmp_path / f"large{suffix}"
    path.write_bytes(b"\x0a" * 200)
    with pytest.raises(WeightsError, match="is larger than any FCN weights file"):
        load_weights_file(path)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from([
    ["name"], ["title"], ["config"], ["config", "num_classes"], ["config", "widths"], ["config", "widths", 0],
    ["config", "depths"], ["config", "fc_width"], ["config", "fc6_kernel"], ["config", "variant"],
    ["config", "padding"], ["config", "dropout"], ["config", "batch_norm"], ["classes"], ["classes", 0],
    ["palette"], ["palette", 0], ["palette", 0, 2], ["preprocessing"], ["preprocessing", "std"],
    ["preprocessing", "mean", 1], ["preprocessing", "scale"], ["preprocessing", "channel_order"], ["metrics"],
    ["provenance"],
])


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(FIELDS, JSON), min_size=1, max_size=3), version=st.sampled_from(["1", "0", "x", "2"]))
def test_fuzzed_safetensors_metadata_only_raises_project_errors(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[list[str | int], Any]], version: str
) -> None:
    meta: Any = copy.deepcopy(META)
    for path, value in edits:
        target = meta
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        text = json.dumps(meta)
    except ValueError:
        return
    file = write(tmp_path_factory.mktemp("meta", numbered=True) / "fuzz.safetensors", raw_meta=text, version=version)
    try:
        loaded = load_weights_file(file)
    except FCNViewerError as error:
        assert "fuzz.safetensors" in str(error)
    else:
        assert loaded.meta.config.num_classes == len(loaded.meta.classes) <= len(loaded.meta.palette)


def test_a_pth_zip_that_unpacks_past_the_bound_is_refused_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    from fcn_viewer.weights import pth

    monkeypatch.setattr(pth, "MAX_FILE_BYTES", 10_000)
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", b"\0" * 1_000_000)
    assert path.stat().st_size < 10_000
    with pytest.raises(WeightsError, match=r"bomb.pth: unpacks to 0.0 GB, more than any FCN weights file"):
        load_weights_file(path)


def _pth_bytes(kind: str) -> bytes:
    import os
    import pickle

    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)  # the legacy format's first record
    return {
        "nul": b"\0" * 4096,
        "random": os.urandom(4096),
        "text": b"hello world\n" * 100,
        "object": pickle.dumps({"conv1.weight": os.system}, protocol=2),
        "object-protocol-5": pickle.dumps({"conv1.weight": os.system}, protocol=5),
        "legacy": magic + pickle.dumps(1001, protocol=2) + pickle.dumps({"x": os.system}, protocol=2),
    }[kind]


@pytest.mark.parametrize("kind", ["nul", "random", "text", "object", "object-protocol-5", "legacy", "sparse-2gb"])
def test_a_refused_pth_gets_one_line_of_ours_never_torchs_weights_only_advice(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.pth"
    if kind == "sparse-2gb":
        with open(path, "wb") as file:
            file.truncate(2 << 30)  # 2 GB of NUL bytes, not zip: no disk used
    else:
        path.write_bytes(_pth_bytes(kind))
    with pytest.raises(WeightsError) as info:
        load_weights_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "weights_only" not in message and "trusted" not in message.lower() and "torch.load" not in message
    if kind.startswith("object"):
        assert "refused to load" in message and (".system)" in message or kind == "object-protocol-5")
