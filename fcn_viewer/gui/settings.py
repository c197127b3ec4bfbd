"""Remembers the viewer's settings between runs, in a location tests and screenshots can redirect."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

SETTINGS_ENV = "FCN_VIEWER_SETTINGS"
MAX_RECENT = 10
DEFAULT_OPACITY = 0.6


class ViewerSettings:
    """Typed access to QSettings: an ini file at ``path`` (or ``$FCN_VIEWER_SETTINGS``), else the user's own."""

    def __init__(self, path: str | Path | None = None) -> None:
        location = path or os.environ.get(SETTINGS_ENV)
        if location:
            self._store = QSettings(str(location), QSettings.Format.IniFormat)
        else:
            self._store = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "fcn-viewer", "fcn-viewer")

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
        try:
            return min(max(float(self._text("display/opacity", str(DEFAULT_OPACITY))), 0.0), 1.0)
        except ValueError:
            return DEFAULT_OPACITY

    @opacity.setter
    def opacity(self, value: float) -> None:
        self._store.setValue("display/opacity", f"{value:.3f}")

    @property
    def palette(self) -> str:
        return self._text("display/palette", "model")

    @palette.setter
    def palette(self, name: str) -> None:
        self._store.setValue("display/palette", name)

    @property
    def device(self) -> str:
        return self._text("model/device", "auto")

    @device.setter
    def device(self, choice: str) -> None:
        self._store.setValue("model/device", choice)

    @property
    def model(self) -> str:
        """The last model used: a registry name or a weights file path ('' if none yet)."""
        return self._text("model/source")

    @model.setter
    def model(self, source: str) -> None:
        self._store.setValue("model/source", source)
