"""The viewer under faults: broken images, hostile weights, missing devices, damaged settings, failing exports."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.inference import Segmenter
from fcn_viewer.weights.native import save_native
from tests.bad_images import write_corpus
from tests.caffe_writer import encode_net
from tests.gui_helpers import WAIT_MS, load, make_window, open_image, segment_independently, shown_pixels
from tests.helpers import random_model, tiny_compact_config, tiny_meta, tiny_paper_config
from tests.test_caffemodel import model_blobs

pytestmark = pytest.mark.usefixtures("isolated")


def no_modal_dialog() -> bool:
    return QApplication.activeModalWidget() is None


def test_every_corpus_file_is_named_in_the_window_and_a_good_image_still_opens_after_it(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tmp_path: Path
) -> None:
    outcomes = write_corpus(tmp_path / "corpus")
    for number, (name, outcome) in enumerate(outcomes.items()):
        path = tmp_path / "corpus" / name
        if outcome == "ok":
            open_image(qtbot, ready, path)
            result = ready.shown_result
            assert result is not None and result.segmentation is not None, name
            assert shown_pixels(ready, "mask-8s").shape[:2] == result.image_size, name
        else:
            with qtbot.waitSignal(ready.jobFailed, timeout=WAIT_MS):
                ready.open_image(path)
            assert ready.banner.isVisible() and ready.banner.kind == "error", name
            assert f"{name}:" in ready.banner.text() and f"{name}:" in ready.statusBar().currentMessage()
            assert not ready.busy.isVisible() and no_modal_dialog(), name
        good = images[number % len(images)]
        open_image(qtbot, ready, good)
        assert ready.shown_result is not None and ready.shown_result.path == good
        assert not ready.banner.isVisible(), name


def test_a_downscaled_image_is_reported_in_the_status_bar_and_the_info_panel(
    qtbot: QtBot, settings_path: Path, images: list[Path], tiny_weights: Path
) -> None:
    window = make_window(qtbot, settings_path, make_segmenter=functools.partial(Segmenter, max_pixels=1000))
    load(qtbot, window, tiny_weights)
    open_image(qtbot, window, images[0])  # 56×40 = 2240 pixels
    message = window.statusBar().currentMessage()
    assert "a.png" in message and "downscaled from 56×40 to" in message and "within 0 MP" not in message
    assert "downscaled from 56×40" in window.info.text()


def test_an_out_of_memory_fallback_is_reported(
    qtbot: QtBot, ready: MainWindow, images: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Segmenter._forward
    calls: list[int] = []

    def full_once(self: Segmenter, batch: np.ndarray):  # type: ignore[no-untyped-def]
        calls.append(batch.shape[1] * batch.shape[2])
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, batch)

    monkeypatch.setattr(Segmenter, "_forward", full_once)
    open_image(qtbot, ready, images[0])
    assert calls[1] <= calls[0] // 2
    assert "out of cpu memory: ran at" in ready.statusBar().currentMessage()
    assert "out of cpu memory: ran at" in ready.info.text()


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (self.marker,))


def hostile_weights(kind: str, folder: Path) -> Path:
    """A weights file that must not load: damaged, unsafe, not weights at all, or made for another net."""
    if kind == "truncated caffemodel":
        data = encode_net(model_blobs(random_model(tiny_paper_config("fcn8s", 21))))
        path = folder / "cut.caffemodel"
        path.write_bytes(data[: len(data) // 2])
    elif kind == "pickle payload pth":
        path = folder / "evil.pth"
        torch.save({"score_fr.weight": torch.zeros(1), "x": _Payload(str(folder / "payload-ran"))}, path)
    elif kind == "random safetensors":
        path = folder / "noise.safetensors"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    else:  # the tensors of a 5-class net under metadata that promises 11 classes
        path = folder / "misfit.safetensors"
        state = random_model(tiny_compact_config(num_classes=5)).state_dict()
        save_native(path, state, tiny_meta(tiny_compact_config(num_classes=11), "misfit"), half=False)
    return path


@pytest.mark.parametrize("kind", ["truncated caffemodel", "pickle payload pth", "random safetensors", "shape mismatch"])
def test_a_model_that_fails_to_load_leaves_the_previous_one_working(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tiny_weights: Path, tmp_path: Path, kind: str
) -> None:
    open_image(qtbot, ready, images[0])
    bad = hostile_weights(kind, tmp_path)
    ready.ask_weights_file = lambda: bad  # type: ignore[method-assign]
    with qtbot.waitSignal(ready.jobFailed, timeout=WAIT_MS):
        ready.load_local_file()
    assert ready.banner.kind == "error" and bad.name in ready.banner.text()
    assert "still using tiny test model" in ready.banner.text() and no_modal_dialog()
    assert ready.viewer.model is not None and ready.model_label.text() == "tiny test model"
    assert ready.settings.model == str(tiny_weights.absolute())
    assert not (tmp_path / "payload-ran").exists()
    open_image(qtbot, ready, images[1])
    result = ready.shown_result
    assert result is not None and result.meta is not None and result.meta.name == "tiny"
    expected = segment_independently(tiny_weights, images[1])
    np.testing.assert_array_equal(result.segmentation.mask(), expected.mask())  # type: ignore[union-attr]


def test_a_failed_device_move_keeps_the_model_where_it_was(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = segment_independently(tiny_weights, images[2]).mask()

    def no_room(self: Segmenter, *args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(Segmenter, "__init__", no_room)  # no new segmenter can be made from now on
    with qtbot.waitSignal(ready.jobFailed, timeout=WAIT_MS):
        ready.choose_device("cpu")
    assert "cannot move the model to cpu" in ready.banner.text() and "it stays on cpu" in ready.banner.text()
    assert ready.device_label.text() == "device: cpu" and not ready.busy_now
    open_image(qtbot, ready, images[2])  # segmented by the segmenter the worker kept
    result = ready.shown_result
    assert result is not None and result.segmentation is not None
    np.testing.assert_array_equal(result.segmentation.mask(), expected)


@pytest.mark.parametrize("choice", ["auto", "cuda"])
def test_without_cuda_the_model_runs_on_the_cpu_and_an_explicit_cuda_choice_is_told_so(
    qtbot: QtBot, window: MainWindow, images: list[Path], tiny_weights: Path, monkeypatch: pytest.MonkeyPatch,
    choice: str,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    window.choose_device(choice)
    load(qtbot, window, tiny_weights)
    assert window.device_label.text() == "device: cpu"
    if choice == "cuda":
        assert window.banner.kind == "warning"
        assert "CUDA was asked for" in window.banner.text() and "runs on the CPU" in window.banner.text()
    else:
        assert not window.banner.isVisible()
    open_image(qtbot, window, images[0])
    assert window.shown_result is not None and window.shown_result.device == "cpu"
    assert window.banner.isVisible() == (choice == "cuda")  # the note stays until dismissed


@pytest.mark.parametrize(
    "content, problem",
    [
        (bytes(range(256)) * 4 + b"\n[display]\nopacity=0.2\n", "is damaged"),
        (b"[General]\nformat_version=99\n[display]\nopacity=0.2\npalette=colorblind\n", "newer fcn-viewer"),
    ],
)
def test_damaged_or_newer_settings_give_defaults_and_a_visible_note(
    qtbot: QtBot, settings_path: Path, images: list[Path], tiny_weights: Path, content: bytes, problem: str
) -> None:
    settings_path.write_bytes(content)
    window = make_window(qtbot, settings_path)
    assert window.banner.kind == "warning" and problem in window.banner.text()
    assert str(settings_path) in window.banner.text() and "defaults are used" in window.banner.text()
    assert window.state.options.opacity == 0.6 and window.state.options.palette == "model"
    assert settings_path.with_name("settings.ini.unused").read_bytes() == content  # the old file is kept
    load(qtbot, window, tiny_weights)
    open_image(qtbot, window, images[0])
    assert window.banner.kind == "warning"  # a loaded model or a result does not hide the note
    window.state.set_opacity(0.3)
    window.close()
    again = make_window(qtbot, settings_path)
    assert not again.banner.isVisible() and again.state.options.opacity == 0.3
    assert "format_version=1" in settings_path.read_text()


def test_an_export_that_fails_midway_leaves_the_existing_file_whole(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_image(qtbot, ready, images[0])
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a_overlay.png", "a.npz"):
        (out / name).write_bytes(b"the user's earlier export")
    targets = iter([out / "a_overlay.png", out / "a.npz"])
    ready.ask_save_path = lambda title, suggested, file_filter: next(targets)  # type: ignore[method-assign]
    ready.ask_confirmation = lambda title, text: True  # type: ignore[method-assign]

    def disk_full(self: Image.Image, handle: object, *args: object, **kwargs: object) -> None:
        handle.write(b"half a PNG")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    monkeypatch.setattr(np, "savez_compressed", lambda handle, **arrays: disk_full(None, handle))  # type: ignore[arg-type]
    for export, what in ((ready.export_overlay, "overlay"), (ready.export_scores, "score maps")):
        export()
        assert ready.banner.kind == "error"
        assert f"Could not save the {what}" in ready.banner.text() and "No space left" in ready.banner.text()
    assert sorted(p.name for p in out.iterdir()) == ["a.npz", "a_overlay.png"]  # no temporary files left
    assert all(p.read_bytes() == b"the user's earlier export" for p in out.iterdir())


@pytest.mark.parametrize("answer", [False, True])
def test_exporting_masks_over_an_existing_file_asks_first(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tmp_path: Path, answer: bool
) -> None:
    open_image(qtbot, ready, images[0])
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_mask_16s.png").write_bytes(b"kept unless the user agrees")
    asked: list[str] = []
    ready.ask_save_path = lambda title, suggested, file_filter: out / "a_mask.png"  # type: ignore[method-assign]
    ready.ask_confirmation = lambda title, text: asked.append(text) is None and answer  # type: ignore[method-assign]
    ready.export_masks()
    assert len(asked) == 1 and asked[0].splitlines()[1:] == [str(out / "a_mask_16s.png")]  # only what exists
    if answer:
        assert sorted(p.name for p in out.iterdir()) == ["a_mask.png", "a_mask_16s.png", "a_mask_32s.png"]
        assert Image.open(out / "a_mask_16s.png").mode == "P"
    else:  # nothing at all is written, not even the files that did not exist
        assert [p.name for p in out.iterdir()] == ["a_mask_16s.png"]
        assert (out / "a_mask_16s.png").read_bytes() == b"kept unless the user agrees"
