"""The viewer window, offscreen with tiny random-weight models: panels, overlay, linking, worker, export, settings."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QPushButton
from pytestqt.qtbot import QtBot

import fcn_viewer.weights.registry as registry_module
from fcn_viewer.classes import CAMVID_CLASSES, CAMVID_PALETTE
from fcn_viewer.cli.main import main
from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.gui.settings import ViewerSettings
from fcn_viewer.gui.worker import load_source
from fcn_viewer.inference import Segmentation, Segmenter
from fcn_viewer.render import boundaries, colorize, outline
from fcn_viewer.view.outcome import JobCancelled
from fcn_viewer.view.panel_content import OUTLINE_WIDTH
from fcn_viewer.weights.download import DownloadCancelled, Progress
from fcn_viewer.weights.loader import FileSource, RegistrySource
from fcn_viewer.weights.registry import ENTRIES, RegistryEntry
from tests.gui_helpers import WAIT_MS, load, make_window, open_image, save_tiny, segment_independently, shown_pixels

pytestmark = pytest.mark.usefixtures("isolated")


def test_opening_an_image_fills_every_panel_at_its_true_size(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tiny_weights: Path
) -> None:
    open_image(qtbot, ready, images[0])
    expected = segment_independently(tiny_weights, images[0])
    height, width = 40, 56
    panels = ready.panels
    assert panels["input"].title.text() == "input · 3×40×56"
    assert shown_pixels(ready, "input").shape == (height, width, 3)
    labels = {"32s": "conv7 scores", "16s": "pool4 fused", "8s": "pool3 fused"}
    for stage, stride in (("32s", 32), ("16s", 16), ("8s", 8)):
        classes, map_h, map_w = expected.outputs.score_map(stage).shape[1:]
        scores = panels[f"scores-{stage}"]
        assert scores.isVisible()
        assert scores.title.text() == f"{labels[stage]} · stride {stride} · {classes}×{map_h}×{map_w}"
        assert shown_pixels(ready, f"scores-{stage}").shape == (map_h, map_w, 3)
        mask = panels[f"mask-{stage}"]
        assert mask.title.text() == f"{stage} mask · stride {stride} · 11×{height}×{width}"
        assert shown_pixels(ready, f"mask-{stage}").shape == (height, width, 3)
    for panel in panels.values():  # every panel covers the same image rectangle
        assert panel.view.pixmap_item.sceneBoundingRect().getRect() == pytest.approx((0, 0, width, height))
    assert [box.text() for box in ready.legend.checkboxes] == list(CAMVID_CLASSES)
    assert ready.info.isVisible() and "upsampling" in ready.info.text()
    assert not ready.busy.isVisible()


def test_a_downscaled_image_keeps_every_panel_on_the_pixels_the_network_saw(
    qtbot: QtBot, settings_path: Path, images: list[Path], tiny_weights: Path
) -> None:
    window = make_window(qtbot, settings_path, make_segmenter=functools.partial(Segmenter, max_pixels=1000))
    load(qtbot, window, tiny_weights)
    open_image(qtbot, window, images[0])  # 40×56 = 2240 pixels
    assert window.shown_result is not None
    height, width = window.shown_result.image_size
    assert height * width <= 1000
    for key in ("input", "mask-32s", "mask-8s"):
        assert shown_pixels(window, key).shape == (height, width, 3)
    assert "downscaled from 56×40" in window.info.text()


def test_a_model_without_a_stage_hides_its_panels(
    qtbot: QtBot, window: MainWindow, images: list[Path], tmp_path: Path
) -> None:
    load(qtbot, window, save_tiny(tmp_path / "fcn16s.safetensors", "fcn16s", paper=True, classes=5))
    open_image(qtbot, window, images[1])
    visible = {key for key, panel in window.panels.items() if panel.isVisible()}
    assert visible == {"input", "scores-32s", "scores-16s", "mask-32s", "mask-16s"}
    assert window.grid.columns == 3


def test_opacity_slider_changes_the_overlay_and_follows_the_state(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tiny_weights: Path
) -> None:
    open_image(qtbot, ready, images[0])
    mask = segment_independently(tiny_weights, images[0]).mask("8s")
    photo = np.asarray(Image.open(images[0]).convert("RGB"))
    ready.toolbar.opacity.setValue(0)
    np.testing.assert_array_equal(shown_pixels(ready, "mask-8s"), photo)
    ready.toolbar.opacity.setValue(100)
    assert ready.state.options.opacity == 1.0
    np.testing.assert_array_equal(shown_pixels(ready, "mask-8s"), colorize(mask, CAMVID_PALETTE))
    ready.toolbar.opacity.setValue(40)
    half = shown_pixels(ready, "mask-8s")
    assert not np.array_equal(half, photo) and not np.array_equal(half, colorize(mask, CAMVID_PALETTE))
    ready.state.set_opacity(0.7)  # the state drives the widgets too
    assert ready.toolbar.opacity.value() == 70 and ready.toolbar.opacity_label.text() == "70%"


def test_hiding_a_class_removes_its_colour_from_the_masks(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tiny_weights: Path
) -> None:
    open_image(qtbot, ready, images[0])
    ready.state.set_opacity(1.0)
    mask = segment_independently(tiny_weights, images[0]).mask("8s")
    hidden = int(np.bincount(mask.ravel()).argmax())
    color = np.array(CAMVID_PALETTE[hidden], dtype=np.uint8)
    assert (shown_pixels(ready, "mask-8s")[mask == hidden] == color).all()
    ready.legend.checkboxes[hidden].click()
    assert hidden in ready.state.options.hidden
    pixels = shown_pixels(ready, "mask-8s")
    photo = np.asarray(Image.open(images[0]).convert("RGB"))
    np.testing.assert_array_equal(pixels[mask == hidden], photo[mask == hidden])
    assert not (pixels == color).all(axis=2).any()
    ready.state.set_all_visible(True)
    assert ready.legend.checkboxes[hidden].isChecked()


def test_display_modes_outline_and_palette(qtbot: QtBot, ready: MainWindow, images: list[Path]) -> None:
    open_image(qtbot, ready, images[0])
    classes_view = shown_pixels(ready, "scores-32s")
    ready.toolbar.mode.setCurrentIndex(ready.toolbar.mode.findData("confidence"))
    assert ready.state.options.mode == "confidence" and ready.legend.colorbar.isVisible()
    confidence_view = shown_pixels(ready, "scores-32s")
    assert not np.array_equal(classes_view, confidence_view)
    ready.state.set_mode("class-probability")
    assert ready.toolbar.chosen_class.isEnabled()
    ready.toolbar.chosen_class.setCurrentIndex(3)
    assert ready.state.options.chosen_class == 3 and "Road" in ready.legend.colorbar.caption()
    ready.state.set_mode("classes")
    ready.state.set_opacity(0.0)
    ready.toolbar.outline.setChecked(True)
    outlined = shown_pixels(ready, "mask-16s")
    photo = np.asarray(Image.open(images[0]).convert("RGB"))
    mask = ready.shown_result.segmentation.mask("16s")  # type: ignore[union-attr]
    edges = boundaries(mask, OUTLINE_WIDTH)
    assert edges.any()
    np.testing.assert_array_equal(outlined[~edges], photo[~edges])
    np.testing.assert_array_equal(outlined[edges], outline(mask, CAMVID_PALETTE, OUTLINE_WIDTH)[1][edges])
    ready.toolbar.palette_choice.setCurrentIndex(ready.toolbar.palette_choice.findData("colorblind"))
    assert ready.state.options.palette == "colorblind"
    assert not np.array_equal(shown_pixels(ready, "scores-32s"), classes_view)


def visible_rect(window: MainWindow, key: str) -> tuple[float, ...]:
    view = window.panels[key].view
    return view.mapToScene(view.viewport().rect()).boundingRect().getRect()


def test_zoom_and_pan_in_one_panel_move_all_panels(qtbot: QtBot, ready: MainWindow, images: list[Path]) -> None:
    open_image(qtbot, ready, images[1])
    views = [panel.view for panel in ready.panels.values() if panel.isVisible()]
    source = ready.panels["scores-16s"].view
    center = source.viewport().rect().center()
    for _ in range(4):
        wheel = QWheelEvent(
            QPointF(center), QPointF(source.viewport().mapToGlobal(center)), QPoint(), QPoint(0, 120),
            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
        )
        QApplication.sendEvent(source.viewport(), wheel)
    assert ready.link.scale > 1.5 and not ready.link.fitting
    assert {view.transform().m11() for view in views} == {ready.link.scale}
    source.horizontalScrollBar().setValue(source.horizontalScrollBar().value() + 40)
    reference = visible_rect(ready, "scores-16s")
    for key in ("input", "scores-32s", "mask-8s"):
        assert visible_rect(ready, key) == pytest.approx(reference, abs=1.5)
    qtbot.keyClick(ready, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert {view.transform().m11() for view in views} == {ready.link.scale}
    qtbot.keyClick(ready, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert ready.link.scale == 1.0
    qtbot.keyClick(ready, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert ready.link.fitting and ready.zoom_label.text().startswith("fit")


def test_hover_readout_names_the_class_under_the_cursor(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tiny_weights: Path
) -> None:
    open_image(qtbot, ready, images[0])
    expected = segment_independently(tiny_weights, images[0])
    view = ready.panels["mask-16s"].view
    ready.link.set_scale(8.0)
    position = view.viewport().rect().center()
    scene = view.mapToScene(position)
    column, row = int(scene.x()), int(scene.y())
    move = QMouseEvent(
        QEvent.Type.MouseMove, QPointF(position), QPointF(view.viewport().mapToGlobal(position)),
        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(view.viewport(), move)
    text = ready.readout.text()
    assert ready.readout.isVisible()
    assert text.startswith(f"x {column}, y {row}")
    for stage in ("32s", "16s", "8s"):
        assert f"{stage}: {CAMVID_CLASSES[expected.mask(stage)[row, column]]}" in text
    best = CAMVID_CLASSES[int(expected.outputs.logits("8s")[0, :, row, column].argmax())]
    assert f"top-3 8s: {best}" in text
    assert ready.panels["mask-8s"].view.marker.isVisible() and not view.marker.isVisible()


def test_a_stale_result_is_not_shown_after_a_quick_second_open(
    qtbot: QtBot, ready: MainWindow, images: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first_started, release = threading.Event(), threading.Event()
    original = Segmenter.segment
    segmented: list[tuple[int, int]] = []

    def slow_first(self: Segmenter, image: np.ndarray) -> Segmentation:
        if not segmented:
            segmented.append(image.shape[:2])
            first_started.set()
            release.wait(10)
        else:
            segmented.append(image.shape[:2])
        return original(self, image)

    monkeypatch.setattr(Segmenter, "segment", slow_first)
    shown: list[Path] = []
    ready.resultShown.connect(lambda result: shown.append(result.path))
    ready.open_image(images[0])
    assert first_started.wait(10)
    ready.open_image(images[1])
    release.set()
    qtbot.waitUntil(lambda: shown == [images[1]], timeout=WAIT_MS)
    qtbot.wait(100)
    assert segmented == [(40, 56), (48, 64)]  # the first job ran, its answer was dropped
    assert shown == [images[1]]
    assert ready.shown_result is not None and ready.shown_result.path == images[1]
    assert ready.panels["input"].title.text() == "input · 3×48×64"
    assert not ready.busy_now


def test_a_corrupt_file_shows_an_error_and_the_window_keeps_working(
    qtbot: QtBot, ready: MainWindow, images: list[Path]
) -> None:
    broken = images[0].parent / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with qtbot.waitSignal(ready.jobFailed, timeout=WAIT_MS):
        ready.open_image(broken)
    assert ready.banner.isVisible() and ready.banner.kind == "error"
    assert "broken.png" in ready.banner.text()
    assert not ready.busy.isVisible()
    open_image(qtbot, ready, images[2])
    assert not ready.banner.isVisible()
    assert ready.panels["mask-8s"].title.text().endswith("11×36×60")


def test_exports_reopen_with_the_right_palette_shapes_and_names(
    qtbot: QtBot, ready: MainWindow, images: list[Path], tmp_path: Path, tiny_weights: Path
) -> None:
    open_image(qtbot, ready, images[0])
    out = tmp_path / "out"
    out.mkdir()
    targets = iter([out / "a_mask.png", out / "a_overlay.png", out / "a_figure.png", out / "a.npz"])
    ready.ask_save_path = lambda title, suggested, file_filter: next(targets)  # type: ignore[method-assign]
    ready.export_masks()
    ready.export_overlay()
    ready.export_figure()
    ready.export_scores()
    expected = segment_independently(tiny_weights, images[0])
    for stage, name in (("8s", "a_mask.png"), ("16s", "a_mask_16s.png"), ("32s", "a_mask_32s.png")):
        mask = Image.open(out / name)
        assert mask.mode == "P" and mask.size == (56, 40)
        assert mask.getpalette()[: 3 * 11] == [c for color in CAMVID_PALETTE for c in color]
        np.testing.assert_array_equal(np.asarray(mask), expected.mask(stage))
    overlay = np.asarray(Image.open(out / "a_overlay.png"))
    np.testing.assert_array_equal(overlay, shown_pixels(ready, "mask-8s"))
    figure = Image.open(out / "a_figure.png")
    assert figure.width >= 4 * 360 and figure.height >= 2 * 250
    assert np.asarray(figure.convert("L")).std() > 20  # drawn on, not blank
    with np.load(out / "a.npz") as scores:
        names = set(scores.files)
        assert {"score_fr", "fuse_pool4", "fuse_pool3", "logits_32s", "logits_16s", "logits_8s"} <= names
        assert scores["logits_8s"].shape == (11, 40, 56)
        assert json.loads(str(scores["info_json"]))["stages"] == ["32s", "16s", "8s"]
        assert list(scores["classes"]) == list(CAMVID_CLASSES)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["a_mask.png", "a_mask_16s.png", "a_mask_32s.png", "a_overlay.png", "a_figure.png", "a.npz"]
    )  # no temporary files left behind

    before = (out / "a_overlay.png").read_bytes()
    ready.state.set_opacity(0.1)
    asked: list[str] = []
    ready.ask_save_path = lambda title, suggested, file_filter: out / "a_overlay.png"  # type: ignore[method-assign]
    ready.ask_confirmation = lambda title, text: asked.append(text) or False  # type: ignore[method-assign]
    ready.export_overlay()
    assert asked and "a_overlay.png" in asked[0]
    assert (out / "a_overlay.png").read_bytes() == before
    ready.ask_confirmation = lambda title, text: True  # type: ignore[method-assign]
    ready.export_overlay()
    assert (out / "a_overlay.png").read_bytes() != before


def test_settings_round_trip_into_a_new_window(
    qtbot: QtBot, settings_path: Path, images: list[Path], tiny_weights: Path
) -> None:
    first = make_window(qtbot, settings_path)
    load(qtbot, first, tiny_weights)
    open_image(qtbot, first, images[0])
    first.toolbar.opacity.setValue(25)
    first.state.set_palette("colorblind")
    first.choose_device("cpu")
    qtbot.waitUntil(lambda: not first.busy_now, timeout=WAIT_MS)
    first.exact_action.setChecked(True)  # the worker runs a new segmenter at the chosen precision
    qtbot.waitUntil(lambda: not first.busy_now and first.service.segmenter.precision == "fp32", timeout=WAIT_MS)
    first.resize(1111, 700)
    first.close()

    second = make_window(qtbot, settings_path)
    assert second.state.options.opacity == 0.25 and second.toolbar.opacity.value() == 25
    assert second.state.options.palette == "colorblind"
    assert second.viewer.device == "cpu"
    assert second.exact_action.isChecked() and second.settings.exact_fp32
    assert second.settings.recent_files[0] == str(images[0])
    assert second.settings.last_folder == str(images[0].parent)
    assert second.initial_model() == FileSource(tiny_weights)
    assert second.settings.geometry is not None
    assert settings_path.is_file()


def test_switching_models_loads_in_the_worker_and_updates_the_legend(
    qtbot: QtBot, settings_path: Path, tiny_weights: Path, images: list[Path], tmp_path: Path
) -> None:
    threads: list[threading.Thread] = []

    def recording(*args: object) -> object:
        threads.append(threading.current_thread())
        return load_source(*args)  # type: ignore[arg-type]

    ready = make_window(qtbot, settings_path, load=recording)
    load(qtbot, ready, tiny_weights)
    open_image(qtbot, ready, images[0])
    threads.clear()
    other = save_tiny(tmp_path / "five.safetensors", "fcn32s", paper=True, classes=5)
    ready.ask_weights_file = lambda: other  # type: ignore[method-assign]
    with qtbot.waitSignal(ready.resultShown, timeout=WAIT_MS):
        ready.load_local_file()
    assert threads and threads[0] is not threading.main_thread()
    assert [box.text() for box in ready.legend.checkboxes] == list(CAMVID_CLASSES[:5])
    assert ready.toolbar.chosen_class.count() == 5
    assert ready.model_label.text() == "five test model"
    visible = {key for key, panel in ready.panels.items() if panel.isVisible()}
    assert visible == {"input", "scores-32s", "mask-32s"}
    assert ready.panels["mask-32s"].title.text() == "32s mask · stride 32 · 5×40×56"


def test_a_registry_model_downloads_with_progress_then_loads(
    qtbot: QtBot, window: MainWindow, tiny_weights: Path
) -> None:
    entry = RegistryEntry(
        name="tiny-remote", title="Tiny remote", variant="fcn8s", format="safetensors", dataset="camvid",
        filename="tiny-remote.safetensors", citation="test", url=tiny_weights.as_uri(),
        size_bytes=tiny_weights.stat().st_size,
    )
    questions: list[str] = []
    window.ask_confirmation = lambda title, text: questions.append(text) or True  # type: ignore[method-assign]
    progress: list[object] = []
    window.service.jobs.progress.connect(lambda job, p: progress.append(p))
    with qtbot.waitSignal(window.modelChanged, timeout=WAIT_MS):
        window.load_model(RegistrySource(entry))
    assert questions and "Tiny remote" in questions[0]
    assert progress and progress[-1].done == tiny_weights.stat().st_size
    assert entry.available and window.download_dialog is None
    assert len(window.legend.checkboxes) == 11


def test_a_registry_model_that_cannot_be_downloaded_is_marked_unavailable_with_the_reason(
    qtbot: QtBot, window: MainWindow
) -> None:
    unusable = [entry for entry in ENTRIES if entry.unavailable and not entry.available]
    assert [entry.name for entry in unusable] == ["pytorch-fcn8s-atonce_from_caffe"]
    window.model_menu.aboutToShow.emit()
    actions = {action.text(): action for action in window.model_menu.actions()}
    [(text, action)] = [(text, action) for text, action in actions.items() if text.startswith(unusable[0].title)]
    assert "unavailable" in text and not action.isEnabled()
    assert unusable[0].unavailable in action.toolTip() and window.model_menu.toolTipsVisible()
    downloadable = next(a for t, a in actions.items() if t.startswith("FCN-8s at-once VOC (paper, Caffe)"))
    assert downloadable.isEnabled() and "download" in downloadable.text()
    asked: list[str] = []
    window.ask_confirmation = lambda title, text: asked.append(text) or True  # type: ignore[method-assign]
    window.load_model(RegistrySource(unusable[0]))  # reached another way (a setting, a script): refused, not asked
    assert not asked and window.download_dialog is None
    assert window.banner.kind == "error" and "cannot be downloaded" in window.banner.text()


def test_cancelling_a_download_closes_its_dialog_and_keeps_the_window_usable(
    qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    def endless_download(url: str, dest: Path, *, progress: Callable[[Progress], None],
                         cancel: Callable[[], bool], **hashes: object) -> Path:
        progress(Progress(100, 1000))
        while not cancel():
            time.sleep(0.01)
        raise DownloadCancelled(f"download of {url} cancelled after 100 bytes; run again to resume")

    monkeypatch.setattr(registry_module, "download", endless_download)
    entry = RegistryEntry(
        name="far-away", title="Far away", variant="fcn8s", format="safetensors", dataset="camvid",
        filename="far-away.safetensors", citation="test", url="http://example.invalid/far-away.safetensors",
    )
    window.ask_confirmation = lambda title, text: True  # type: ignore[method-assign]
    window.load_model(RegistrySource(entry))
    assert window.busy.isVisible()
    qtbot.waitUntil(lambda: window.download_dialog is not None and window.download_dialog.value() == 100)
    with qtbot.waitSignal(window.service.jobs.finished, timeout=WAIT_MS,
                          check_params_cb=lambda job, answer: isinstance(answer, JobCancelled)):
        window.download_dialog.findChild(QPushButton).click()  # type: ignore[union-attr]
    assert window.download_dialog is None and not window.busy.isVisible()
    assert "cancelled" in window.statusBar().currentMessage()
    assert window.viewer.model is None and not entry.available


def test_a_and_d_step_through_the_folder(qtbot: QtBot, ready: MainWindow, images: list[Path]) -> None:
    open_image(qtbot, ready, images[1])
    for key, expected in ((Qt.Key.Key_D, images[2]), (Qt.Key.Key_D, images[0]), (Qt.Key.Key_A, images[2])):
        with qtbot.waitSignal(ready.resultShown, timeout=WAIT_MS):
            qtbot.keyClick(ready, key)
        assert ready.shown_result is not None and ready.shown_result.path == expected


@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent.*deprecated:DeprecationWarning")
def test_dropping_a_file_url_opens_it(qtbot: QtBot, ready: MainWindow, images: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(images[2]))])
    position = QPointF(ready.rect().center())
    enter = QDragEnterEvent(
        position.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(ready, enter)
    assert enter.isAccepted()
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    drop = QDropEvent(position, Qt.DropAction.CopyAction, mime, buttons, modifiers)
    with qtbot.waitSignal(ready.resultShown, timeout=WAIT_MS):
        QApplication.sendEvent(ready, drop)
    assert ready.shown_result is not None and ready.shown_result.path == images[2]


def test_without_a_model_the_window_opens_and_says_so(qtbot: QtBot, window: MainWindow, images: list[Path]) -> None:
    with qtbot.waitSignal(window.resultShown, timeout=WAIT_MS):
        window.start(images[0])
    assert window.banner.isVisible() and "No model is loaded" in window.banner.text()
    assert "Load Local File" in window.banner.text()
    assert {key for key, panel in window.panels.items() if panel.isVisible()} == {"input"}
    assert window.model_label.text() == "no model"


def test_the_grid_reflows_with_the_window_width(qtbot: QtBot, ready: MainWindow, images: list[Path]) -> None:
    open_image(qtbot, ready, images[0])
    ready.resize(1900, 700)
    qtbot.waitUntil(lambda: ready.grid.columns == 4, timeout=WAIT_MS)  # one column per stage, plus the input
    ready.resize(760, 700)
    qtbot.waitUntil(lambda: ready.grid.columns in (2, 3), timeout=WAIT_MS)
    assert all(ready.panels[key].isVisible() for key in ("input", "mask-8s"))


def test_screenshot_option_writes_the_window_and_fails_clearly(
    tmp_path: Path, images: list[Path], tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shot = tmp_path / "shot.png"
    args = ["gui", str(images[0]), "--weights", str(tiny_weights), "--screenshot", str(shot), "--size", "900x600"]
    assert main(args) == 0
    assert Image.open(shot).size[0] >= 900
    broken = tmp_path / "broken.jpg"
    broken.write_text("nope")
    assert main(["gui", str(broken), "--weights", str(tiny_weights), "--screenshot", str(tmp_path / "no.png")]) == 1
    assert "broken.jpg" in capsys.readouterr().err
    assert not (tmp_path / "no.png").exists()


def test_settings_location_comes_from_the_environment(tmp_path: Path) -> None:
    settings = ViewerSettings()
    assert Path(settings.location) == tmp_path / "env-settings.ini"
