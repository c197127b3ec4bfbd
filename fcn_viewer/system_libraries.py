"""Before the viewer creates its QApplication on Linux: are the system libraries of Qt's xcb (X11) platform plugin
installed, and is there a display? Qt itself aborts with one cryptic line naming one library; this names every
missing one and the Debian/Ubuntu and Fedora packages that provide it."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fcn_viewer.errors import FCNViewerError


@dataclass(frozen=True)
class SystemLibrary:
    soname: str
    debian: str  # Debian / Ubuntu package
    fedora: str  # Fedora / RHEL package


# What PySide6's libqxcb.so and libQt6XcbQpa.so link against beyond the C library (`ldd`), most often missing first.
XCB_LIBRARIES: tuple[SystemLibrary, ...] = (
    SystemLibrary("libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor"),
    SystemLibrary("libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm"),
    SystemLibrary("libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms"),
    SystemLibrary("libxcb-image.so.0", "libxcb-image0", "xcb-util-image"),
    SystemLibrary("libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil"),
    SystemLibrary("libxcb-util.so.1", "libxcb-util1", "xcb-util"),
    SystemLibrary("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11"),
    SystemLibrary("libxkbcommon.so.0", "libxkbcommon0", "libxkbcommon"),
    SystemLibrary("libX11-xcb.so.1", "libx11-xcb1", "libX11-xcb"),
    SystemLibrary("libxcb-randr.so.0", "libxcb-randr0", "libxcb"),
    SystemLibrary("libxcb-shape.so.0", "libxcb-shape0", "libxcb"),
    SystemLibrary("libxcb-shm.so.0", "libxcb-shm0", "libxcb"),
    SystemLibrary("libxcb-sync.so.1", "libxcb-sync1", "libxcb"),
    SystemLibrary("libxcb-xfixes.so.0", "libxcb-xfixes0", "libxcb"),
    SystemLibrary("libxcb-xkb.so.1", "libxcb-xkb1", "libxcb"),
    SystemLibrary("libxcb-render.so.0", "libxcb-render0", "libxcb"),
    SystemLibrary("libxcb.so.1", "libxcb1", "libxcb"),
)


class MissingSystemLibraries(FCNViewerError):
    """The window cannot open: Qt's platform plugin needs libraries the system does not have."""


def can_load(soname: str) -> bool:
    """Whether the dynamic linker finds ``soname`` (as Qt's plugin loader would)."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(platform: str, environ: Mapping[str, str]) -> bool:
    """Whether Qt will load its xcb plugin: on Linux, unless another platform is asked for or the session is
    Wayland (which Qt prefers there)."""
    if not platform.startswith("linux"):
        return False
    requested = environ.get("QT_QPA_PLATFORM", "").strip()
    if requested:
        return requested.split(";")[0].split(":")[0] == "xcb"
    return not (environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY"))


def missing_xcb_libraries(
    platform: str = sys.platform,
    environ: Mapping[str, str] = os.environ,
    loadable: Callable[[str], bool] = can_load,
) -> list[SystemLibrary]:
    """The xcb plugin's libraries the system lacks (none when the xcb plugin will not be used)."""
    if not uses_xcb(platform, environ):
        return []
    return [library for library in XCB_LIBRARIES if not loadable(library.soname)]


def install_hint(missing: list[SystemLibrary]) -> str:
    names = ", ".join(library.soname for library in missing)
    debian = " ".join(dict.fromkeys(library.debian for library in missing))
    fedora = " ".join(dict.fromkeys(library.fedora for library in missing))
    return (
        f"the viewer cannot open a window: Qt's X11 (xcb) platform plugin needs system libraries that are "
        f"not installed: {names}.\n"
        f"  Debian / Ubuntu:  sudo apt-get install {debian}\n"
        f"  Fedora:           sudo dnf install {fedora}\n"
        "Then start it again. (Without a display, the command line works, and "
        "`QT_QPA_PLATFORM=offscreen fcn-viewer gui IMAGE --screenshot out.png` renders the window to a file.)"
    )


def check_xcb_libraries(
    platform: str = sys.platform,
    environ: Mapping[str, str] = os.environ,
    loadable: Callable[[str], bool] = can_load,
) -> None:
    """Raises :class:`MissingSystemLibraries` with install commands when the xcb plugin could not load, or says
    that there is no X display to connect to (where Qt would abort blaming a library)."""
    missing = missing_xcb_libraries(platform, environ, loadable)
    if missing:
        raise MissingSystemLibraries(install_hint(missing))
    if uses_xcb(platform, environ) and not environ.get("DISPLAY"):
        raise MissingSystemLibraries(
            "the viewer cannot open a window: no X display (DISPLAY is not set). Start it from a desktop session, "
            "or without a display use the command line, or `QT_QPA_PLATFORM=offscreen fcn-viewer gui IMAGE "
            "--screenshot out.png`."
        )
