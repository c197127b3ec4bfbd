"""The cycle collector runs on the GUI thread only (a worker thread collecting Qt objects crashes PySide)."""

from __future__ import annotations

import gc
import weakref

from PySide6.QtWidgets import QApplication

from fcn_viewer.gui.collector import GuiThreadCollector, collect_on_gui_thread


class Node:
    def __init__(self) -> None:
        self.partner: Node | None = None


def test_automatic_collection_is_off_and_the_gui_threads_timer_collects_cycles(qapp: QApplication) -> None:
    collector = collect_on_gui_thread(qapp)
    assert collect_on_gui_thread(qapp) is collector  # one per application
    assert not gc.isenabled()
    a, b = Node(), Node()
    a.partner, b.partner = b, a
    gone = weakref.ref(a)
    del a, b
    alive = [[] for _ in range(3 * gc.get_threshold()[0])]  # past the youngest generation's threshold
    assert gone() is not None and len(alive) > 0  # nothing collected on its own
    GuiThreadCollector.collect()
    assert gone() is None
