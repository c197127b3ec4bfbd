"""Teaching and comparison mode: puts the teaching tabs and the dataset dock into the viewer and draws what the
classroom model (view/classroom_model.py) says; their work runs on the classroom service (gui/analysis_worker.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMenu, QWidget

from fcn_viewer.evaluation import Evaluation
from fcn_viewer.gui.analysis_worker import ClassroomService
from fcn_viewer.gui.compare_view import CompareView
from fcn_viewer.gui.contributions_view import ContributionsView
from fcn_viewer.gui.dataset_view import DatasetView
from fcn_viewer.gui.fields_view import ReceptiveFieldView
from fcn_viewer.gui.lessons_view import LessonsView
from fcn_viewer.gui.presenter import PresenterView
from fcn_viewer.gui.sequence_view import SequenceView
from fcn_viewer.gui.state import ViewState
from fcn_viewer.gui.tab import TabFrame, TabView
from fcn_viewer.gui.teaching_view import StepThroughView
from fcn_viewer.gui.truth_view import TruthView
from fcn_viewer.gui.worker import ModelLoader, load_source
from fcn_viewer.model.stages import Stage
from fcn_viewer.teaching.dataset_table import TableRow
from fcn_viewer.view.classroom_jobs import Analysed
from fcn_viewer.view.classroom_model import ClassroomModel, CurrentModel
from fcn_viewer.view.options import DisplayOptions
from fcn_viewer.view.panel_content import ViewResult, resolve_palette
from fcn_viewer.view.presenter import PresenterModel
from fcn_viewer.view.viewer_model import ModelInfo
from fcn_viewer.weights.meta import ModelMeta

LABEL_FILTER = "Label images (*.png)"
FIGURE_FILTER = "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)"
DATASET_DOCK_HEIGHT = 260
NO_LABEL = ("No label found next to this image (CamVid: <folder>annot/<stem>.png beside <folder>/; VOC: "
            "SegmentationClass/<stem>.png beside JPEGImages/). Pick one with the Open Label… button.")


class ClassroomHost(Protocol):
    """What the teaching views need of the window that hosts them: room for views and a dock, messages,
    dialogs, and opening an image."""

    def widget(self) -> QWidget:
        """The parent of the teaching views' dialogs."""
        ...

    def add_view(self, view: QWidget, title: str) -> None: ...

    def show_view(self, view: QWidget) -> None: ...

    def add_dock(self, dock: QDockWidget) -> None: ...

    def fit_dock(self, dock: QDockWidget, height: int) -> None: ...

    def last_folder(self) -> str: ...

    def open_image(self, path: Path) -> None: ...

    def show_error(self, message: str) -> None: ...

    def show_status(self, message: str) -> None: ...

    def ask_save_path(self, title: str, suggested: Path, file_filter: str) -> Path | None: ...

    def ask_confirmation(self, title: str, text: str) -> bool: ...


class Classroom(QObject):
    """The teaching tabs and the dataset dock, drawn from the classroom model (``model``), which holds their state
    and numbers their jobs; the host window only shows them.

    It reads the colours from the display state; the host tells it of each result shown (:meth:`result_shown`) and
    model in use (:meth:`model_changed`). Its views forward what the user asks for to the model; the model's
    answers come back here (it is the model's :class:`~fcn_viewer.view.classroom_model.ClassroomListener`).
    """

    analysisShown = Signal(object)  # ImageAnalysis now drawn
    datasetScored = Signal(object)  # Evaluation of a finished (or stopped) dataset run

    def __init__(self, host: ClassroomHost, viewer: CurrentModel, display: ViewState,
                 load: ModelLoader = load_source) -> None:
        super().__init__(host.widget())
        self.host = host
        self.display = display
        self.service = ClassroomService(self, load)
        self.model = ClassroomModel(self.service, viewer, self)
        self.service.answer_to(self.model.answer)

        self.steps = StepThroughView()
        self.compare = CompareView()
        self.truth = TruthView()
        self.datasets = DatasetView()
        self.contributions = ContributionsView(self.model.contributions)
        self.fields = ReceptiveFieldView()
        self.sequence = SequenceView(self.model.playback)
        self.lessons = LessonsView(self.model.lessons)
        # The tabs in order, as the window and the Teaching menu show them: a new tab is one more entry here.
        self.tabs: tuple[TabView, ...] = (self.steps, self.compare, self.truth, self.contributions, self.fields,
                                          self.sequence, self.lessons)
        for tab in self.tabs:
            host.add_view(tab.widget(), tab.title)
        self.presenter = PresenterView(PresenterModel(self.steps.deck), host.widget())
        self.presenter.left.connect(self._presenter_left)
        self.dataset_dock = QDockWidget("Dataset", host.widget())
        self.dataset_dock.setObjectName("datasetDock")
        self.dataset_dock.setWidget(self.datasets)
        host.add_dock(self.dataset_dock)
        self.dataset_dock.hide()
        self.menu = self._build_menu()

        display.optionsChanged.connect(self._options_changed)
        for toggle in (self.compare.toggle, self.truth.toggle):
            toggle.modeChanged.connect(self.set_mode)
        self.compare.radiusChanged.connect(self.model.set_radius)
        for page in (self.compare, self.truth):  # the analysis runs while a tab that draws it is shown
            page.shownChanged.connect(self._analysis_tabs_shown)
        self._analysis_tabs_shown()
        self.truth.pickLabel.connect(self.pick_label)
        self.datasets.openImage.connect(host.open_image)
        self.datasets.scoreRequested.connect(self.model.score_dataset)
        self.datasets.stopRequested.connect(self.model.stop_dataset)
        self.datasets.splitChanged.connect(self.model.choose_split)
        self.mode_changed()

    def _build_menu(self) -> QMenu:
        menu = QMenu("&Teaching", self.host.widget())
        menu.setToolTipsVisible(True)
        for tab in self.tabs:
            action = menu.addAction(tab.menu_title)
            action.setShortcut(QKeySequence(tab.shortcut))
            action.triggered.connect(lambda _=False, shown=tab: self.show_view(shown.widget()))
        menu.addSeparator()
        menu.addAction("Open Ground-Truth &Label…").triggered.connect(self.pick_label)
        menu.addAction("Open &Video or Animated Image…").triggered.connect(self.open_sequence_file)
        menu.addAction("Open &Frames Folder…").triggered.connect(self.open_sequence)
        menu.addAction("Open &Bundled Sequence").triggered.connect(self.open_bundled_sequence)
        dataset = menu.addAction("Open &Dataset Folder…")
        dataset.setShortcut(QKeySequence("Ctrl+Shift+O"))
        dataset.triggered.connect(self.open_dataset_dialog)
        panel = self.dataset_dock.toggleViewAction()
        panel.setText("Dataset Scores &Panel")
        panel.setToolTip("Show or hide the panel that scores every image of a dataset split, row by row (Open "
                         "Dataset Folder… fills it)")
        menu.addAction(panel)
        menu.addSeparator()
        menu.addAction("Export Slide &Figure (PNG, SVG, PDF)…").triggered.connect(self.export_slide)
        return menu

    # ---- dialogs (tests replace these) -------------------------------------------------------

    def ask_label_file(self) -> Path | None:
        parent = self.host.widget()
        name, _ = QFileDialog.getOpenFileName(parent, "Open ground-truth label", self._folder(), LABEL_FILTER)
        return Path(name) if name else None

    def ask_dataset_folder(self) -> Path | None:
        name = QFileDialog.getExistingDirectory(
            self.host.widget(), "Open dataset folder (CamVid layout or VOCdevkit/VOC20xx)", self._folder()
        )
        return Path(name) if name else None

    def _folder(self) -> str:
        return self.host.last_folder()

    # ---- what the window shows -----------------------------------------------------------------

    def show_view(self, view: QWidget) -> None:
        self.host.show_view(view)

    def open_sequence(self) -> None:
        """The Sequence tab, with its folder dialog open."""
        self.show_view(self.sequence)
        self.sequence.open_dialog()

    def open_sequence_file(self) -> None:
        """The Sequence tab, with its dialog for a video or an animated image open."""
        self.show_view(self.sequence)
        self.sequence.open_file_dialog()

    def open_bundled_sequence(self) -> None:
        """The Sequence tab showing the bundled CamVid sequence, in place of whatever was open."""
        self.model.playback.open_bundled(replace=True)
        self.show_view(self.sequence)

    def show_step(self, number: int) -> None:
        """Shows the step-through at step ``number`` (1-based)."""
        self.show_view(self.steps)
        self.steps.set_step(number - 1)

    def present(self) -> None:
        """The presenter's mode: the Step-Through's steps as full-screen slides from the step the tab shows."""
        reason = self.presenter.present(self._palette(), self.display.options.opacity)
        if reason:
            self.host.show_status(reason)

    def _presenter_left(self) -> None:
        self.show_view(self.steps)
        self.steps.deck_changed()

    def _palette(self, meta: ModelMeta | None = None) -> tuple[tuple[int, int, int], ...]:
        result = self.model.result
        meta = meta or (result.meta if result is not None else None)
        return resolve_palette(self.display.options.palette, meta) if meta is not None else ()

    def _frame(self, result: ViewResult) -> TabFrame:
        return TabFrame(result, self._palette(), self.display.options.opacity, self.model.ground_truth)

    def result_shown(self, result: ViewResult) -> None:
        self.datasets.select_path(result.path)  # the dock's highlighted row follows the image shown
        if result.segmentation is None or result.meta is None:
            self.model.show_result(result)
            for tab in self.tabs:
                tab.clear()
            return
        self.model.set_colors(self._palette(result.meta), self.display.options.opacity)
        self.model.show_result(result)  # finds the image's label first: the frame carries it
        frame = self._frame(result)
        for tab in self.tabs:
            tab.set_frame(frame)

    def model_changed(self, info: ModelInfo) -> None:
        self.model.model_changed(info)

    def _analysis_tabs_shown(self, _shown: bool = False) -> None:
        self.model.want_analysis(self.compare.isVisible() or self.truth.isVisible())

    def set_mode(self, mode: str) -> None:
        """Stages of the one net, or the separately trained nets, in both the compare and ground-truth tabs."""
        self.model.set_mode("separate" if mode == "separate" else "stages")

    def _options_changed(self, options: DisplayOptions, previous: DisplayOptions) -> None:
        """Passes new colours on; each view redraws only while visible (hidden ones when next shown)."""
        if (options.palette, options.opacity) != (previous.palette, previous.opacity) and self.model.result is not None:
            palette = self._palette()
            self.model.set_colors(palette, options.opacity)
            for tab in self.tabs:
                tab.set_colors(palette, options.opacity)

    # ---- the classroom model's news (ClassroomListener) -----------------------------------------

    def mode_changed(self) -> None:
        model = self.model
        for toggle in (self.compare.toggle, self.truth.toggle):
            toggle.set_separate_available(model.separate_available, model.separate_note)
            toggle.set_mode(model.mode)

    def analysis_started(self, fresh: bool) -> None:
        truth = self.model.ground_truth
        if fresh:
            self.compare.clear("Comparing…")
            self.truth.clear(truth.path if truth else None, "Scoring…" if truth is not None else NO_LABEL)
        else:
            self.compare.set_status("Updating…")

    def analysis_changed(self, analysed: Analysed) -> None:
        result, truth = self.model.result, self.model.ground_truth
        assert result is not None
        analysis, pictures = analysed.analysis, analysed.pictures
        palette, opacity = self._palette(), self.display.options.opacity
        assert result.meta is not None
        self.compare.set_analysis(analysis, pictures.compare, palette, opacity, result.meta.config.num_classes)
        if truth is None:
            self.truth.clear(None, NO_LABEL)
        else:
            self.truth.set_analysis(analysis, truth, pictures.truth, result.image, palette, self.model.mode)
        self.analysisShown.emit(analysis)

    def analysis_failed(self, message: str) -> None:
        truth = self.model.ground_truth
        self.compare.clear(message)
        self.truth.clear(truth.path if truth else None, message)

    def dataset_opened(self, root: Path, splits: Sequence[str], split: str) -> None:
        self.datasets.set_dataset(root, splits, split)
        self.datasets.set_running(False)
        if not self.dataset_dock.isVisible():
            self.dataset_dock.show()
            self.host.fit_dock(self.dataset_dock, DATASET_DOCK_HEIGHT)

    def dataset_listed(self, paths: Sequence[Path], stages: Sequence[Stage], status: str) -> None:
        self.datasets.list_images(paths, stages, status)

    def dataset_started(self, what: str) -> None:
        self.datasets.start(what)

    def image_scored(self, row: TableRow, done: int) -> None:
        self.datasets.add_image(row, done)

    def dataset_finished(self, row: TableRow, what: str, scored: int | None, evaluation: Evaluation) -> None:
        self.datasets.finish(row, what, scored)
        self.datasetScored.emit(evaluation)

    def dataset_stopped(self, message: str) -> None:
        self.datasets.set_running(False)
        self.datasets.status.setText(message)

    def open_image(self, path: Path) -> None:
        self.host.open_image(path)

    def show_error(self, message: str) -> None:
        self.host.show_error(message)

    # ---- ground truth --------------------------------------------------------------------------

    def pick_label(self) -> None:
        result = self.model.result
        if result is None:
            self.host.show_error("Open an image with a model loaded first, then pick its label.")
            return
        path = self.ask_label_file()
        if path is None:
            return
        self.show_view(self.truth)
        self.model.pick_label(path)
        self.contributions.set_frame(self._frame(result))

    # ---- datasets ------------------------------------------------------------------------------

    def open_dataset_dialog(self) -> None:
        folder = self.ask_dataset_folder()
        if folder is not None:
            self.open_dataset(folder)

    def open_dataset(self, root: Path, split: str | None = None) -> None:
        """Lists a split's images (and opens the first); scores them all when a model is loaded."""
        self.model.open_dataset(root, split)

    def score_dataset(self) -> None:
        self.model.score_dataset()

    # ---- export --------------------------------------------------------------------------------

    def export_slide(self) -> None:
        """Photo, stage maps, masks, and with a label its image and the scores, as a slide (PNG, SVG or PDF)."""
        result = self.model.result
        if result is None or result.segmentation is None or result.meta is None:
            self.host.show_error("Nothing to export yet: open an image with a model loaded.")
            return
        from fcn_viewer.teaching.figure import FIGURE_FORMATS, save_slide  # matplotlib loads on first use

        folder = Path(self._folder() or result.path.parent)
        target = self.host.ask_save_path("Export slide figure", folder / f"{result.path.stem}_slide.png",
                                           FIGURE_FILTER)
        if target is None:
            return
        if target.suffix.lower() not in FIGURE_FORMATS:
            self.host.show_error(f"{target.name}: a slide figure is a .png, .svg or .pdf file")
            return
        if target.exists() and not self.host.ask_confirmation("Overwrite?", f"{target} exists and will be replaced."):
            return
        title = f"{result.path.name} — {result.meta.title}"
        try:
            save_slide(target, result.path, result.segmentation, result.meta, self._palette(), title,
                       self.model.ground_truth)
        except OSError as error:
            self.host.show_error(f"Could not save the slide figure: {error}")
            return
        self.host.show_status(f"Saved slide figure: {target}")

    def shutdown(self) -> None:
        self.model.shutdown()
        for tab in self.tabs:
            tab.shutdown()
