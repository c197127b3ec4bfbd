"""One entry point from a model name or weights file to a ready FCN with its metadata."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from fcn_viewer.classes import VOC_CLASSES, VOC_PALETTE, voc_palette
from fcn_viewer.errors import ShapeMismatchError, WeightsError
from fcn_viewer.model.config import VARIANTS, FCNConfig, Variant, vgg16_config
from fcn_viewer.model.fcn import FCN, build_fcn
from fcn_viewer.weights.bf16_table import measured_agreement
from fcn_viewer.weights.caffemodel import caffe_state_dict, read_caffemodel
from fcn_viewer.weights.download import Progress
from fcn_viewer.weights.meta import CAFFE_PREPROCESSING, ModelMeta
from fcn_viewer.weights.native import load_native
from fcn_viewer.weights.pth import load_pth
from fcn_viewer.weights.registry import ENTRIES, RegistryEntry, entry, fetch_entry
from fcn_viewer.weights.validate import MAX_CLASSES, check_file_size, check_finite, checked_config

FINAL_LAYER_VARIANT: tuple[tuple[str, Variant], ...] = (
    ("upscore8", "fcn8s"), ("upscore16", "fcn16s"), ("upscore", "fcn32s"),
)


@dataclass
class LoadedModel:
    """A network in eval mode and the metadata that says how to feed and read it."""

    model: FCN
    meta: ModelMeta
    source: str
    # The least share of pixels whose bf16 argmax equals exact fp32's, over every stage, measured on a dataset for
    # exactly this file (weights/bf16_table.py); None where never measured (auto precision then keeps fp32 on a CPU).
    bf16_agreement: float | None = None


@dataclass(frozen=True)
class RegistrySource:
    """A model of the registry, downloaded first when ``allow_download`` and not cached yet."""

    entry: RegistryEntry
    allow_download: bool = False

    @property
    def label(self) -> str:
        return self.entry.name

    @property
    def setting(self) -> str:
        """How the viewer's settings remember it: the registry name."""
        return self.entry.name


@dataclass(frozen=True)
class FileSource:
    """A weights file (.safetensors, .caffemodel, .pth); ``arch`` names the variant of a file that holds no config."""

    path: Path
    arch: Variant | None = None

    @property
    def label(self) -> str:
        return self.path.name

    @property
    def setting(self) -> str:
        """How the viewer's settings remember it: the absolute path."""
        return str(self.path.absolute())


ModelSource = RegistrySource | FileSource


def model_source(spec: str | Path, *, arch: Variant | None = None, allow_download: bool = False) -> ModelSource:
    """A registry name or a weights file's path as a source (a name wins over a file of the same name)."""
    known = {e.name: e for e in ENTRIES}
    if isinstance(spec, str) and spec in known:
        return RegistrySource(known[spec], allow_download)
    path = Path(spec)
    if not path.exists():
        raise WeightsError(f"{spec}: no such weights file, and not a known model name ({', '.join(known)})")
    return FileSource(path, arch)


def load_model(
    source: ModelSource | str | Path,
    *,
    arch: Variant | None = None,
    allow_download: bool = False,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> LoadedModel:
    """The one way to a model: a source, or a registry name or weights file (``arch``, ``allow_download`` apply)."""
    if isinstance(source, str | Path):
        source = model_source(source, arch=arch, allow_download=allow_download)
    if isinstance(source, RegistrySource):
        return load_entry(source.entry, allow_download=source.allow_download, progress=progress, cancel=cancel)
    return load_weights_file(source.path, arch=source.arch)


def load_entry(
    item: RegistryEntry | str,
    *,
    allow_download: bool = False,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> LoadedModel:
    """Loads a registry entry, downloading it first when allowed and not yet cached."""
    item = entry(item) if isinstance(item, str) else item
    if not item.available:
        if item.bundled:
            raise WeightsError(f"bundled model {item.name} is missing at {item.path}; reinstall or retrain it")
        if not allow_download or item.url is None:
            raise WeightsError(
                f"model {item.name} is not downloaded yet; run `fcn-viewer download {item.name}` "
                f"or place the file at {item.path}"
            )
        fetch_entry(item, progress=progress, cancel=cancel)
    loaded = load_weights_file(item.path, arch=item.variant)
    if item.format != "safetensors":
        meta = loaded.meta
        loaded.meta = ModelMeta(
            name=item.name,
            title=item.title,
            config=meta.config,
            classes=item.classes,
            palette=item.palette,
            preprocessing=meta.preprocessing,
            provenance={"url": item.url, "citation": item.citation},
        )
    return loaded


def load_weights_file(path: str | Path, arch: Variant | None = None) -> LoadedModel:
    """Builds the net a weights file describes and loads it strictly; never returns a partial model."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: not a file")
    check_file_size(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        state, meta = load_native(path)
        model = build_fcn(meta.config)
        apply_state_dict(model, state, str(path))
        return LoadedModel(model, meta, str(path), measured_agreement(path))
    if suffix == ".caffemodel":
        blobs = read_caffemodel(path)
        config = _paper_config(path, arch, {name: b[0].shape for name, b in blobs.items() if b})
        model = build_fcn(config)
        state = caffe_state_dict(blobs, model, str(path))
        check_finite(state, str(path))
        apply_state_dict(model, state, str(path))
        return LoadedModel(model, _paper_meta(path, config), str(path))
    if suffix in (".pth", ".pt"):
        state = load_pth(path)
        shapes = {key.removesuffix(".weight"): tuple(v.shape) for key, v in state.items() if key.endswith(".weight")}
        config = _paper_config(path, arch, shapes)
        check_finite(state, str(path))
        model = build_fcn(config)
        apply_state_dict(model, state, str(path))
        return LoadedModel(model, _paper_meta(path, config), str(path))
    raise WeightsError(f"{path}: unknown weights format {suffix!r}; expected .safetensors, .caffemodel or .pth")


def apply_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with messages naming the file, the layer and both shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        raise WeightsError(f"{source}: weights do not fit the network: {'; '.join(parts)}")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ShapeMismatchError(key, tuple(tensor.shape), tuple(state[key].shape), source)
    model.load_state_dict(state, strict=True)


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def _paper_config(path: Path, arch: Variant | None, shapes: dict[str, tuple[int, ...]]) -> FCNConfig:
    """The VGG16 FCN a Caffe/pytorch-fcn file holds: variant from its layers, classes from score_fr."""
    if "score_fr" not in shapes:
        raise WeightsError(f"{path}: no 'score_fr' layer: not an FCN weights file")
    num_classes = int(shapes["score_fr"][0]) if shapes["score_fr"] else 0
    if not 1 <= num_classes <= MAX_CLASSES:
        raise WeightsError(f"{path}: score_fr gives {num_classes} classes (1 … {MAX_CLASSES:,} are accepted)")
    inferred = next((variant for layer, variant in FINAL_LAYER_VARIANT if layer in shapes), None)
    if arch is not None and arch not in VARIANTS:
        raise WeightsError(f"unknown architecture {arch!r}; expected one of {', '.join(VARIANTS)}")
    if inferred is None and arch is None:
        raise WeightsError(f"{path}: no final upsampling layer (upscore, upscore16, upscore8); pass --arch")
    variant = arch or inferred
    assert variant is not None
    if inferred is not None and FCNConfig(variant=variant).fusion != inferred:
        raise WeightsError(f"{path}: holds an {inferred} network, but --arch {variant} was asked for")
    return _vgg_layout(path, shapes, vgg16_config(variant, num_classes))


def _vgg_layout(path: Path, shapes: dict[str, tuple[int, ...]], config: FCNConfig) -> FCNConfig:
    """Reads block widths, depths and fc6/fc7 size off the layer shapes (VGG16 unless narrower)."""
    widths, depths = [], []
    for block in range(1, 6):
        layers = [shapes[f"conv{block}_{i}"] for i in range(1, 5) if f"conv{block}_{i}" in shapes]
        if not layers:
            raise WeightsError(f"{path}: no conv{block}_1 layer: not a VGG-style FCN")
        widths.append(int(layers[0][0]))
        depths.append(len(layers))
    fc6 = shapes.get("fc6")
    if fc6 is None:
        raise WeightsError(f"{path}: no fc6 layer: not a VGG-style FCN")
    fc6_kernel = int(fc6[-1]) if len(fc6) == 4 else config.fc6_kernel
    if not all(len(shape) >= 1 and all(d >= 1 for d in shape) for shape in shapes.values()):
        raise WeightsError(f"{path}: a layer has an empty shape")
    if any(depth > 4 for depth in depths):
        raise WeightsError(f"{path}: a conv block has more than 4 layers: not a VGG-style FCN")
    try:
        layout = replace(config, widths=tuple(widths), depths=tuple(depths), fc_width=int(fc6[0]), fc6_kernel=fc6_kernel)
    except ValueError as error:
        raise WeightsError(f"{path}: {error}") from None
    return checked_config(layout, path)


def _paper_meta(path: Path, config: FCNConfig) -> ModelMeta:
    if config.num_classes == len(VOC_CLASSES):
        classes, palette = VOC_CLASSES, VOC_PALETTE
    else:
        classes = tuple(f"class {i}" for i in range(config.num_classes))
        palette = voc_palette(config.num_classes)
    return ModelMeta(
        name=path.stem,
        title=f"{path.name} ({config.variant})",
        config=config,
        classes=classes,
        palette=palette,
        preprocessing=CAFFE_PREPROCESSING,
        provenance={"file": str(path)},
    )
