"""Settings and cache folders that cannot be used: defaults and a note, never a crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from fcn_viewer.cli.main import main
from fcn_viewer.weights import cache
from fcn_viewer.weights.download import cache_dir
from fcn_viewer.weights.registry import entry


@pytest.fixture(autouse=True)
def _fresh_cache_choice() -> None:
    cache.clear()
    yield
    cache.clear()


@pytest.mark.parametrize("where", ["file", "proc", "under_file"])
def test_an_unusable_cache_dir_falls_back_to_a_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    (tmp_path / "taken").write_text("a file")
    configured = {"file": tmp_path / "taken", "proc": Path("/proc/fcn-viewer-cache"),
                  "under_file": tmp_path / "taken" / "cache"}[where]
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(configured))
    folder = cache_dir()
    assert folder != configured and folder.is_dir() and os.access(folder, os.W_OK)
    assert f"the cache folder {configured} cannot be used" in cache.cache_note()
    assert main(["models"]) == 0
    assert entry("camvid-fcn8s").available  # bundled: never in the cache


def test_settings_values_of_the_wrong_type_or_range_give_defaults_and_a_note(tmp_path: Path) -> None:
    from fcn_viewer.gui.settings import DEFAULT_OPACITY, ViewerSettings

    path = tmp_path / "settings.ini"
    path.write_text(
        "[display]\nopacity=nan\npalette=plaid\n[model]\ndevice=tpu\nprecision=fp8\n"
        "[files]\nrecent=\"[[[\"\n"
    )
    settings = ViewerSettings(path)
    assert settings.opacity == DEFAULT_OPACITY
    assert settings.palette == "model" and settings.device == "auto" and not settings.exact_fp32
    assert settings.recent_files == []
    for key in ("display/opacity", "display/palette", "model/device", "model/precision", "files/recent"):
        assert key in settings.problem
    path.write_text("[display]\nopacity=1e309\n")
    assert ViewerSettings(path).opacity == DEFAULT_OPACITY
    path.write_text("[display]\nopacity=0.25\n")
    good = ViewerSettings(path)
    assert good.opacity == 0.25 and good.problem == ""


def test_the_viewer_says_when_its_cache_folder_cannot_be_used(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fcn_viewer.gui.main_window import MainWindow
    from fcn_viewer.gui.settings import ViewerSettings

    (tmp_path / "taken").write_text("a file")
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path / "taken"))
    window = MainWindow(ViewerSettings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    assert window.banner.kind == "warning"
    assert f"the cache folder {tmp_path / 'taken'} cannot be used" in window.banner.text()
