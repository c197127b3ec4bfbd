"""The child of tests/test_teardown.py: builds one tab's view on its own (or the main window), gives it some work,
closes it, and leaves the rest to Python's teardown, which must end the process with rc 0 and no crash.

Run as ``python -c "from tests.teardown_child import main; main()" CASE FOLDER`` with QT_QPA_PLATFORM=offscreen.
A case ending in ``-orphaned`` closes nothing and shuts nothing down: the view, its job queues and their threads
are only dropped, as a test that forgets its cleanup would drop them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QApplication, QWidget

WAIT_S = 15.0

VIEWS = ("steps", "compare", "truth", "datasets", "fields", "contributions", "sequence", "lessons")
CASES = (*VIEWS, "window", "sequence-orphaned", "window-orphaned")


def wait_for(app: QApplication, done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {WAIT_S} s")
        app.processEvents()
        time.sleep(0.01)


def tiny_weights(folder: Path) -> Path:
    from fcn_viewer.weights.native import save_native
    from tests.helpers import random_model, tiny_compact_config, tiny_meta

    config = tiny_compact_config()
    return save_native(folder / "tiny.safetensors", random_model(config).state_dict(), tiny_meta(config), half=False)


def build_view(app: QApplication, case: str, folder: Path) -> tuple[QWidget, Callable[[], None]]:
    """The view of ``case``, shown and given work where it has any, and how the app would shut it down."""
    from fcn_viewer.gui.compare_view import CompareView
    from fcn_viewer.gui.contributions_view import ContributionsView
    from fcn_viewer.gui.dataset_view import DatasetView
    from fcn_viewer.gui.fields_view import ReceptiveFieldView
    from fcn_viewer.gui.lessons_view import LessonsView
    from fcn_viewer.gui.sequence_view import SequenceView
    from fcn_viewer.gui.teaching_view import StepThroughView
    from fcn_viewer.gui.truth_view import TruthView
    from fcn_viewer.inference import Segmenter
    from fcn_viewer.weights.loader import load_weights_file
    from tests.gui_helpers import Teaching
    from tests.test_sequence import write_frames

    plain: dict[str, Callable[[], QWidget]] = {"steps": StepThroughView, "compare": CompareView, "truth": TruthView,
                                               "datasets": DatasetView, "fields": ReceptiveFieldView}
    if case in plain:
        view = plain[case]()
        return view, lambda: None
    teaching = Teaching()
    if case == "contributions":
        contributions = ContributionsView(teaching.classroom.contributions)
        return contributions, lambda: (contributions.shutdown(), teaching.shutdown())
    teaching.use(Segmenter(load_weights_file(tiny_weights(folder)), "cpu"))
    if case == "lessons":
        lessons = LessonsView(teaching.classroom.lessons)
        return lessons, lambda: (lessons.shutdown(), teaching.shutdown())
    sequence = SequenceView(teaching.classroom.playback)
    shown: list[int] = []
    sequence.frameShown.connect(shown.append)
    sequence.show()
    assert sequence.open_folder(write_frames(folder / "frames", 6)), sequence.status.text()
    wait_for(app, lambda: bool(shown), "the first frame")
    sequence.play()  # frames still on their way when it closes
    return sequence, lambda: (sequence.shutdown(), teaching.shutdown())


def build_window(app: QApplication, folder: Path) -> tuple[QWidget, Callable[[], None]]:
    """The main window with a model and an image shown, its teaching tabs' analysis asked for."""
    from PIL import Image

    from fcn_viewer.gui.main_window import MainWindow
    from fcn_viewer.gui.settings import ViewerSettings
    from fcn_viewer.weights.loader import FileSource
    from tests.helpers import gradient_image

    window = MainWindow(ViewerSettings(folder / "settings.ini"))
    shown: list[object] = []
    window.resultShown.connect(shown.append)
    window.show()
    image = folder / "photo.png"
    Image.fromarray(gradient_image(40, 56)).save(image)
    window.load_model(FileSource(tiny_weights(folder)))
    window.open_image(image)
    wait_for(app, lambda: bool(shown), "the image's result")
    window.classroom.show_view(window.classroom.compare)  # its analysis runs on the classroom's queue
    return window, lambda: None  # closing the window shuts its workers down


def main() -> None:
    case, folder = sys.argv[1], Path(sys.argv[2])
    app = QApplication([])
    base = case.removesuffix("-orphaned")
    view, shutdown = build_window(app, folder) if base == "window" else build_view(app, base, folder)
    view.resize(900, 600)
    view.show()
    app.processEvents()
    if not case.endswith("-orphaned"):
        view.close()
        shutdown()
        app.processEvents()
    print(f"{case}: built and closed", flush=True)
    # Python tears everything down from here: the view, its job queues and threads, the QApplication.
