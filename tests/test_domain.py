"""The model's domain travels in its metadata, and a photo unlike its training data gets a note (viewer, segment)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pytestqt.qtbot import QtBot
from safetensors import safe_open

from fcn_viewer.classes import VOC_CLASSES, VOC_PALETTE
from fcn_viewer.cli.main import main
from fcn_viewer.domain import DOMAINS, FAMILIARITY_PERCENTILE, domain_of, mean_confidence, unfamiliar_note
from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.gui.settings import SETTINGS_ENV, ViewerSettings
from fcn_viewer.inference import Segmenter
from fcn_viewer.train.family import attach_familiarity
from fcn_viewer.weights.loader import FileSource, RegistrySource, load_model, load_weights_file
from fcn_viewer.weights.native import read_native_meta, save_native
from fcn_viewer.weights.registry import ENTRIES
from tests.helpers import CAMVID, random_model, requires_camvid, tiny_compact_config, tiny_meta

WAIT_MS = 20_000
# For the tiny random net these dashcam-like frames (sky over road) are what it is surest about; a flat patch of
# skin tone (a face filling the frame) is less sure than all of them. A random net's confidence says nothing about
# photos in general: these tests check that the stored threshold is measured, kept and applied.
FAMILIAR_SEEDS = range(8)
LIKE_SEED = 12


def road_frame(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((48, 64, 3), np.uint8)
    horizon = 16 + seed % 8
    image[:horizon] = (150, 170, 200)
    image[horizon:] = (70, 70, 75)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def face_close_up() -> np.ndarray:
    return np.full((48, 64, 3), (230, 190, 160), np.uint8)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "env-settings.ini"))
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def dashcam_data(tmp_path: Path) -> Path:
    """A CamVid-layout val split of road-like frames."""
    root = tmp_path / "camvid"
    (root / "val").mkdir(parents=True)
    (root / "valannot").mkdir()
    for seed in FAMILIAR_SEEDS:
        Image.fromarray(road_frame(seed)).save(root / "val" / f"frame{seed}.png")
        Image.fromarray(np.full((48, 64), 3, np.uint8), mode="L").save(root / "valannot" / f"frame{seed}.png")
    return root


@pytest.fixture
def familiar_weights(tmp_path: Path, dashcam_data: Path) -> Path:
    """A tiny fp16 model file with its familiarity threshold measured on ``dashcam_data``, as export does."""
    config = tiny_compact_config()
    path = save_native(tmp_path / "tiny.safetensors", random_model(config).state_dict(), tiny_meta(config))
    attach_familiarity(path, dashcam_data, "val", "cpu")
    return path


def tensors(path: Path) -> dict[str, bytes]:
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key).numpy().tobytes() for key in handle.keys()}


def test_export_stores_the_domain_and_threshold_and_keeps_the_weights(tmp_path: Path, dashcam_data: Path) -> None:
    config = tiny_compact_config()
    path = save_native(tmp_path / "m.safetensors", random_model(config).state_dict(), tiny_meta(config))
    before = tensors(path)
    measured = attach_familiarity(path, dashcam_data, "val", "cpu")
    assert tensors(path) == before  # fp16 weights bit for bit
    meta = read_native_meta(path)
    assert meta.domain == DOMAINS["camvid"] and meta.familiarity == measured
    segmenter = Segmenter(load_weights_file(path), "cpu")
    values = [mean_confidence(segmenter.segment(road_frame(seed)).confidence()) for seed in FAMILIAR_SEEDS]
    assert measured["threshold"] == pytest.approx(np.percentile(values, FAMILIARITY_PERCENTILE), abs=1e-4)
    assert measured["images"] == len(FAMILIAR_SEEDS) and measured["split"] == "val"


def test_an_unlike_photo_gets_the_note_and_a_like_one_does_not(familiar_weights: Path) -> None:
    loaded = load_weights_file(familiar_weights)
    segmenter = Segmenter(loaded, "cpu")
    unlike = mean_confidence(segmenter.segment(face_close_up()).confidence())
    like = mean_confidence(segmenter.segment(road_frame(LIKE_SEED)).confidence())
    note = unfamiliar_note(loaded.meta, unlike)
    assert note is not None and "unlike" in note and DOMAINS["camvid"] in note and "PASCAL VOC" in note
    assert "(Model menu)" in note and "--model" not in note  # the viewer's way to them
    assert unfamiliar_note(loaded.meta, like) is None
    without_threshold = replace(loaded.meta, familiarity={})
    assert unfamiliar_note(without_threshold, unlike) is None  # files from before: no note, no guess


def test_segment_writes_the_note_in_its_log_and_info_json(
    tmp_path: Path, familiar_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(face_close_up()).save(folder / "face.png")
    Image.fromarray(road_frame(LIKE_SEED)).save(folder / "road.png")
    out = tmp_path / "out"
    assert main(["segment", str(folder), "--weights", str(familiar_weights), "--out", str(out), "--save-scores"]) == 0
    log = capsys.readouterr().err.splitlines()
    assert any("face.png" in line and "looks unlike" in line for line in log)
    assert not any("road.png" in line and "looks unlike" in line for line in log)
    notes = {stem: json.loads(str(np.load(out / f"{stem}.npz")["info_json"]))["notes"] for stem in ("face", "road")}
    assert any("looks unlike" in note for note in notes["face"]) and notes["road"] == []
    note = next(note for note in notes["face"] if "looks unlike" in note)
    assert "--model fcn8s-heavy-pascal" in note and "Model menu" not in note  # no menu on the command line
    assert any("face.png" in line and note in line for line in log)  # the log and info_json say the same


def test_the_viewer_notes_an_unlike_photo_without_blocking(
    qtbot: QtBot, tmp_path: Path, familiar_weights: Path
) -> None:
    window = MainWindow(ViewerSettings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.modelChanged, timeout=WAIT_MS):
        window.load_model(FileSource(familiar_weights))
    face, road = tmp_path / "face.png", tmp_path / "road.png"
    Image.fromarray(face_close_up()).save(face)
    Image.fromarray(road_frame(LIKE_SEED)).save(road)
    with qtbot.waitSignal(window.resultShown, timeout=WAIT_MS):
        window.open_image(face)
    assert window.banner.isVisible() and "looks unlike" in window.banner.text()
    assert window.banner.kind == "info"  # a note: the window stays usable
    assert f"trained on: {DOMAINS['camvid']}" in window.info.text()
    with qtbot.waitSignal(window.resultShown, timeout=WAIT_MS):
        window.open_image(road)
    assert not window.banner.isVisible()
    window.model_menu.aboutToShow.emit()
    texts = [action.text() for action in window.model_menu.actions()]
    assert any(DOMAINS["camvid"] in text for text in texts) and any(DOMAINS["pascal-voc"] in text for text in texts)


def test_the_bundled_models_carry_their_domain_and_threshold() -> None:
    bundled = [entry for entry in ENTRIES if entry.bundled and entry.available]
    if not bundled:
        pytest.skip("the bundled models are not installed")
    for entry in bundled:
        meta = read_native_meta(entry.path)
        assert meta.domain == DOMAINS["camvid"]
        assert 0.5 < meta.familiarity["threshold"] < meta.familiarity["median"] < 1.0
        assert meta.familiarity["images"] == 101 and meta.familiarity["split"] == "val"
    voc = replace(tiny_meta(tiny_compact_config(num_classes=21)), classes=VOC_CLASSES, palette=VOC_PALETTE)
    assert domain_of(voc) == DOMAINS["pascal-voc"]  # the paper's files carry no domain: known by their classes


@requires_camvid()
def test_the_bundled_model_notes_noise_but_not_a_camvid_photo() -> None:
    entry = next((e for e in ENTRIES if e.name == "camvid-fcn8s" and e.available), None)
    if entry is None or not entry.path.is_file():
        pytest.skip("camvid-fcn8s is not installed")
    loaded = load_model(RegistrySource(entry))
    segmenter = Segmenter(loaded, "cpu")
    photo = np.asarray(Image.open(min((CAMVID / "val").iterdir())).convert("RGB"))
    noise = np.random.default_rng(0).integers(0, 256, photo.shape, dtype=np.uint8)
    assert unfamiliar_note(loaded.meta, mean_confidence(segmenter.segment(photo).confidence())) is None
    assert unfamiliar_note(loaded.meta, mean_confidence(segmenter.segment(noise).confidence())) is not None
