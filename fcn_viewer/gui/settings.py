"""Remembers the viewer's settings between runs, in a location tests and screenshots can redirect."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from fcn_viewer.device_choice import DeviceChoice, is_device_choice
from fcn_viewer.view.options import PALETTES, PaletteName

SETTINGS_ENV = "FCN_VIEWER_SETTINGS"
MAX_RECENT = 10
DEFAULT_OPACITY = 0.6
FORMAT_KEY = "format_version"
FORMAT_VERSION = 1  # raise when a key changes meaning; older versions then start from defaults
PRECISION_CHOICES = ("auto", "fp32")
MAX_TEXT = 4096  # characters of a stored path


class ViewerSettings:
    """Typed access to QSettings: an ini file at ``path`` (or ``$FCN_VIEWER_SETTINGS``), else the user's own.

    A damaged file, or one written by a newer fcn-viewer, is moved aside and the defaults are used;
    ``problem`` then says so, for the window to show.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        location = path or os.environ.get(SETTINGS_ENV)
        if location:
            self._store = QSettings(str(location), QSettings.Format.IniFormat)
        else:
            self._store = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "fcn-viewer", "fcn-viewer")
        self.problem = ""
        file = Path(self._store.fileName())
        problem = self._unusable(file)
        if problem:
            kept = file.with_name(f"{file.name}.unused")
            try:
                file.replace(kept)
                self._store = QSettings(str(file), QSettings.Format.IniFormat)
                where = f"the old file is kept as {kept}"
            except OSError as error:
                self._store.clear()
                where = f"it could not be moved aside ({error.strerror})"
            self.problem = f"The settings file {file} {problem}. The defaults are used; {where}."
        self._store.setValue(FORMAT_KEY, FORMAT_VERSION)
        invalid = self._reset_invalid_values()
        if invalid:
            note = f"Settings reset to their defaults: {'; '.join(invalid)}."
            self.problem = f"{self.problem} {note}".strip()

    def _reset_invalid_values(self) -> list[str]:
        """Removes every stored value that is of the wrong type or out of range; one note per value."""
        checks = {
            "display/opacity": _valid_opacity,
            "display/palette": lambda text: text in PALETTES,
            "model/device": is_device_choice,
            "model/precision": lambda text: text in PRECISION_CHOICES,
            "model/source": _valid_text,
            "files/last_folder": _valid_text,
            "files/recent": _valid_recent,
        }
        notes = []
        for key, valid in checks.items():
            if not self._store.contains(key):
                continue
            value = self._store.value(key)
            if not isinstance(value, str) or not valid(value):
                notes.append(f"{key} was {str(value)[:40]!r}")
                self._store.remove(key)
        geometry = self._store.value("window/geometry")
        if geometry is not None and not isinstance(geometry, QByteArray):
            notes.append("window/geometry was not a saved window geometry")
            self._store.remove("window/geometry")
        return notes

    def _unusable(self, file: Path) -> str:
        """Why the stored settings cannot be used ('' if they can): damaged bytes, or a newer format."""
        if not file.is_file():
            return ""
        try:
            text = file.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            text = "\0"
        if "\0" in text or self._store.status() != QSettings.Status.NoError:
            return "is damaged (not a readable settings file)"
        version = self._text(FORMAT_KEY, "1")
        if not version.isdigit():
            return f"is damaged ({FORMAT_KEY} is {version!r})"
        if int(version) > FORMAT_VERSION:
            return f"was written by a newer fcn-viewer (settings format {version}; this one reads {FORMAT_VERSION})"
        return ""

    @property
    def location(self) -> str:
        return self._store.fileName()

    def sync(self) -> None:
        self._store.sync()

    def _text(self, key: str, default: str = "") -> str:
        value = self._store.value(key, default)
        return value if isinstance(value, str) else default

    @property
    def geometry(self) -> QByteArray | None:
        value = self._store.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._store.setValue("window/geometry", value)

    @property
    def last_folder(self) -> str:
        return self._text("files/last_folder")

    @last_folder.setter
    def last_folder(self, folder: str) -> None:
        self._store.setValue("files/last_folder", folder)

    @property
    def recent_files(self) -> list[str]:
        try:
            files = json.loads(self._text("files/recent", "[]"))
        except ValueError:
            return []
        return [f for f in files if isinstance(f, str)][:MAX_RECENT] if isinstance(files, list) else []

    @recent_files.setter
    def recent_files(self, files: list[str]) -> None:
        self._store.setValue("files/recent", json.dumps(files[:MAX_RECENT]))

    def add_recent_file(self, path: str) -> None:
        self.recent_files = [path, *(f for f in self.recent_files if f != path)]

    @property
    def opacity(self) -> float:
        text = self._text("display/opacity", str(DEFAULT_OPACITY))
        return float(text) if _valid_opacity(text) else DEFAULT_OPACITY

    @opacity.setter
    def opacity(self, value: float) -> None:
        self._store.setValue("display/opacity", f"{value:.3f}")

    @property
    def palette(self) -> PaletteName:
        """The palette remembered ("model" when the file names none this version knows)."""
        name = self._text("display/palette", "model")
        return next((known for known in PALETTES if known == name), "model")

    @palette.setter
    def palette(self, name: PaletteName) -> None:
        self._store.setValue("display/palette", name)

    @property
    def device(self) -> DeviceChoice:
        """The device remembered ("auto" when the file names none this version knows)."""
        choice = self._text("model/device", "auto")
        return choice if is_device_choice(choice) else "auto"

    @device.setter
    def device(self, choice: DeviceChoice) -> None:
        self._store.setValue("model/device", choice)

    @property
    def exact_fp32(self) -> bool:
        """Whether GPUs run the net in exact fp32 rather than bf16."""
        return self._text("model/precision", "auto") == "fp32"

    @exact_fp32.setter
    def exact_fp32(self, exact: bool) -> None:
        self._store.setValue("model/precision", "fp32" if exact else "auto")

    @property
    def model(self) -> str:
        """The last model used: a registry name or a weights file path ('' if none yet)."""
        return self._text("model/source")

    @model.setter
    def model(self, source: str) -> None:
        self._store.setValue("model/source", source)


def _valid_opacity(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and 0.0 <= value <= 1.0


def _valid_text(text: str) -> bool:
    return len(text) <= MAX_TEXT and "\0" not in text


def _valid_recent(text: str) -> bool:
    try:
        files = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(files, list) and all(isinstance(f, str) and _valid_text(f) for f in files)
