"""Settings and cache folders that cannot be used: defaults and a note, never a crash."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from fcn_viewer.cli.main import main
from fcn_viewer.weights import cache
from fcn_viewer.weights.download import cache_dir
from fcn_viewer.weights.registry import entry
from tests.hostile import HANG_LIMIT_S, memory_capped, run_capped, within


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


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_settings_file_is_not_opened_and_the_defaults_are_used(tmp_path: Path) -> None:
    fifo = tmp_path / "settings.ini"
    os.mkfifo(fifo)
    child = run_capped(f"""
        from fcn_viewer.gui.settings import DEFAULT_OPACITY, ViewerSettings
        settings = ViewerSettings({str(fifo)!r})
        print(settings.problem)
        assert settings.opacity == DEFAULT_OPACITY
        settings.opacity = 0.25  # kept for the run, never written to the FIFO
        settings.sync()
        assert settings.opacity == 0.25
        """, seconds=HANG_LIMIT_S)  # a child: a hang in Qt's open cannot be abandoned in this process
    assert child.returncode == 0, child.stderr[-2000:]
    assert f"The settings file {fifo} is not a regular file (a FIFO)" in child.stdout
    assert "not saved" in child.stdout and stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.parametrize("kind", ["folder", "device"])
def test_a_settings_file_that_is_a_folder_or_a_device_is_said_once_in_the_banner(
    qtbot: QtBot, tmp_path: Path, kind: str
) -> None:
    from fcn_viewer.gui.main_window import MainWindow
    from fcn_viewer.gui.settings import ViewerSettings

    path = tmp_path / "settings.ini" if kind == "folder" else Path("/dev/zero")
    if kind == "folder":
        path.mkdir()
    settings = ViewerSettings(path)
    window = MainWindow(settings)
    qtbot.addWidget(window)
    what = "a folder" if kind == "folder" else "a character device"
    assert window.banner.kind == "warning"
    assert f"The settings file {path} is not a regular file ({what})" in window.banner.text()
    assert window.banner.text().count("not saved") == 1
    window.state.set_opacity(0.3)
    window.close()
    assert settings.opacity == 0.3  # remembered for this run
    assert path.is_dir() if kind == "folder" else path.is_char_device()


def test_settings_that_cannot_be_saved_are_said_in_the_banner(qtbot: QtBot, tmp_path: Path) -> None:
    from fcn_viewer.gui.main_window import MainWindow
    from fcn_viewer.gui.settings import ViewerSettings

    (tmp_path / "taken").write_text("a file, where the settings folder should be")
    path = tmp_path / "taken" / "settings.ini"
    window = MainWindow(ViewerSettings(path))
    qtbot.addWidget(window)
    assert window.banner.kind == "warning"
    assert f"The settings cannot be saved to {path}" in window.banner.text()


def test_reading_the_settings_has_a_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fcn_viewer.gui import settings as module

    path = tmp_path / "settings.ini"
    path.write_text("[display]\nopacity=0.25\n")
    monkeypatch.setattr(module, "READ_LIMIT_S", 0.2)
    monkeypatch.setattr(module, "_read_regular", lambda file: time.sleep(3))  # a file system that does not answer
    settings = within(lambda: module.ViewerSettings(path), seconds=2)
    assert isinstance(settings, module.ViewerSettings), settings
    assert f"The settings file {path} could not be read within 0.2 s" in settings.problem
    assert settings.opacity == module.DEFAULT_OPACITY and path.read_text() == "[display]\nopacity=0.25\n"


@memory_capped
def test_a_3_gb_settings_file_is_set_aside_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "settings.ini"
    with open(path, "wb") as file:
        file.truncate(3 << 30)  # sparse: 3 GB of NUL bytes that take no disk
    child = run_capped(f"""
        from fcn_viewer.gui.settings import ViewerSettings
        print(ViewerSettings({str(path)!r}).problem)
        """, seconds=20)
    assert child.returncode == 0, child.stderr[-2000:]
    assert f"The settings file {path} is too large" in child.stdout
    assert path.with_name("settings.ini.unused").stat().st_size == 3 << 30


def test_the_users_settings_file_is_where_qsettings_keeps_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path is worked out without QSettings (which would read the file, and its fallbacks, on creation)."""
    from PySide6.QtCore import QSettings

    from fcn_viewer.gui.settings import user_settings_file

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    qt = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "fcn-viewer", "fcn-viewer")
    assert Path(qt.fileName()) == user_settings_file() == tmp_path / "config" / "fcn-viewer" / "fcn-viewer.ini"
