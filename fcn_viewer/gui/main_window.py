"""The viewer window: menus, panels, legend and status bar; it draws the viewer model's frames and forwards
user intent to it."""

from __future__ import annotations

import html
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QProgressDialog,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from fcn_viewer import __version__
from fcn_viewer.classes import Color
from fcn_viewer.device_choice import DEVICE_CHOICES, DEVICE_LABELS, DeviceChoice
from fcn_viewer.domain import DOMAINS, domain_of
from fcn_viewer.gui import export
from fcn_viewer.gui.banner import BannerKind, MessageBanner
from fcn_viewer.gui.classroom import Classroom
from fcn_viewer.gui.controls import DisplayToolbar
from fcn_viewer.gui.domain_note import DomainNotice, info_lines
from fcn_viewer.gui.help import add_help_actions
from fcn_viewer.gui.jobs import JobQueue, stop_all
from fcn_viewer.gui.legend import ClassLegend
from fcn_viewer.gui.paint_hold import PaintHold
from fcn_viewer.gui.panels import FittedLabel, InfoPanel, Panel, PanelGrid, ViewLink
from fcn_viewer.gui.sample_menu import add_sample_menu
from fcn_viewer.gui.settings import ViewerSettings
from fcn_viewer.gui.state import ViewState
from fcn_viewer.gui.status_bar import ElidingStatusBar
from fcn_viewer.gui.worker import InferenceService, ModelLoader, SegmenterFactory, load_source
from fcn_viewer.imageio import IMAGE_SUFFIXES, is_image_path, list_images
from fcn_viewer.inference import Segmenter, device_available
from fcn_viewer.outputs import stage_mask_paths
from fcn_viewer.view.options import DisplayOptions
from fcn_viewer.view.panel_content import ALL_PANELS, PANELS_BY_KEY, ViewResult, render_panels, resolve_palette
from fcn_viewer.view.viewer_model import APP_NAME, Failure, ModelInfo, ViewerFrame, ViewerModel
from fcn_viewer.weights.cache import cache_note
from fcn_viewer.weights.download import Progress, discard_partial
from fcn_viewer.weights.loader import FileSource, ModelSource, RegistrySource
from fcn_viewer.weights.registry import DEFAULT_MODEL, ENTRIES, RegistryEntry

WEIGHTS_SUFFIXES = frozenset({".safetensors", ".caffemodel", ".pth", ".pt"})
IMAGE_FILTER = "Images ({})".format(" ".join(f"*{suffix}" for suffix in sorted(IMAGE_SUFFIXES)))
WEIGHTS_FILTER = "FCN weights (*.safetensors *.caffemodel *.pth *.pt)"
STYLE = """
#panelTitle { font-weight: 600; padding: 2px 2px; }
#infoPanel { color: palette(window-text); padding: 4px; font-size: 11px; }
"""


def download_question(title: str, size: str, url: str, folder: Path) -> str:
    """The download confirmation as rich text: the URL and the cache folder each on a line of their own that never
    breaks (a plain-text URL wrapped after ``http://``)."""
    def unbroken(text: str) -> str:  # Qt honours white-space on a paragraph, not on a span
        return f'<p style="white-space: pre">{html.escape(text)}</p>'

    return (f"<p>Download {html.escape(title)} ({size})? It comes from</p>{unbroken(url)}"
            f"<p>and is cached in</p>{unbroken(str(folder))}<p>An interrupted download resumes.</p>")


def _megabytes(count: int | None) -> str:
    return f"{count / 1e6:.0f} MB" if count else "size unknown"


class MainWindow(QMainWindow):
    """The FCN viewer: draws the viewer model's frames and forwards user intent to it.

    Dialogs go through small ask_*/show_error methods that tests can replace. ``make_segmenter`` and ``load``
    make the nets (tests pass their own).
    """

    resultShown = Signal(object)  # ViewResult now on screen
    modelChanged = Signal(object)  # ModelInfo now in use
    jobFailed = Signal(str)  # message of a failed load or inference

    def __init__(
        self,
        settings: ViewerSettings,
        parent: QWidget | None = None,
        *,
        make_segmenter: SegmenterFactory = Segmenter,
        load: ModelLoader = load_source,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.state = ViewState(DisplayOptions(opacity=settings.opacity, palette=settings.palette), self)
        self.service = InferenceService(self, make_segmenter, load)
        self.viewer = ViewerModel(self.service, self, settings.device, settings.exact_fp32)
        self.service.jobs.finished.connect(self.viewer.answer)
        self.service.jobs.progress.connect(self.viewer.answer)
        self.link = ViewLink(self)
        self.shown: ViewerFrame | None = None  # the frame on screen
        self._next_frame: ViewerFrame | None = None
        self._drawing = False
        self._paint_hold = PaintHold(self)
        self.download_dialog: QProgressDialog | None = None
        self._downloading: RegistryEntry | None = None  # the model being downloaded, while its dialog is open

        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.setStyleSheet(STYLE)
        self._build_panels()
        self._build_status_bar()
        self.toolbar = DisplayToolbar(self.state, self)
        self.addToolBar(self.toolbar)
        self.legend = ClassLegend(self.state)
        dock = QDockWidget("Classes", self)
        dock.setObjectName("legendDock")
        dock.setWidget(self.legend)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setMinimumWidth(190)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.classroom = Classroom(self, self.viewer, self.state, load)
        self.resultShown.connect(self.classroom.result_shown)
        self.modelChanged.connect(self.classroom.model_changed)
        self._build_menus()

        self.state.optionsChanged.connect(self._options_changed)
        self.link.scaleChanged.connect(self._show_zoom)
        self.tabs.currentChanged.connect(self._tab_changed)
        geometry = settings.geometry
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1400, 860)
        problems = [settings.problem, cache_note().removeprefix("note: ")]  # the model menu has looked at the cache
        if any(problems):
            self.banner.show_message(" ".join(problem for problem in problems if problem), "warning")

    # ---- construction -------------------------------------------------------------------------

    def _build_panels(self) -> None:
        self.banner = MessageBanner()
        self.domain_notice = DomainNotice(self.banner)
        self.grid = PanelGrid()
        self.panels: dict[str, Panel] = {}
        for spec in ALL_PANELS:
            panel = Panel(spec.key)
            self.panels[spec.key] = panel
            self.grid.add(spec.key, panel)
            self.link.add(panel.view)
            panel.view.hovered.connect(lambda point, view=panel.view: self._hover(point, view))
            panel.view.hoverLeft.connect(self._hover_left)
        self.info = InfoPanel()
        self.grid.add("info", self.info)
        self.empty_hint = QLabel("Open an image: File ▸ Open (Ctrl+O), or drop one here.")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setStyleSheet("color: palette(mid); font-size: 15px;")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.empty_hint, 1)
        self.tabs = QTabWidget()  # the stage panels, then the teaching views (gui/classroom.py)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.grid, "Stages")
        layout.addWidget(self.tabs, 1)
        self.tabs.hide()
        self.setCentralWidget(central)

    def _build_status_bar(self) -> None:
        self.setStatusBar(ElidingStatusBar())  # long messages end in …, the whole text in the tooltip
        self.readout = FittedLabel()  # the hover readout, elided the same way
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setFixedWidth(110)
        self.busy.setMaximumHeight(14)
        self.busy.hide()
        self.zoom_label = QLabel("fit")
        self.device_label = QLabel("")
        self.model_label = QLabel("no model")
        bar = self.statusBar()
        bar.addWidget(self.readout, 1)
        bar.addPermanentWidget(self.busy)
        bar.addPermanentWidget(self.zoom_label)
        bar.addPermanentWidget(self.model_label)
        bar.addPermanentWidget(self.device_label)

    def _build_menus(self) -> None:
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        self._action(file_menu, "&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.sample_menu = add_sample_menu(file_menu, self.open_image)
        self.previous_action = self._action(file_menu, "&Previous Image", lambda: self.step_image(-1), "A")
        self.next_action = self._action(file_menu, "&Next Image", lambda: self.step_image(1), "D")
        file_menu.addSeparator()
        export_menu = file_menu.addMenu("&Export")
        self.export_actions = [
            self._action(export_menu, "&Masks (indexed PNG)…", self.export_masks, "Ctrl+E"),
            self._action(export_menu, "&Overlay PNG…", self.export_overlay),
            self._action(export_menu, "All Panels as &Figure PNG…", self.export_figure, "Ctrl+Shift+E"),
            self._action(export_menu, "&Score Maps (.npz)…", self.export_scores),
        ]
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        view_menu = menus.addMenu("&View")
        view_menu.setToolTipsVisible(True)
        self._action(view_menu, "&Stages", lambda: self.tabs.setCurrentWidget(self.grid), "Ctrl+1")
        view_menu.addSeparator()
        zoom_in = self._action(view_menu, "Zoom &In", lambda: self.link.zoom_by(1.25))
        zoom_in.setShortcuts([QKeySequence("Ctrl+="), QKeySequence("Ctrl++")])
        self._action(view_menu, "Zoom &Out", lambda: self.link.zoom_by(0.8), "Ctrl+-")
        self._action(view_menu, "&Fit", self.link.fit, "Ctrl+F")
        self._action(view_menu, "&Actual Size (100 %)", lambda: self.link.set_scale(1.0), "Ctrl+0")
        view_menu.addSeparator()
        view_menu.addActions(self.toolbar.menu_actions())
        view_menu.addSeparator()
        view_menu.addAction(self.toolbar.toggleViewAction())
        view_menu.addSeparator()
        self.present_action = self._action(view_menu, "&Present (Step-Through slides, full screen)",
                                           self.classroom.present, "F5")

        self.model_menu = menus.addMenu("&Model")
        self.model_menu.setToolTipsVisible(True)  # an entry's source, and why an unavailable one is
        self.model_menu.aboutToShow.connect(self._fill_model_menu)
        self.device_menu = QMenu("&Device", self)
        self.device_actions = QActionGroup(self)
        for choice in DEVICE_CHOICES:
            action = self.device_actions.addAction(DEVICE_LABELS[choice])
            action.setCheckable(True)
            action.setData(choice)
            action.setChecked(choice == self.viewer.device)
            action.setEnabled(device_available(choice))
            action.triggered.connect(lambda _=False, c=choice: self.choose_device(c))
            self.device_menu.addAction(action)
        self.device_menu.addSeparator()
        self.exact_action = self.device_menu.addAction("Exact fp32 (otherwise bf16 where it is faster and agrees)")
        self.exact_action.setCheckable(True)
        self.exact_action.setChecked(self.settings.exact_fp32)
        self.exact_action.setToolTip("Auto runs bf16 on a GPU, and on a CPU with native bf16 for a net whose bf16 "
                                     "classes were measured ≥ 99.5 % as fp32's and which runs faster in bf16 there; "
                                     "the info panel says which precision ran")
        self.exact_action.toggled.connect(self.choose_exact_fp32)
        self._fill_model_menu()

        menus.addMenu(self.classroom.menu)
        help_menu = menus.addMenu("&Help")
        self.help_actions = add_help_actions(help_menu, self, menus)
        self._action(help_menu, "&About fcn-viewer", self._about)

    def _action(
        self, menu: QMenu, text: str, slot: Callable[[], object], shortcut: str | QKeySequence.StandardKey = ""
    ) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(slot)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        return action

    def _fill_model_menu(self) -> None:
        menu = self.model_menu
        menu.clear()
        current = self.viewer.model.source.setting if self.viewer.model else None
        if self.viewer.model is not None:
            model_meta = self.viewer.model.meta
            menu.addAction(f"In use: {model_meta.title} — {domain_of(model_meta)}").setEnabled(False)
        for bundled, heading in ((True, "Bundled models"), (False, "Paper models")):
            menu.addSection(f"{heading} — {DOMAINS['camvid' if bundled else 'pascal-voc']}")
            for entry in (e for e in ENTRIES if e.bundled == bundled):
                action = menu.addAction(self._entry_label(entry))
                action.setCheckable(True)
                action.setChecked(entry.name == current)
                action.setEnabled(entry.available or (entry.url is not None and entry.unavailable is None))
                why = f"Unavailable: {entry.unavailable}.\n\n" if entry.unavailable and not entry.available else ""
                action.setToolTip(why + entry.citation)
                action.triggered.connect(lambda _=False, e=entry: self.load_model(RegistrySource(e)))
        menu.addSeparator()
        self._action(menu, "Load &Local File…", self.load_local_file, "Ctrl+L")
        menu.addSeparator()
        menu.addMenu(self.device_menu)

    @staticmethod
    def _entry_label(entry: RegistryEntry) -> str:
        stages = "/".join(entry.stages)
        if entry.available:
            return f"{entry.title}  [{stages}]"
        if entry.bundled:
            return f"{entry.title} — not installed"
        if entry.unavailable:
            return f"{entry.title} — unavailable: no source works (hover for why)"
        return f"{entry.title} — download {_megabytes(entry.size_bytes)}…"

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_files
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_image(Path(p)))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear List").triggered.connect(self._clear_recent)
        else:
            self.recent_menu.addAction("(no recent files)").setEnabled(False)

    def _clear_recent(self) -> None:
        self.settings.recent_files = []

    # ---- dialogs (tests replace these) -------------------------------------------------------

    def ask_open_image(self) -> Path | None:
        name, _ = QFileDialog.getOpenFileName(self, "Open image", self.settings.last_folder, IMAGE_FILTER)
        return Path(name) if name else None

    def ask_weights_file(self) -> Path | None:
        name, _ = QFileDialog.getOpenFileName(self, "Load FCN weights", self.settings.last_folder, WEIGHTS_FILTER)
        return Path(name) if name else None

    def ask_save_path(self, title: str, suggested: Path, file_filter: str) -> Path | None:
        """A save dialog that leaves overwrite questions to :meth:`ask_confirmation`."""
        options = QFileDialog.Option.DontConfirmOverwrite
        name, _ = QFileDialog.getSaveFileName(self, title, str(suggested), file_filter, options=options)
        return Path(name) if name else None

    def ask_confirmation(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def show_error(self, message: str) -> None:
        """Non-modal: a red banner above the panels and the status bar; the window stays usable."""
        self.banner.show_message(message, "error")
        self.statusBar().showMessage(message, 10_000)

    # ---- hosting the teaching views (gui/classroom.py's ClassroomHost) -------------------------

    def widget(self) -> QWidget:
        return self

    def add_view(self, view: QWidget, title: str) -> None:
        self.tabs.addTab(view, title)

    def show_view(self, view: QWidget) -> None:
        self.tabs.setCurrentWidget(view)

    def add_dock(self, dock: QDockWidget) -> None:
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)

    def fit_dock(self, dock: QDockWidget, height: int) -> None:
        """Opens ``dock`` at least ``height`` pixels tall, or a third of the window when that is more."""
        self.resizeDocks([dock], [max(height, self.height() // 3)], Qt.Orientation.Vertical)

    def last_folder(self) -> str:
        return self.settings.last_folder

    def show_status(self, message: str) -> None:
        self.statusBar().showMessage(message, 10_000)

    # ---- images -------------------------------------------------------------------------------

    def start(self, image: str | Path | None = None, source: ModelSource | None = None) -> None:
        """What a fresh window does: load the given (or last, or default) model, then open ``image``."""
        source = source or self.initial_model()
        if source is not None:
            self.load_model(source)
        else:
            self._say_no_model()
        if image is not None:
            self.open_image(Path(image))

    def initial_model(self) -> ModelSource | None:
        remembered = self.settings.model
        for entry in ENTRIES:
            if entry.name == remembered and entry.available:
                return RegistrySource(entry)
        if remembered and Path(remembered).is_file():
            return FileSource(Path(remembered))
        default = next(entry for entry in ENTRIES if entry.name == DEFAULT_MODEL)
        return RegistrySource(default) if default.available else None

    def _say_no_model(self, reason: str = "", kind: BannerKind = "info") -> None:
        default = next(entry for entry in ENTRIES if entry.name == DEFAULT_MODEL)
        text = reason or f"No model is loaded: the bundled model {default.name} is not installed yet."
        self.banner.show_message(
            f"{text} Images open without segmentation until you choose one: Model ▸ Load Local File… "
            "or a paper model from the Model menu.",
            kind,
            ("Load local file…", self.load_local_file),
        )
        self.model_label.setText("no model")

    def open_dialog(self) -> None:
        path = self.ask_open_image()
        if path is not None:
            self.open_image(path)

    def open_image(self, path: Path) -> None:
        """Shows ``path`` once the worker has read (and, with a model, segmented) it; until then the window
        (title included) keeps showing the previous image."""
        path = Path(path).absolute()
        self.settings.last_folder = str(path.parent)
        self.settings.add_recent_file(str(path))
        self.viewer.open_image(path)

    def step_image(self, step: int) -> None:
        """Opens the next (step 1) or previous (step −1) image of the current image's folder, wrapping around."""
        current = self.viewer.current_path
        if current is None or not current.parent.is_dir():
            return
        images = list_images(current.parent)
        if not images:
            return
        if current in images:
            index = (images.index(current) + step) % len(images)
        else:
            later = [i for i, p in enumerate(images) if p.name > current.name]
            index = (later[0] if later else 0) if step > 0 else ((later[0] if later else len(images)) - 1)
        self.open_image(images[index])

    @property
    def shown_result(self) -> ViewResult | None:
        """The result on screen (None before the first image)."""
        return self.shown.result if self.shown is not None else None

    # ---- drawing a frame ----------------------------------------------------------------------

    def frame_changed(self, frame: ViewerFrame) -> None:
        """Draws ``frame`` whole. A frame that arrives while one is being drawn (an answer delivered by a nested
        event loop) is drawn after it, never into it: photo, panels, legend, title and status always agree."""
        self._next_frame = frame
        if self._drawing:
            return
        self._drawing = True
        try:
            with self._paint_hold:  # a paint from a nested event loop never shows half a frame
                while self._next_frame is not None:
                    frame, self._next_frame = self._next_frame, None
                    self._draw(frame)
        finally:
            self._drawing = False

    def _draw(self, frame: ViewerFrame) -> None:
        result = frame.result
        previous, self.shown = self.shown, frame
        if self.banner.kind == "error":
            self.banner.dismiss()
        self.setWindowTitle(frame.title)
        keys = [panel.key for panel in result.panels()] + (["info"] if result.stages else [])
        for panel in result.panels():
            title, short = result.title(panel), result.title(panel, short=True)
            self.panels[panel.key].set_title(title, short, result.tooltip(panel))
        self.info.set_lines(info_lines(result))
        self.domain_notice.show_for(result)
        self.empty_hint.hide()
        self.tabs.show()
        self.grid.show_panels(keys, result.stages, result.image_size)
        self.legend.set_shares(result.class_shares())
        self._hover_left()
        self._render(result, keys)
        if previous is None or previous.result.image_size != result.image_size or self.link.fitting:
            self.link.fit()
        if frame.status:
            self.statusBar().showMessage(frame.status, 10_000 if result.notes else 5000)
        self.resultShown.emit(result)

    def _render(self, result: ViewResult, keys: list[str]) -> None:
        """Redraws these panels of ``result`` from its cached arrays (no network run)."""
        panels = [PANELS_BY_KEY[key] for key in keys if key in PANELS_BY_KEY]
        for panel, pixels in zip(panels, render_panels(result, panels, self.state.options, self._palette(result)),
                                 strict=True):
            self.panels[panel.key].view.set_pixels(pixels, result.image_size)

    def _palette(self, result: ViewResult | None = None) -> tuple[Color, ...]:
        meta = result.meta if result is not None else None
        model = self.viewer.model
        meta = meta or (model.meta if model else None)
        return resolve_palette(self.state.options.palette, meta) if meta is not None else ()

    def _options_changed(self, options: DisplayOptions, previous: DisplayOptions) -> None:
        self.settings.opacity = options.opacity
        self.settings.palette = options.palette
        if options.palette != previous.palette and self.viewer.model is not None:
            self.legend.set_palette(self._palette())
        result = self.shown_result
        if result is None:
            return
        overlay_only = replace(previous, opacity=options.opacity, outline=options.outline) == options
        panels = [p for p in result.panels() if p.kind == "mask" or (p.kind == "scores" and not overlay_only)]
        self._render(result, [p.key for p in panels])

    # ---- hover readout ------------------------------------------------------------------------

    def _hover(self, point: QPointF, source: object) -> None:
        result = self.shown_result
        text = result.readout(point.x(), point.y()) if result is not None else None
        if text is not None:
            self.statusBar().clearMessage()  # a temporary message would hide the readout
        self.readout.setText(text or "")
        inside = text is not None
        for panel in self.panels.values():
            panel.view.show_marker(point if inside and panel.view is not source else None)

    def _hover_left(self) -> None:
        self.readout.setText("")
        for panel in self.panels.values():
            panel.view.show_marker(None)

    # ---- models and devices -------------------------------------------------------------------

    def load_local_file(self) -> None:
        path = self.ask_weights_file()
        if path is not None:
            self.settings.last_folder = str(path.parent)
            self.load_model(FileSource(path))

    def load_model(self, source: ModelSource) -> None:
        """Loads in the worker (downloading a registry model first, if the user agrees); re-runs the image."""
        if isinstance(source, RegistrySource) and not source.entry.available:
            entry = source.entry
            if entry.bundled or entry.url is None:
                self.show_error(f"The bundled model {entry.name} is not installed ({entry.path}).")
                return
            if entry.unavailable:
                self.show_error(f"{entry.title} cannot be downloaded: {entry.unavailable}.")
                return
            question = download_question(entry.title, _megabytes(entry.size_bytes), entry.url, entry.path.parent)
            if not source.allow_download and not self.ask_confirmation("Download model", question):
                return
            source = RegistrySource(entry, allow_download=True)
            self._open_download_dialog(entry)
        self.viewer.load_model(source)

    def choose_device(self, choice: DeviceChoice) -> None:
        self.settings.device = choice
        for action in self.device_actions.actions():
            action.setChecked(action.data() == choice)
        if not self.viewer.choose_device(choice):
            self.device_label.setText(f"device: {choice} (no model)")

    def choose_exact_fp32(self, exact: bool) -> None:
        """Runs the model in exact fp32, or at auto precision (bf16 where it is faster and agrees: see
        ``inference.choose_precision``), on the GPU and on the CPU alike."""
        self.settings.exact_fp32 = exact
        self.viewer.choose_exact_fp32(exact)

    def _mark_device_in_use(self, device: str) -> None:
        for action in self.device_actions.actions():
            label = DEVICE_LABELS[action.data()]
            action.setText(f"{label} — in use: {device}" if action.data() == self.viewer.device else label)

    def model_changed(self, info: ModelInfo, classes_changed: bool) -> None:
        self._close_download_dialog()
        self.settings.model = info.source.setting
        if classes_changed:
            self.state.set_class_count(len(info.meta.classes))
            self.legend.set_classes(info.meta.classes, self._palette())
            self.toolbar.set_class_names(info.meta.classes)
        self.model_label.setText(info.meta.title)
        self.model_label.setToolTip(f"{info.meta.name} from {info.source.setting}\ntrained on: {domain_of(info.meta)}")
        self.device_label.setText(f"device: {info.device}")
        self.device_label.setToolTip(f"chosen: {self.viewer.device}")
        self._mark_device_in_use(info.device)
        if self.banner.kind in ("info", "error"):  # what was missing or failed; warnings stay until dismissed
            self.banner.dismiss()
        if info.note:
            self.banner.show_message(info.note, "warning")
        self.statusBar().showMessage(f"Model {info.meta.title} ready on {info.device}", 5000)
        self.modelChanged.emit(info)

    def job_failed(self, failure: Failure) -> None:
        if failure.model_failed:
            self._close_download_dialog()
        elif failure.path is not None:
            self.settings.recent_files = [f for f in self.settings.recent_files if f != str(failure.path)]
        self.show_error(failure.shown)
        if failure.model_failed and failure.no_model:
            self._say_no_model(f"No model is loaded: {failure.message}.", "error")
        self.jobFailed.emit(failure.message)

    def job_cancelled(self, message: str) -> None:
        self._close_download_dialog()
        self.statusBar().showMessage(message, 10_000)

    def _open_download_dialog(self, entry: RegistryEntry) -> None:
        dialog = QProgressDialog(f"Downloading {entry.title}…", "Cancel", 0, 1000, self)
        dialog.setWindowTitle("Download model")
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(self.viewer.cancel_download)
        dialog.show()
        self.download_dialog = dialog
        self._downloading = entry

    def download_progress(self, progress: Progress) -> None:
        dialog = self.download_dialog
        if dialog is None:
            return
        if progress.total:
            dialog.setValue(round(1000 * progress.done / progress.total))
            dialog.setLabelText(f"Downloading… {_megabytes(progress.done)} of {_megabytes(progress.total)}")
        else:
            dialog.setLabelText(f"Downloading… {_megabytes(progress.done)}")

    def _close_download_dialog(self) -> None:
        self._downloading = None
        if self.download_dialog is not None:
            self.download_dialog.close()
            self.download_dialog.deleteLater()
            self.download_dialog = None

    def busy_changed(self, busy: bool, message: str) -> None:
        self.busy.setVisible(busy)
        if message:
            self.statusBar().showMessage(message)
        elif not busy:
            self.statusBar().clearMessage()

    @property
    def busy_now(self) -> bool:
        return self.viewer.busy

    def _tab_changed(self, _index: int) -> None:
        """The zoom label tells the stage grid's zoom, so it shows only with the grid; the teaching tabs fit their
        own pictures. Back on the grid, a fitted zoom is measured again (the window may have changed meanwhile)."""
        stages = self.tabs.currentWidget() is self.grid
        self.zoom_label.setVisible(stages)
        if stages:
            self.link.refresh()

    def _show_zoom(self, scale: float) -> None:
        self.zoom_label.setText(("fit " if self.link.fitting else "") + f"{scale:.0%}")

    # ---- export -------------------------------------------------------------------------------

    def _exportable(self) -> ViewResult | None:
        result = self.shown_result
        if result is None or result.segmentation is None:
            self.show_error("Nothing to export yet: open an image with a model loaded.")
            return None
        return result

    def _target(self, title: str, suffix_name: str, file_filter: str) -> Path | None:
        result = self.shown_result
        assert result is not None
        folder = Path(self.settings.last_folder or result.path.parent)
        return self.ask_save_path(title, folder / f"{result.path.stem}{suffix_name}", file_filter)

    def _confirm_overwrite(self, paths: list[Path]) -> bool:
        existing = [path for path in paths if path.exists()]
        if not existing:
            return True
        names = "\n".join(str(path) for path in existing)
        return self.ask_confirmation("Overwrite?", f"These files exist and will be replaced:\n{names}")

    def _write(self, action: str, paths: list[Path], write: object) -> None:
        if not self._confirm_overwrite(paths):
            return
        try:
            written = write()  # type: ignore[operator]
        except OSError as error:
            self.show_error(f"Could not save the {action}: {error}")
            return
        files = written if isinstance(written, list) else [written]
        self.statusBar().showMessage(f"Saved {action}: " + ", ".join(str(f) for f in files), 10_000)

    def export_masks(self) -> None:
        result = self._exportable()
        target = self._target("Export masks", "_mask.png", "PNG (*.png)") if result else None
        if result is None or target is None:
            return
        palette = self._palette(result)
        paths = list(stage_mask_paths(target, result.stages).values())
        self._write("masks", paths, lambda: export.export_masks(target, result, palette))

    def export_overlay(self) -> None:
        result = self._exportable()
        target = self._target("Export overlay", "_overlay.png", "PNG (*.png)") if result else None
        if result is None or target is None:
            return
        options, palette = self.state.options, self._palette(result)
        self._write("overlay", [target], lambda: export.export_overlay(target, result, options, palette))

    def export_figure(self) -> None:
        result = self._exportable()
        target = self._target("Export figure", "_figure.png", "PNG (*.png)") if result else None
        if result is None or target is None:
            return
        options, palette = self.state.options, self._palette(result)
        self._write("figure", [target], lambda: export.export_figure(target, result, options, palette))

    def export_scores(self) -> None:
        result = self._exportable()
        target = self._target("Export score maps", ".npz", "NumPy archive (*.npz)") if result else None
        if result is None or target is None:
            return
        self._write("score maps", [target], lambda: export.export_scores(target, result))

    # ---- window events ------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_file(event)
        if path is None:
            return
        event.acceptProposedAction()
        if path.suffix.lower() in WEIGHTS_SUFFIXES:
            self.load_model(FileSource(path))
        else:
            self.open_image(path)

    @staticmethod
    def _dropped_file(event: QDragEnterEvent | QDropEvent) -> Path | None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                path = Path(url.toLocalFile())
                if is_image_path(path) or path.suffix.lower() in WEIGHTS_SUFFIXES:
                    return path
        return None

    def closeEvent(self, event: QCloseEvent) -> None:
        """Saves the settings and stops every worker at once, waiting at most CLOSE_WAIT_S for them all: a job
        still running then is abandoned. A download in progress is cancelled and its partial file removed."""
        self.settings.geometry = self.saveGeometry()
        unsaved = self.settings.save()  # said in the banner at start when already known then
        if unsaved:
            print(f"note: {unsaved}", file=sys.stderr)
        downloading = self._downloading
        self._close_download_dialog()
        stop_all(self.findChildren(JobQueue))
        self.viewer.shutdown()
        self.classroom.shutdown()
        if downloading is not None:
            discard_partial(downloading.path)
        super().closeEvent(event)

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About fcn-viewer",
            f"fcn-viewer {__version__}\n\n"
            "fcn-viewer shows how Fully Convolutional Networks segment an image, stage by stage:\n"
            "conv7 scores (stride 32), pool4-fused (16), pool3-fused (8) and the 32s/16s/8s predictions.\n\n"
            "J. Long, E. Shelhamer, T. Darrell. Fully Convolutional Networks for Semantic Segmentation. CVPR 2015.",
        )
