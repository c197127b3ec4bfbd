"""Remembers the viewer's settings between runs, in a location tests and screenshots can redirect."""

from __future__ import annotations

import json
import math
import os
import stat
import sys
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from fcn_viewer.device_choice import DeviceChoice, is_device_choice
from fcn_viewer.imageio import file_kind
from fcn_viewer.view.options import PALETTES, PaletteName

SETTINGS_ENV = "FCN_VIEWER_SETTINGS"
MAX_RECENT = 10
DEFAULT_OPACITY = 0.6
FORMAT_KEY = "format_version"
FORMAT_VERSION = 1  # raise when a key changes meaning; older versions then start from defaults
PRECISION_CHOICES = ("auto", "fp32")
MAX_TEXT = 4096  # characters of a stored path
MAX_FILE_BYTES = 1 << 20  # a settings file is a few hundred bytes; a larger one is set aside unread
READ_LIMIT_S = 5.0  # start-up waits no longer on a settings file (a hung network drive)


class ViewerSettings:
    """Typed access to QSettings: an ini file at ``path`` (or ``$FCN_VIEWER_SETTINGS``), else the user's own.

    A damaged file, or one written by a newer fcn-viewer, is moved aside and the defaults are used. A path that
    is not a regular file (a FIFO, a device, a folder) is never opened: the settings then live in memory for the
    run. ``problem`` says either, and that the settings cannot be saved, for the window to show once.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self._file = Path(path or os.environ.get(SETTINGS_ENV) or user_settings_file())
        self._unsaved_said = False  # whether ``problem`` already says that the settings are not saved
        self._store, self.problem = self._open()
        self._store.setValue(FORMAT_KEY, FORMAT_VERSION)
        invalid = self._reset_invalid_values()
        note = f"Settings reset to their defaults: {'; '.join(invalid)}." if invalid else ""
        self.problem = " ".join(part for part in (self.problem, note, self.save()) if part)

    def _open(self) -> tuple[QSettings | MemoryStore, str]:
        """The store to use and what is wrong with the file ('' if nothing). A file that is not a regular one, or
        does not answer in time, is never handed to QSettings (which would block on a FIFO or read a device for
        good): the settings then live in memory for this run."""
        file = self._file
        content, refusal = _read_within(file, READ_LIMIT_S)
        if refusal:
            return self._in_memory(f"The settings file {file} {refusal}: the defaults are used, and settings are "
                                   "not saved.")
        problem = _too_large(content)
        if not problem:
            store = QSettings(str(file), QSettings.Format.IniFormat)
            problem = _unusable(store, content)
            if not problem:
                return store, ""
        kept = file.with_name(f"{file.name}.unused")
        try:
            file.replace(kept)
        except OSError as error:
            return self._in_memory(f"The settings file {file} {problem}. The defaults are used, and settings are "
                                   f"not saved: it could not be moved aside ({error.strerror}).")
        store = QSettings(str(file), QSettings.Format.IniFormat)
        return store, f"The settings file {file} {problem}. The defaults are used; the old file is kept as {kept}."

    def _in_memory(self, problem: str) -> tuple[MemoryStore, str]:
        self._unsaved_said = True
        return MemoryStore(), problem

    def save(self) -> str:
        """Writes the settings to their file; a note the first time that fails ('' when saved, or said before)."""
        self._store.sync()
        if self._store.status() == QSettings.Status.NoError or self._unsaved_said:
            return ""
        self._unsaved_said = True
        return f"The settings cannot be saved to {self._file}: changes are kept for this run only."

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

    @property
    def location(self) -> str:
        return str(self._file)

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
        """Whether the net runs in exact fp32 rather than at auto precision (bf16 where it qualifies), on any device."""
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


class MemoryStore:
    """The few QSettings calls made here, on a dict: settings for this run only, when the file is not to be used."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def value(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def setValue(self, key: str, value: Any) -> None:
        self._values[key] = value

    def contains(self, key: str) -> bool:
        return key in self._values

    def remove(self, key: str) -> None:
        self._values.pop(key, None)

    def clear(self) -> None:
        self._values.clear()

    def sync(self) -> None:
        """Nothing to write."""

    def status(self) -> QSettings.Status:
        return QSettings.Status.NoError


def user_settings_file() -> Path:
    """Where QSettings keeps this user's ini settings (its UserScope path), without QSettings reading any file."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        configured = os.environ.get("XDG_CONFIG_HOME", "")
        base = Path.home() / configured if configured else Path.home() / ".config"
    return base / "fcn-viewer" / "fcn-viewer.ini"


def _read_within(file: Path, seconds: float) -> tuple[bytes | None, str]:
    """``file``'s bytes (at most MAX_FILE_BYTES + 1; None when there is no file) and '', or None and why the file
    is not to be used at all: not a regular file, or no answer within ``seconds``."""
    outcome: list[tuple[bytes | None, str]] = []

    def read() -> None:
        try:
            outcome.append((_read_regular(file), ""))
        except _NotRegular as refusal:
            outcome.append((None, str(refusal)))
        except OSError:  # unreadable: QSettings says so and the file is set aside as damaged
            outcome.append((b"\0", ""))

    reader = threading.Thread(target=read, name="fcn-viewer settings", daemon=True)
    reader.start()
    reader.join(seconds)
    return outcome[0] if outcome else (None, f"could not be read within {seconds:g} s")


def _unusable(store: QSettings, content: bytes | None) -> str:
    """Why the stored settings (``content``, None when there is no file) cannot be used ('' if they can): damaged
    bytes, or a newer format."""
    if content is None:
        return ""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text or store.status() != QSettings.Status.NoError:
        return "is damaged (not a readable settings file)"
    stored = store.value(FORMAT_KEY, "1")
    version = stored if isinstance(stored, str) else "1"
    if not version.isdigit():
        return f"is damaged ({FORMAT_KEY} is {version!r})"
    if int(version) > FORMAT_VERSION:
        return f"was written by a newer fcn-viewer (settings format {version}; this one reads {FORMAT_VERSION})"
    return ""


def _too_large(content: bytes | None) -> str:
    too_large = content is not None and len(content) > MAX_FILE_BYTES
    return f"is too large for a settings file (over {MAX_FILE_BYTES} bytes)" if too_large else ""


class _NotRegular(Exception):
    """The settings path exists and is not a regular file."""


def _read_regular(file: Path) -> bytes | None:
    """The first MAX_FILE_BYTES + 1 bytes of ``file`` (None when it does not exist), opened only once stat says it
    is a regular file, without blocking, and checked again once open."""
    try:
        mode = os.stat(file).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(mode):
        descriptor = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(descriptor, "rb") as handle:
            mode = os.fstat(descriptor).st_mode
            if stat.S_ISREG(mode):
                return handle.read(MAX_FILE_BYTES + 1)
    raise _NotRegular(f"is not a regular file ({file_kind(mode)})")


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
