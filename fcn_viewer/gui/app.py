"""Starts the viewer's Qt application, interactively or to save one screenshot of the window and exit."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import (
    QEventLoop,
    QMessageLogContext,
    QTimer,
    QtMsgType,
    qFormatLogMessage,
    qInstallMessageHandler,
)
from PySide6.QtWidgets import QApplication, QWidget

from fcn_viewer.cpu_threads import run_serially_here
from fcn_viewer.device_choice import DeviceChoice
from fcn_viewer.gui.collector import collect_on_gui_thread
from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.gui.settings import ViewerSettings
from fcn_viewer.options import Lesson
from fcn_viewer.resources import sample_images
from fcn_viewer.system_libraries import check_xcb_libraries
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.weights.loader import ModelSource

SETTLE_MS = 300
ANALYSIS_WAIT_MS = 20_000
LESSON_WAIT_MS = 60_000  # the classifier lesson runs the crops for up to 10 s, and each lesson draws a slide
POLL_MS = 50
EXIT_USAGE = 2  # the exit code of a usage error (cli/boundary.py)


MAX_SCREENSHOT_SIDE = 8192  # px: an 8K window is 200 MB of pixels; 30000x30000 would be 3.6 GB per buffer


def parse_size(text: str) -> tuple[int, int]:
    """'1280x800' → (1280, 800)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 1280x800") from None
    if width < 200 or height < 150:
        raise ValueError(f"size {text!r} is too small (at least 200x150)")
    if width > MAX_SCREENSHOT_SIDE or height > MAX_SCREENSHOT_SIDE:
        raise ValueError(f"size {text!r} is too large (at most {MAX_SCREENSHOT_SIDE}x{MAX_SCREENSHOT_SIDE})")
    return width, height


HARMLESS_OFFSCREEN_WARNING = "This plugin does not support propagateSizeHints()"


def quiet_offscreen_plugin(platform: str) -> bool:
    """On the offscreen platform (screenshots, CI), drops the one warning its plugin prints each time a window's
    size hints change; every other message goes out as Qt's own handler would write it. Whether it was installed."""
    if platform != "offscreen":
        return False

    def handler(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
        if message != HARMLESS_OFFSCREEN_WARNING:
            print(qFormatLogMessage(kind, context, message), file=sys.stderr, flush=True)

    qInstallMessageHandler(handler)
    return True


def application() -> QApplication:
    """The running QApplication, or a new one once the system has what Qt's platform plugin needs."""
    app = QApplication.instance()
    if app is None:
        check_xcb_libraries()  # a clear message with install commands instead of Qt's abort
        app = QApplication(sys.argv[:1])
        quiet_offscreen_plugin(QApplication.platformName())
        run_serially_here()  # the GUI thread's torch ops are small; a team of its own would slow the workers' passes
    app.setApplicationName("fcn-viewer")
    app.setOrganizationName("fcn-viewer")
    collect_on_gui_thread(app)
    return app  # type: ignore[return-value]


def run_viewer(
    image: Path | None,
    source: ModelSource | None = None,
    device: DeviceChoice | None = None,
    size: tuple[int, int] | None = None,
) -> int:
    """Opens the window and runs until it is closed; without ``image``, on the first bundled sample photo."""
    app = application()
    if image is None:
        image = next(iter(sample_images()), None)
    window = MainWindow(ViewerSettings())
    if device is not None:
        window.choose_device(device)
    if size is not None:
        window.resize(*size)
    window.show()
    window.start(image, source)
    return app.exec()


def _wait_until(ready: Callable[[], bool], limit_ms: int) -> None:
    """Runs the event loop until ``ready()`` holds, or for at most ``limit_ms``."""
    loop = QEventLoop()
    poll = QTimer(loop)
    poll.timeout.connect(lambda: loop.quit() if ready() else None)
    poll.start(POLL_MS)
    QTimer.singleShot(limit_ms, loop, loop.quit)  # with the loop as context: never fires after it is gone
    if not ready():
        loop.exec()
    poll.stop()


def _show_tab(window: MainWindow, tab: str, lesson: Lesson | None = None) -> None:
    """Shows one of the window's tabs (one of ``options.SCREENSHOT_TABS``) and waits, up to ANALYSIS_WAIT_MS, until
    what it computes for the image is drawn in it."""
    classroom = window.classroom
    if tab == "stages":
        window.tabs.setCurrentWidget(window.grid)
        return
    views: dict[str, QWidget] = {
        "steps": classroom.steps, "compare": classroom.compare, "truth": classroom.truth,
        "contributions": classroom.contributions, "fields": classroom.fields, "sequence": classroom.sequence,
        "lessons": classroom.lessons,
    }
    classroom.show_view(views[tab])
    if tab in ("compare", "truth"):
        _wait_until(lambda: classroom.model.analysis is not None, ANALYSIS_WAIT_MS)
    elif tab == "contributions":
        split = classroom.contributions
        _wait_until(lambda: split.lesson.shown is not None or split.status.text().startswith("Could not"),
                    ANALYSIS_WAIT_MS)
    elif tab == "sequence":  # shown, it opens the bundled sequence: its first frame drawn
        playback = classroom.model.playback
        _wait_until(lambda: playback.shown_index >= 0 or playback.source is None, ANALYSIS_WAIT_MS)
    elif tab == "lessons":
        lessons = classroom.model.lessons
        if lesson is not None and lesson != lessons.lesson:
            lessons.choose(lesson)
        _wait_until(lambda: lessons.shown is not None or "failed" in classroom.lessons.status.text(), LESSON_WAIT_MS)


def _present(window: MainWindow, step: int, size: tuple[int, int]) -> QWidget:
    """The presenter at ``step``, at ``size`` rather than the screen's (a screenshot's screen may be any size)."""
    window.classroom.show_step(step)
    window.classroom.present()
    presenter = window.classroom.presenter
    presenter.showNormal()
    presenter.resize(*size)
    return presenter


def save_screenshot(
    image: Path,
    target: Path,
    source: ModelSource | None = None,
    device: DeviceChoice | None = None,
    size: tuple[int, int] = (1280, 800),
    teach_step: int | None = None,
    tab: str | None = None,
    lesson: Lesson | None = None,
) -> int:
    """Opens the window with fresh settings, waits for ``image``'s result, saves the window as a PNG, exits.

    With ``teach_step`` the window shows that step (1-based) of the fusion step-through instead of the panels;
    with ``tab`` (one of ``options.SCREENSHOT_TABS``) that tab, once its analysis is drawn; with ``tab`` "present"
    the presenter's slide of that step (default 1) is saved instead of the window, at ``size``.
    """
    app = application()
    with tempfile.TemporaryDirectory(prefix="fcn-viewer-screenshot.") as folder:
        window = MainWindow(ViewerSettings(Path(folder) / "settings.ini"))
        if device is not None:
            window.choose_device(device)
        window.resize(*size)
        window.show()
        outcome: dict[str, object] = {}
        grabbed_what, failure_code = "", 1
        loop = QEventLoop()
        grabbed: QWidget = window

        def shown(result: ViewResult) -> None:
            if result.segmentation is not None:
                outcome["result"] = result
                loop.quit()

        def failed(message: str) -> None:
            outcome.setdefault("error", message)
            loop.quit()

        window.resultShown.connect(shown)
        window.jobFailed.connect(failed)
        source = source or window.initial_model()
        if source is None:
            outcome["error"] = "no model to run: the bundled model is not installed; pass --weights or --model"
        else:
            window.start(image, source)
            loop.exec()
        if "error" not in outcome:
            count = len(window.classroom.steps.steps)
            if teach_step is not None and not 1 <= teach_step <= count:
                outcome["error"] = f"--teach-step {teach_step}: this net's step-through has steps 1 to {count}"
                failure_code = EXIT_USAGE
            elif tab == "present":
                grabbed = _present(window, teach_step or 1, size)
            elif teach_step is not None:
                window.classroom.show_step(teach_step)
            elif tab is not None:
                _show_tab(window, tab, lesson)
        if "error" not in outcome:
            QTimer.singleShot(SETTLE_MS, loop, loop.quit)
            loop.exec()
            target.parent.mkdir(parents=True, exist_ok=True)
            if not grabbed.grab().save(str(target), "PNG"):
                outcome["error"] = f"cannot write {target}"
            grabbed_what = "the presenter's slide" if grabbed is not window else (
                f"the {window.tabs.tabText(window.tabs.currentIndex())} tab")
        window.close()
        app.processEvents()
    if "error" in outcome:
        print(f"error: {outcome['error']}", file=sys.stderr)
        return failure_code
    print(f"screenshot of {grabbed_what} saved to {target}", file=sys.stderr)
    return 0
