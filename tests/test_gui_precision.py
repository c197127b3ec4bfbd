"""The device and precision the user chose reach every path that runs a net: the viewer's image, dataset scoring
and sequence playback run the viewer's one loaded copy; the separately trained family, the only other nets, are
built on the same device at the same precision.

No GPU is needed: on the CPU "auto" also runs fp32 in the tests (FCN_VIEWER_CPU_BF16=off, tests/conftest.py; auto's
bf16 on a CPU is tests/test_cpu_precision.py), so the tests check the precision each segmenter was asked for
(exact "fp32" against the default "auto") and which segmenter object ran."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pytestqt.qtbot import QtBot

from fcn_viewer.gui import analysis_worker
from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.inference import Segmenter
from fcn_viewer.weights.loader import RegistrySource
from fcn_viewer.weights.native import save_native
from fcn_viewer.weights.registry import entry
from tests.gui_helpers import WAIT_MS, load, make_window, open_image
from tests.helpers import gradient_image, random_model, tiny_compact_config, tiny_meta
from tests.test_evaluate import make_dataset
from tests.test_sequence import write_frames

pytestmark = pytest.mark.usefixtures("isolated")


def record_nets(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Segmenter], list[Segmenter]]:
    """The segmenters dataset scoring and sequence playback run, as they run them."""
    scored: list[Segmenter] = []
    played: list[Segmenter] = []
    evaluate, segment_frame = analysis_worker.evaluate_models, analysis_worker.segment_frame

    def evaluate_models(models: Any, *args: Any, **kwargs: Any) -> Any:
        scored.extend(model.segmenter for model in models)
        return evaluate(models, *args, **kwargs)

    def frame(source: Any, index: int, segment: Any, *args: Any) -> Any:
        played.append(segment.__self__)
        return segment_frame(source, index, segment, *args)

    monkeypatch.setattr(analysis_worker, "evaluate_models", evaluate_models)
    monkeypatch.setattr(analysis_worker, "segment_frame", frame)
    return scored, played


def score_and_play(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    classroom = window.classroom
    with qtbot.waitSignal(classroom.datasetScored, timeout=WAIT_MS):
        classroom.open_dataset(make_dataset(tmp_path / "camvid", count=1))
    sequence = classroom.sequence
    with qtbot.waitSignal(sequence.frameShown, timeout=WAIT_MS):
        assert sequence.open_folder(write_frames(tmp_path / "frames", 2))
    sequence.shutdown()


@pytest.mark.parametrize("exact", [True, False])
def test_the_precision_chosen_reaches_dataset_scoring_and_sequence_playback_through_the_one_loaded_net(
    qtbot: QtBot, settings_path: Path, tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    exact: bool
) -> None:
    scored, played = record_nets(monkeypatch)
    window = make_window(qtbot, settings_path)
    window.choose_exact_fp32(exact)
    load(qtbot, window, tiny_weights)
    viewer_net = window.service.segmenter
    assert viewer_net is not None and viewer_net.precision == ("fp32" if exact else "auto")
    score_and_play(qtbot, window, tmp_path)
    assert scored and played
    assert {net.precision for net in scored + played} == {viewer_net.precision}
    assert all(net is viewer_net for net in scored + played), "a second copy of the viewer's model was loaded"


def test_switching_to_exact_fp32_with_a_model_loaded_reaches_both_paths(
    qtbot: QtBot, settings_path: Path, tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored, played = record_nets(monkeypatch)
    window = make_window(qtbot, settings_path)
    load(qtbot, window, tiny_weights)
    with qtbot.waitSignal(window.modelChanged, timeout=WAIT_MS):
        window.choose_exact_fp32(True)
    score_and_play(qtbot, window, tmp_path)
    assert scored and played
    assert {net.precision for net in scored + played} == {"fp32"}


def test_the_separately_trained_nets_run_on_the_viewers_device_at_its_precision(
    qtbot: QtBot, settings_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "resources" / "models"  # FCN_VIEWER_RESOURCES points here (see `isolated`)
    for seed, variant in enumerate(("fcn8s", "fcn16s", "fcn32s")):
        config = tiny_compact_config(variant)
        meta = replace(tiny_meta(config, name=f"camvid-{variant}"), title=f"camvid {variant}")
        save_native(models / f"camvid-{variant}.safetensors", random_model(config, seed).state_dict(), meta, half=False)
    scored, _ = record_nets(monkeypatch)
    window = make_window(qtbot, settings_path)
    window.choose_exact_fp32(True)
    with qtbot.waitSignal(window.modelChanged, timeout=WAIT_MS):
        window.load_model(RegistrySource(entry("camvid-fcn8s")))
    viewer_net = window.service.segmenter
    assert viewer_net is not None
    photo = tmp_path / "photo.png"
    Image.fromarray(gradient_image(40, 56)).save(photo)
    classroom = window.classroom
    classroom.set_mode("separate")
    with qtbot.waitSignal(classroom.datasetScored, timeout=WAIT_MS):
        classroom.open_dataset(make_dataset(tmp_path / "camvid", count=1))
    assert len(scored) == 3
    assert [net.meta.name for net in scored] == ["camvid-fcn32s", "camvid-fcn16s", "camvid-fcn8s"]
    assert all(net.precision == "fp32" and net.device == viewer_net.device for net in scored)
    assert scored[-1] is viewer_net  # the viewer's own net is not loaded a second time


@pytest.mark.parametrize(("exact", "said"), [(True, "fp32 (chosen, exact)"), (False, "fp32 (auto: CPU bf16 turned off")])
def test_the_info_panel_says_which_precision_ran(
    qtbot: QtBot, settings_path: Path, tiny_weights: Path, tmp_path: Path, exact: bool, said: str
) -> None:
    window = make_window(qtbot, settings_path)
    window.choose_exact_fp32(exact)
    load(qtbot, window, tiny_weights)
    photo = tmp_path / "photo.png"
    Image.fromarray(gradient_image(40, 56)).save(photo)
    open_image(qtbot, window, photo)
    frame = window.viewer.frame
    assert frame is not None
    assert f"cpu · {frame.result.elapsed_ms:.0f} ms · {said}" in window.info.text()
