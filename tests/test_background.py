"""Worker threads run at a lower priority than the window's event loop."""

from __future__ import annotations

import os
import sys
import threading

import pytest
from PySide6.QtCore import QObject, QThread, Signal, Slot
from pytestqt.qtbot import QtBot

from fcn_viewer.gui.background import BACKGROUND_NICE, start_in_background


class _Probe(QObject):
    asked = Signal()
    answered = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.asked.connect(self.answer)

    @Slot()
    def answer(self) -> None:
        self.answered.emit(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread nice values are Linux's")
def test_a_background_thread_is_nicer_than_the_window(qtbot: QtBot) -> None:
    thread, probe = QThread(), _Probe()
    probe.moveToThread(thread)
    window_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    start_in_background(thread)
    try:
        with qtbot.waitSignal(probe.answered, timeout=5000) as answer:
            probe.asked.emit()
        assert answer.args == [max(BACKGROUND_NICE, window_nice)]
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == window_nice
    finally:
        thread.quit()
        thread.wait()
