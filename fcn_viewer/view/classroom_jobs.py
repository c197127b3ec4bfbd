"""What the classroom asks its backend to run, and what the work answers: plain values, no Qt.

The requests carry everything the work needs (the viewer's model as it runs, colours, the dataset), so the backend
keeps no state of the tabs; :func:`split_contributions` is the contributions tab's work itself (it needs no net)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fcn_viewer.classes import Color
from fcn_viewer.data import SegmentationDataset
from fcn_viewer.device_choice import DeviceChoice
from fcn_viewer.errors import FCNViewerError
from fcn_viewer.options import Precision
from fcn_viewer.teaching.compare import CompareMode
from fcn_viewer.teaching.contributions import (
    ContributionAnalysis,
    TermPictures,
    TermScale,
    analyse_contributions,
    split_logits,
    term_pictures,
)
from fcn_viewer.teaching.ground_truth import load_truth
from fcn_viewer.teaching.image_analysis import AnalysisPictures, GroundTruth, ImageAnalysis
from fcn_viewer.teaching.sequence import FrameSource
from fcn_viewer.view.panel_content import ViewResult
from fcn_viewer.view.viewer_model import ModelInfo
from fcn_viewer.weights.loader import ModelSource, RegistrySource
from fcn_viewer.weights.registry import RegistryEntry


@dataclass(frozen=True)
class Nets:
    """Which nets to run: the viewer's model (every stage) or the separately trained family (each its own stage).

    ``model`` is the viewer's model as it runs (its net is the one copy every tab uses); ``device`` and
    ``precision`` are the user's choice, for a backend that loads no net."""

    mode: CompareMode
    model: ModelInfo | None
    family: tuple[RegistryEntry, ...]
    device: DeviceChoice
    precision: Precision

    @property
    def source(self) -> ModelSource | None:
        return self.model.source if self.model is not None else None

    @property
    def model_name(self) -> str:
        return self.source.label if isinstance(self.source, RegistrySource) else ""


@dataclass(frozen=True)
class AnalysisRequest:
    """Analyse the shown result: compare its masks, score them against ``ground_truth``, and draw both in
    ``palette`` at ``opacity``."""

    result: ViewResult
    nets: Nets
    radius: float
    ground_truth: GroundTruth | None
    palette: tuple[Color, ...]
    opacity: float


@dataclass(frozen=True)
class Analysed:
    """The analysis of the shown image and its pictures, as drawn by the compare and ground-truth tabs."""

    analysis: ImageAnalysis
    pictures: AnalysisPictures


@dataclass(frozen=True)
class DatasetRequest:
    """Score every image of ``dataset`` with ``nets``."""

    dataset: SegmentationDataset
    nets: Nets
    tolerance: float


@dataclass(frozen=True)
class ContributionRequest:
    """One image's split to compute (``base`` when only the class or the scale changed), the class to draw, and on
    which scale: one for all terms, or each term its own."""

    result: ViewResult
    ground_truth: GroundTruth | None
    class_index: int | None
    base: ContributionAnalysis | None
    scale: TermScale = "shared"


@dataclass(frozen=True)
class ContributionResult:
    request: ContributionRequest
    analysis: ContributionAnalysis
    pictures: TermPictures
    truth_error: str | None = None


def split_contributions(request: ContributionRequest) -> ContributionResult:
    """Off the GUI thread: the split (no forward pass), flips and switch variants, and the class's term pictures."""
    analysis = request.base
    truth_error = None
    if analysis is None:
        segmentation = request.result.segmentation
        assert segmentation is not None
        contributions = split_logits(segmentation.outputs)
        gt = request.ground_truth
        try:
            label = load_truth(gt.path, segmentation.image_size) if gt is not None else None
        except FCNViewerError as error:  # the split is still worth showing; the table says why it has no scores
            label, gt = None, None
            truth_error = str(error)
        analysis = analyse_contributions(contributions, segmentation.image, label, gt.num_classes if gt else 0,
                                         gt.ignore_index if gt else 255, gt.tolerance if gt else 2.0,
                                         outputs=segmentation.outputs)
    return ContributionResult(request, analysis, term_pictures(analysis.contributions, request.class_index, request.scale),
                              truth_error)


@dataclass(frozen=True)
class FrameRequest:
    """Segment frame ``index`` of ``source`` with ``nets``' model and draw it in ``palette`` at ``opacity``."""

    source: FrameSource
    index: int
    nets: Nets
    palette: tuple[Color, ...]
    opacity: float


@dataclass(frozen=True)
class ExportRequest:
    """Segment every frame of ``source`` and write its stage panels to ``target``, an animated GIF at ``fps``."""

    source: FrameSource
    target: Path
    nets: Nets
    palette: tuple[Color, ...]
    opacity: float
    fps: float


@dataclass(frozen=True)
class Exported:
    path: Path
    frames: int
