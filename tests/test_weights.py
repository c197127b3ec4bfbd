"""Weight formats: native safetensors, pytorch-fcn .pth, the registry, and clear errors on misfits."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from fcn_viewer.errors import ShapeMismatchError, WeightsError
from fcn_viewer.weights.loader import apply_state_dict, load_model, load_weights_file
from fcn_viewer.weights.meta import CAFFE_PREPROCESSING, ModelMeta
from fcn_viewer.weights.native import load_native, read_native_meta, save_native
from fcn_viewer.weights.registry import DEFAULT_MODEL, ENTRIES, entry
from tests.helpers import random_model, tiny_compact_config, tiny_meta, tiny_paper_config


def test_native_file_round_trips_weights_and_metadata(tmp_path: Path) -> None:
    config = tiny_compact_config("fcn16s")
    model = random_model(config)
    meta = tiny_meta(config)
    path = save_native(tmp_path / "m.safetensors", model.state_dict(), meta)
    assert read_native_meta(path) == meta
    state, loaded_meta = load_native(path)
    assert loaded_meta.config == config and loaded_meta.palette == meta.palette
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            assert state[key].dtype == torch.float32
            assert torch.allclose(state[key], value.half().float())
        else:
            assert torch.equal(state[key], value)
    loaded = load_weights_file(path)
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), model.half().float()(x), atol=1e-3)


def test_native_file_without_metadata_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(WeightsError, match=r"bare.safetensors.*without fcn-viewer metadata"):
        load_weights_file(tmp_path / "bare.safetensors")


def test_pytorch_fcn_state_dict_loads_strictly_and_infers_the_variant(tmp_path: Path) -> None:
    for variant in ("fcn32s", "fcn16s", "fcn8s"):
        source = random_model(tiny_paper_config(variant, num_classes=21))
        torch.save(source.state_dict(), tmp_path / f"{variant}.pth")
        loaded = load_weights_file(tmp_path / f"{variant}.pth")
        assert loaded.model.config.variant == variant
        assert loaded.meta.preprocessing == CAFFE_PREPROCESSING
        assert loaded.meta.classes[15] == "person"
        x = torch.randn(1, 3, 48, 48)
        with torch.no_grad():
            assert torch.equal(loaded.model(x), source(x))


def test_pytorch_fcn_checkpoint_dict_is_unwrapped(tmp_path: Path) -> None:
    source = random_model(tiny_paper_config("fcn8s", num_classes=21))
    torch.save({"epoch": 3, "model_state_dict": source.state_dict()}, tmp_path / "checkpoint.pth")
    assert load_weights_file(tmp_path / "checkpoint.pth", arch="fcn8s-atonce").model.config.variant == "fcn8s-atonce"


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (self.marker,))


def test_pickle_payload_in_a_pth_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    torch.save({"score_fr.weight": torch.zeros(1), "x": _Payload(str(marker))}, path)
    with pytest.raises(WeightsError, match=r"evil.pth: refused"):
        load_weights_file(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(WeightsError, match=r"evil.pth"):
        load_weights_file(path)
    assert not marker.exists()


def test_shape_mismatch_names_the_layer_and_both_shapes() -> None:
    model = random_model(tiny_paper_config("fcn8s", num_classes=21))
    state = dict(model.state_dict())
    state["score_pool3.weight"] = torch.zeros(21, 7, 1, 1)
    with pytest.raises(ShapeMismatchError) as info:
        apply_state_dict(model, state, "w.pth")
    message = str(info.value)
    assert "score_pool3.weight" in message and "(21, 7, 1, 1)" in message and "(21, 8, 1, 1)" in message


def test_missing_and_unexpected_keys_are_listed() -> None:
    model = random_model(tiny_paper_config("fcn16s"))
    state = dict(model.state_dict())
    del state["fc7.bias"]
    state["bogus.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"w\.pth.*missing fc7\.bias; unexpected bogus\.weight"):
        apply_state_dict(model, state, "w.pth")


def test_class_count_comes_from_score_fr(tmp_path: Path) -> None:
    source = random_model(tiny_paper_config("fcn8s", num_classes=3))
    torch.save(source.state_dict(), tmp_path / "three.pth")
    loaded = load_weights_file(tmp_path / "three.pth")
    assert loaded.model.config.num_classes == 3 and len(loaded.meta.palette) == 3


def test_wrong_arch_for_the_file_is_refused(tmp_path: Path) -> None:
    torch.save(random_model(tiny_paper_config("fcn32s")).state_dict(), tmp_path / "m.pth")
    with pytest.raises(WeightsError, match="holds an fcn32s network"):
        load_weights_file(tmp_path / "m.pth", arch="fcn8s")


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(WeightsError, match="unknown weights format"):
        load_weights_file(tmp_path / "m.onnx")
    with pytest.raises(WeightsError, match="not a known model name"):
        load_model(tmp_path / "nope.pth")


def test_registry_lists_the_paper_models_with_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path))
    names = {e.name for e in ENTRIES}
    for name in ("fcn32s-heavy-pascal", "fcn16s-heavy-pascal", "fcn8s-heavy-pascal", "fcn8s-atonce-pascal"):
        item = entry(name)
        assert item.url == f"http://dl.caffe.berkeleyvision.org/{name}.caffemodel"
        assert len(item.classes) == 21 and item.classes[0] == "background" and len(item.palette) == 21
        assert item.path == tmp_path / "weights" / f"{name}.caffemodel"
    assert {"pytorch-fcn8s_from_caffe", "camvid-fcn8s", "camvid-fcn16s", "camvid-fcn32s"} <= names
    assert entry("pytorch-fcn8s_from_caffe").md5 == "de93e540ec79512f8770033849c8ae89"
    assert entry("fcn16s-heavy-pascal").stages == ("32s", "16s")
    assert DEFAULT_MODEL == "camvid-fcn8s"


def test_registry_model_not_downloaded_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path))
    with pytest.raises(WeightsError, match="fcn-viewer download fcn8s-heavy-pascal"):
        load_model("fcn8s-heavy-pascal")


def test_registry_download_uses_the_cache_and_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A registry entry fetched through its URL (a file:// stand-in here) lands in the cache and loads."""
    from dataclasses import replace

    from fcn_viewer.weights import registry
    from fcn_viewer.weights.download import hash_file

    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path / "cache"))
    source = random_model(tiny_paper_config("fcn16s", num_classes=21))
    served = tmp_path / "served.pth"
    torch.save(source.state_dict(), served)
    fake = replace(entry("pytorch-fcn16s_from_caffe"), url=served.as_uri(), md5=hash_file(served, "md5"),
                   size_bytes=served.stat().st_size)
    monkeypatch.setattr(registry, "ENTRIES", (fake,))
    monkeypatch.setattr("fcn_viewer.weights.loader.ENTRIES", (fake,))
    loaded = load_model(fake.name, allow_download=True)
    assert fake.path.is_file() and loaded.meta.name == fake.name
    assert loaded.model.config.variant == "fcn16s"


def test_meta_rejects_class_count_mismatch() -> None:
    config = tiny_compact_config(num_classes=4)
    good = tiny_meta(config)
    with pytest.raises(ValueError, match="3 class names for 4 classes"):
        ModelMeta(name="x", title="x", config=config, classes=good.classes[:3], palette=good.palette,
                  preprocessing=good.preprocessing)
