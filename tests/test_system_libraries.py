"""The viewer's check for what Qt's xcb plugin needs: a message naming the missing libraries and the packages to
install, instead of Qt's abort (the check's inputs — platform, environment, loader — are faked)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fcn_viewer.cli.main import main
from fcn_viewer.system_libraries import (
    XCB_LIBRARIES,
    MissingSystemLibraries,
    check_xcb_libraries,
    missing_xcb_libraries,
)

X11 = {"DISPLAY": ":0"}
ABSENT = {"libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"}


def loader_without(absent: set[str]) -> Callable[[str], bool]:
    """A stand-in for the dynamic linker that finds everything but ``absent``."""
    return lambda soname: soname not in absent


def test_missing_libraries_are_named_with_debian_and_fedora_packages() -> None:
    with pytest.raises(MissingSystemLibraries) as raised:
        check_xcb_libraries("linux", X11, loader_without(ABSENT))
    text = str(raised.value)
    for soname in sorted(ABSENT):
        assert soname in text
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1\n" in text
    assert "sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms\n" in text


def test_a_complete_system_passes_and_other_platforms_are_not_checked() -> None:
    check_xcb_libraries("linux", X11, loader_without(set()))
    nothing = loader_without({library.soname for library in XCB_LIBRARIES})
    assert missing_xcb_libraries("darwin", X11, nothing) == []
    assert missing_xcb_libraries("win32", X11, nothing) == []
    assert missing_xcb_libraries("linux", {"QT_QPA_PLATFORM": "offscreen"}, nothing) == []
    assert missing_xcb_libraries("linux", {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, nothing) == []
    assert len(missing_xcb_libraries("linux", {"QT_QPA_PLATFORM": "xcb", **X11}, nothing)) == len(XCB_LIBRARIES)


def test_no_display_is_said_plainly() -> None:
    with pytest.raises(MissingSystemLibraries, match="DISPLAY is not set"):
        check_xcb_libraries("linux", {}, loader_without(set()))


def test_the_gui_command_prints_the_message_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fcn_viewer.gui.app as app_module

    monkeypatch.setattr(app_module.QApplication, "instance", staticmethod(lambda: None))  # as at a real start
    monkeypatch.setattr(app_module, "check_xcb_libraries",
                        lambda: check_xcb_libraries("linux", X11, loader_without({"libxcb-cursor.so.0"})))
    assert main(["gui"]) == 1
    err = capsys.readouterr().err
    assert "libxcb-cursor.so.0" in err and "sudo apt-get install libxcb-cursor0" in err
