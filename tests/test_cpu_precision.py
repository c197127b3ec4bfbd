"""Auto precision on the CPU (issue 24): bf16 only on a CPU with native bf16, for a net whose measured argmax agreement
with fp32 reaches 99.5 %, where bf16 is faster; exact fp32 is exactly fp32 on the CPU too. The detector, the stored
agreement and the speed probe are replaced, so the tests hold on any CPU."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from fcn_viewer import inference
from fcn_viewer.inference import Segmenter, choose_precision
from fcn_viewer.weights.bf16_table import file_sha256, measured_agreement, read_table
from fcn_viewer.weights.loader import LoadedModel, load_weights_file
from tests.helpers import gradient_image, random_model, tiny_compact_config, tiny_meta

CPU = torch.device("cpu")


@pytest.fixture
def loaded() -> LoadedModel:
    config = tiny_compact_config("fcn8s")
    return LoadedModel(random_model(config), tiny_meta(config), "test", bf16_agreement=0.998)


def on_a_cpu(monkeypatch: pytest.MonkeyPatch, native: bool, bf16_ms: float = 10.0, fp32_ms: float = 20.0) -> list[str]:
    """Makes this CPU native-bf16 or not, and bf16 ``bf16_ms`` against fp32 ``fp32_ms``; returns the probed nets."""
    probed: list[str] = []

    def probe(loaded: LoadedModel) -> tuple[float, float]:
        probed.append(loaded.meta.name)
        return fp32_ms / 1e3, bf16_ms / 1e3

    monkeypatch.delenv(inference.CPU_BF16_ENV, raising=False)
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(inference, "bf16_probe", probe)
    return probed


def test_auto_runs_bf16_on_a_native_bf16_cpu_for_an_agreeing_faster_net(
        monkeypatch: pytest.MonkeyPatch, loaded: LoadedModel) -> None:
    on_a_cpu(monkeypatch, native=True)
    segmenter = Segmenter(loaded, "cpu")
    assert segmenter.dtype == torch.bfloat16
    assert {p.dtype for p in segmenter.model.parameters()} == {torch.bfloat16}
    assert segmenter.precision_note.startswith("bf16 (auto: 99.80 % of pixels as in fp32")


def test_auto_keeps_fp32_on_a_cpu_without_native_bf16_and_never_probes(
        monkeypatch: pytest.MonkeyPatch, loaded: LoadedModel) -> None:
    probed = on_a_cpu(monkeypatch, native=False)
    assert choose_precision("auto", CPU, loaded) == (torch.float32, "fp32 (auto: this CPU has no native bf16)")
    assert probed == []


@pytest.mark.parametrize(("agreement", "bf16_ms", "why"), [
    (None, 10.0, "not checked"), (0.994, 10.0, "only 99.40 %"), (0.999, 19.0, "not faster"),
])
def test_auto_keeps_fp32_where_bf16_is_unmeasured_disagrees_or_is_not_faster(
        monkeypatch: pytest.MonkeyPatch, loaded: LoadedModel, agreement: float | None, bf16_ms: float, why: str
) -> None:
    on_a_cpu(monkeypatch, native=True, bf16_ms=bf16_ms)
    dtype, note = choose_precision("auto", CPU, replace(loaded, bf16_agreement=agreement))
    assert dtype == torch.float32 and why in note


def test_exact_fp32_on_a_native_bf16_cpu_gives_exactly_the_fp32_output(
        monkeypatch: pytest.MonkeyPatch, loaded: LoadedModel) -> None:
    image = gradient_image(40, 48)
    on_a_cpu(monkeypatch, native=False)
    reference = Segmenter(loaded, "cpu").segment(image)  # auto on a CPU without bf16: plain fp32
    on_a_cpu(monkeypatch, native=True)
    assert Segmenter(loaded, "cpu").dtype == torch.bfloat16  # auto would leave fp32 here
    exact = Segmenter(loaded, "cpu", precision="fp32")
    assert exact.dtype == torch.float32 and exact.precision_note == "fp32 (chosen, exact)"
    result = exact.segment(image)
    assert result.outputs.tensors.keys() == reference.outputs.tensors.keys()
    for name, tensor in reference.outputs.tensors.items():
        assert torch.equal(result.outputs.tensors[name], tensor), name


def test_cpu_bf16_can_be_turned_off(monkeypatch: pytest.MonkeyPatch, loaded: LoadedModel) -> None:
    on_a_cpu(monkeypatch, native=True)
    monkeypatch.setenv(inference.CPU_BF16_ENV, "off")
    assert choose_precision("auto", CPU, loaded)[0] == torch.float32


def test_the_probe_runs_once_per_net(monkeypatch: pytest.MonkeyPatch, loaded: LoadedModel) -> None:
    monkeypatch.setattr(inference, "_probes", {})
    monkeypatch.setattr(inference, "PROBE_SIZE", (32, 40))
    first = inference.bf16_probe(loaded, rounds=1)
    assert all(seconds > 0 for seconds in first)
    assert inference.bf16_probe(loaded) == first


def test_the_agreement_table_is_read_for_exactly_the_file_measured(tmp_path: Path, tiny_weights: Path) -> None:
    entry = {"sha256": file_sha256(tiny_weights), "bytes": tiny_weights.stat().st_size, "agreement": 0.9971}
    table = tmp_path / "bf16_agreement.json"
    table.write_text(json.dumps({"nets": {"tiny": entry}}))
    assert measured_agreement(tiny_weights, read_table(table)) == 0.9971
    other = tmp_path / "other.safetensors"
    other.write_bytes(tiny_weights.read_bytes()[:-1] + b"x")  # the same size, other bytes
    assert measured_agreement(other, read_table(table)) is None
    table.write_text("{not json")
    assert read_table(table) == {}


def test_the_bundled_nets_carry_their_measured_agreement() -> None:
    loaded = load_weights_file(Path(inference.__file__).parent / "bundled" / "models" / "camvid-fcn8s.safetensors")
    assert loaded.bf16_agreement is not None and 0.9 < loaded.bf16_agreement <= 1.0
