"""Teaching and comparison mode: puts the step-through, compare, ground-truth and dataset views into the viewer
and keeps them in step with the image and model it shows; the numbers and pictures come from the analysis worker."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMenu, QWidget

from fcn_viewer.data import SegmentationDataset, available_splits, open_dataset
from fcn_viewer.errors import FCNViewerError
from fcn_viewer.evaluation import Evaluation, ImageScores
from fcn_viewer.gui.analysis_worker import Analysed, AnalysisRequest, AnalysisService, DatasetRequest, Nets
from fcn_viewer.gui.compare_view import CompareView
from fcn_viewer.gui.contributions_view import ContributionsView
from fcn_viewer.gui.dataset_view import DatasetView
from fcn_viewer.gui.fields_view import ReceptiveFieldView
from fcn_viewer.gui.sequence_view import SequenceView
from fcn_viewer.gui.state import ViewState
from fcn_viewer.gui.tab import TabFrame, TabView
from fcn_viewer.gui.teaching_view import StepThroughView
from fcn_viewer.gui.truth_view import TruthView
from fcn_viewer.gui.worker import ModelLoader, load_source
from fcn_viewer.model.stages import Stage
from fcn_viewer.options import DEFAULT_TOLERANCE
from fcn_viewer.teaching.compare import CompareMode, family_of
from fcn_viewer.teaching.dataset_table import dataset_row, image_row
from fcn_viewer.teaching.ground_truth import find_label, ignore_index_for
from fcn_viewer.teaching.image_analysis import GroundTruth, ImageAnalysis
from fcn_viewer.view.options import DisplayOptions
from fcn_viewer.view.outcome import JobCancelled, JobFailed
from fcn_viewer.view.panel_content import ViewResult, resolve_palette
from fcn_viewer.view.viewer_model import ModelInfo, ViewerModel
from fcn_viewer.weights.loader import RegistrySource
from fcn_viewer.weights.registry import RegistryEntry

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
    """Owns the teaching views and the analysis worker; the host window only shows them.

    It reads the current model and device from the viewer model and the colours from the display state; the
    host tells it of each result shown (:meth:`result_shown`) and model in use (:meth:`model_changed`).
    """

    analysisShown = Signal(object)  # ImageAnalysis now drawn
    datasetScored = Signal(object)  # Evaluation of a finished (or stopped) dataset run

    def __init__(self, host: ClassroomHost, viewer: ViewerModel, display: ViewState,
                 load: ModelLoader = load_source) -> None:
        super().__init__(host.widget())
        self.host = host
        self.viewer = viewer
        self.display = display
        self.service = AnalysisService(self, load)
        self.mode: CompareMode = "stages"
        self.family: tuple[RegistryEntry, ...] = ()
        self.result: ViewResult | None = None
        self.analysis: ImageAnalysis | None = None
        self.ground_truth: GroundTruth | None = None
        self.picked_labels: dict[Path, Path] = {}
        self.dataset: SegmentationDataset | None = None
        self.dataset_root: Path | None = None
        self._dataset_nets: Nets | None = None
        self._analysis_job = 0
        self._dataset_job = 0

        self.steps = StepThroughView()
        self.compare = CompareView()
        self.truth = TruthView()
        self.datasets = DatasetView()
        self.contributions = ContributionsView()
        self.fields = ReceptiveFieldView()
        self.sequence = SequenceView()
        # The tabs in order, as the window and the Teaching menu show them: a new tab is one more entry here.
        self.tabs: tuple[TabView, ...] = (self.steps, self.compare, self.truth, self.contributions, self.fields,
                                          self.sequence)
        for tab in self.tabs:
            host.add_view(tab.widget(), tab.title)
        self.dataset_dock = QDockWidget("Dataset", host.widget())
        self.dataset_dock.setObjectName("datasetDock")
        self.dataset_dock.setWidget(self.datasets)
        host.add_dock(self.dataset_dock)
        self.dataset_dock.hide()
        self.menu = self._build_menu()

        display.optionsChanged.connect(self._options_changed)
        for toggle in (self.compare.toggle, self.truth.toggle):
            toggle.modeChanged.connect(self.set_mode)
        self.compare.radiusChanged.connect(lambda _: self._request_analysis())
        self.truth.pickLabel.connect(self.pick_label)
        self.datasets.openImage.connect(host.open_image)
        self.datasets.scoreRequested.connect(self.score_dataset)
        self.datasets.stopRequested.connect(self.service.cancel_dataset)
        self.datasets.splitChanged.connect(self._split_changed)
        self.service.images.finished.connect(self._analysed)
        self.service.datasets.progress.connect(self._image_scored)
        self.service.datasets.finished.connect(self._dataset_done)
        self._update_toggles()

    def _build_menu(self) -> QMenu:
        menu = QMenu("&Teaching", self.host.widget())
        for tab in self.tabs:
            action = menu.addAction(tab.menu_title)
            action.setShortcut(QKeySequence(tab.shortcut))
            action.triggered.connect(lambda _=False, shown=tab: self.show_view(shown.widget()))
        menu.addSeparator()
        menu.addAction("Open Ground-Truth &Label…").triggered.connect(self.pick_label)
        menu.addAction("Open &Frame Sequence…").triggered.connect(self.open_sequence)
        dataset = menu.addAction("Open &Dataset Folder…")
        dataset.setShortcut(QKeySequence("Ctrl+Shift+O"))
        dataset.triggered.connect(self.open_dataset_dialog)
        menu.addAction(self.dataset_dock.toggleViewAction())
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

    def show_step(self, number: int) -> None:
        """Shows the step-through at step ``number`` (1-based)."""
        self.show_view(self.steps)
        self.steps.set_step(number - 1)

    def _palette(self) -> tuple[tuple[int, int, int], ...]:
        meta = self.result.meta if self.result is not None else None
        return resolve_palette(self.display.options.palette, meta) if meta is not None else ()

    def _frame(self, result: ViewResult) -> TabFrame:
        return TabFrame(result, self._palette(), self.display.options.opacity, self.ground_truth)

    def result_shown(self, result: ViewResult) -> None:
        self.datasets.select_path(result.path)  # the dock's highlighted row follows the image shown
        if result.segmentation is None or result.meta is None:
            self.result, self.analysis = None, None
            for tab in self.tabs:
                tab.clear()
            return
        self.result = result
        self._request_analysis()  # finds the image's label first: the frame carries it
        frame = self._frame(result)
        for tab in self.tabs:
            tab.set_frame(frame)

    def model_changed(self, info: ModelInfo) -> None:
        name = info.source.label if isinstance(info.source, RegistrySource) else info.meta.name
        self.family = family_of(name, info.meta.classes)
        self.service.pool.clear()
        self._update_toggles()
        nets = self._nets(info)
        self.sequence.set_model(info.meta, lambda: self.service.pool.model(nets))  # the viewer's net, as it runs

    def _update_toggles(self) -> None:
        available = [member for member in self.family if member.available]
        why = ("No separately trained FCN-32s/16s/8s family is installed for this model's classes"
               if not available else "")
        if not available and self.mode == "separate":
            self.mode = "stages"
        for toggle in (self.compare.toggle, self.truth.toggle):
            toggle.set_separate_available(bool(available), why)
            toggle.set_mode(self.mode)

    def set_mode(self, mode: CompareMode) -> None:
        """Stages of the one net, or the separately trained nets, in both the compare and ground-truth tabs."""
        self.mode = mode
        self._update_toggles()
        self._request_analysis()

    def _nets(self, model: ModelInfo | None) -> Nets:
        """The nets to run with ``model`` (the viewer's): its own net, and the family on its device at its precision."""
        return Nets(self.mode, model, self.family, self.viewer.device, self.viewer.precision)

    def _request_analysis(self) -> None:
        result = self.result
        if result is None or result.meta is None:
            return
        label = self.picked_labels.get(result.path) or find_label(result.path)
        meta = result.meta
        self.ground_truth = None if label is None else GroundTruth(
            label, meta.config.num_classes, ignore_index_for(label, meta.classes), DEFAULT_TOLERANCE
        )
        if self.analysis is None or self.analysis.path != result.path:
            self.compare.clear("Comparing…")
            self.truth.clear(label, "Scoring…" if label is not None else NO_LABEL)
        else:
            self.compare.set_status("Updating…")
        request = AnalysisRequest(result, self._nets(self.viewer.model), self.compare.radius.value(), self.ground_truth,
                                  self._palette(), self.display.options.opacity)
        self._analysis_job = self.service.analyse(request)

    def _analysed(self, job: int, answer: object) -> None:
        if isinstance(answer, JobFailed):
            self._failed(job, answer.message)
            return
        if isinstance(answer, JobCancelled):  # superseded by a newer request
            return
        assert isinstance(answer, Analysed)
        analysis, pictures = answer.analysis, answer.pictures
        result = self.result
        if job != self._analysis_job or result is None or analysis.path != result.path:
            return
        self.analysis = analysis
        palette, opacity = self._palette(), self.display.options.opacity
        self.compare.set_analysis(analysis, pictures.compare, palette, opacity)
        if self.ground_truth is None:
            self.truth.clear(None, NO_LABEL)
        else:
            self.truth.set_analysis(analysis, self.ground_truth, pictures.truth, result.image, palette, self.mode)
        self.analysisShown.emit(analysis)

    def _failed(self, job: int, message: str) -> None:
        if job == self._dataset_job:
            self.datasets.set_running(False)
            self.datasets.status.setText(message)
        elif job == self._analysis_job:
            self.compare.clear(message)
            self.truth.clear(self.ground_truth.path if self.ground_truth else None, message)

    def _options_changed(self, options: DisplayOptions, previous: DisplayOptions) -> None:
        """Passes new colours on; each view redraws only while visible (hidden ones when next shown)."""
        if (options.palette, options.opacity) != (previous.palette, previous.opacity) and self.result is not None:
            palette = self._palette()
            for tab in self.tabs:
                tab.set_colors(palette, options.opacity)

    # ---- ground truth --------------------------------------------------------------------------

    def pick_label(self) -> None:
        if self.result is None:
            self.host.show_error("Open an image with a model loaded first, then pick its label.")
            return
        path = self.ask_label_file()
        if path is None:
            return
        self.picked_labels[self.result.path] = path
        self.show_view(self.truth)
        self._request_analysis()
        self.contributions.set_frame(self._frame(self.result))

    # ---- datasets ------------------------------------------------------------------------------

    def open_dataset_dialog(self) -> None:
        folder = self.ask_dataset_folder()
        if folder is not None:
            self.open_dataset(folder)

    def open_dataset(self, root: Path, split: str | None = None) -> None:
        """Lists a split's images (and opens the first); scores them all when a model is loaded."""
        splits = available_splits(root)
        if not splits:
            self.host.show_error(f"{root}: not a dataset folder; expected <split>/ with <split>annot/ beside it "
                                   "(CamVid layout) or a VOCdevkit/VOC20xx folder")
            return
        split = split if split in splits else ("val" if "val" in splits else splits[0])
        try:
            dataset = open_dataset(root, split)
        except FCNViewerError as error:
            self.host.show_error(str(error))
            return
        self.service.cancel_dataset()
        self._dataset_job = 0
        self.dataset, self.dataset_root = dataset, Path(root)
        self.datasets.set_dataset(Path(root), splits, split)
        self.datasets.set_running(False)
        if not self.dataset_dock.isVisible():
            self.dataset_dock.show()
            self.host.fit_dock(self.dataset_dock, DATASET_DOCK_HEIGHT)
        self._list_images("Load a model to score the images.")
        self.host.open_image(dataset.samples[0].image_path)
        if self.viewer.model is not None:
            self.score_dataset()

    def _split_changed(self, split: str) -> None:
        if self.dataset_root is not None:
            self.open_dataset(self.dataset_root, split)

    def _dataset_stages(self, nets: Nets) -> tuple[Stage, ...]:
        if nets.mode == "separate":
            return tuple(member.stages[-1] for member in nets.family if member.available)
        return self.viewer.model.meta.config.stages if self.viewer.model is not None else ()

    def _list_images(self, status: str, nets: Nets | None = None) -> None:
        assert self.dataset is not None
        stages = self._dataset_stages(nets) if nets is not None else ()
        self.datasets.list_images([sample.image_path for sample in self.dataset.samples], stages, status)

    def _describe(self, nets: Nets) -> str:
        if nets.mode == "separate":
            return "the separately trained " + ", ".join(m.name for m in nets.family if m.available)
        return f"every stage of {self.viewer.model.meta.title}" if self.viewer.model else "no model"

    def score_dataset(self) -> None:
        if self.dataset is None:
            return
        if self.viewer.model is None:
            self.datasets.status.setText("Load a model to score the images.")
            return
        nets = self._nets(self.viewer.model)
        self._dataset_nets = nets
        self._list_images("", nets)
        self.datasets.start(self._describe(nets))
        self._dataset_job = self.service.score_dataset(DatasetRequest(self.dataset, nets, DEFAULT_TOLERANCE))

    def _image_scored(self, job: int, scores: ImageScores) -> None:
        if job == self._dataset_job and self._dataset_nets is not None:
            self.datasets.add_image(image_row(scores, self._dataset_stages(self._dataset_nets)), scores.index + 1)

    def _dataset_done(self, job: int, answer: object) -> None:
        if isinstance(answer, JobFailed):
            self._failed(job, answer.message)
            return
        if isinstance(answer, JobCancelled):  # a run stopped before it started
            if job == self._dataset_job:
                self.datasets.set_running(False)
                self.datasets.status.setText("Stopped before any image was scored.")
            return
        assert isinstance(answer, Evaluation)
        evaluation = answer
        if job != self._dataset_job or self._dataset_nets is None:
            return
        nets = self._dataset_nets
        self.datasets.finish(dataset_row(evaluation, self._dataset_stages(nets)), self._describe(nets),
                             evaluation.images if evaluation.cancelled else None)
        self.datasetScored.emit(evaluation)

    # ---- export --------------------------------------------------------------------------------

    def export_slide(self) -> None:
        """Photo, stage maps, masks, and with a label its image and the scores, as a slide (PNG, SVG or PDF)."""
        result = self.result
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
                       self.ground_truth)
        except OSError as error:
            self.host.show_error(f"Could not save the slide figure: {error}")
            return
        self.host.show_status(f"Saved slide figure: {target}")

    def shutdown(self) -> None:
        self.service.shutdown()
        for tab in self.tabs:
            tab.shutdown()
