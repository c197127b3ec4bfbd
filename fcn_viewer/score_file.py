"""The score-map file (`.npz`): every stage tensor of one image, compressed, at the precision asked for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from fcn_viewer.atomic import atomic_output

if TYPE_CHECKING:
    from fcn_viewer.inference import Segmentation
    from fcn_viewer.weights.meta import ModelMeta

ScoresDtype = Literal["float32", "float16"]
SCORES_DTYPES: tuple[ScoresDtype, ...] = ("float32", "float16")


def save_score_file(path: Path, result: Segmentation, meta: ModelMeta, dtype: ScoresDtype = "float32") -> None:
    """Writes ``path`` atomically as a deflate-compressed ``.npz``: the stage tensors (C×h×w, ``dtype``) named as
    in the network, ``classes`` and ``info_json`` (stages, crops, upsampling, size, notes, precision)."""
    arrays = {name: array.astype(dtype, copy=False) for name, array in result.arrays().items()}
    info = {
        "model": meta.name,
        "stages": list(result.stages),
        "upsampling": result.outputs.upsampling,
        "source_size": list(result.source_size),
        "notes": list(result.notes),
        "crops": [crop.__dict__ for crop in result.outputs.crops],
        "dtype": dtype,
    }
    with atomic_output(path) as handle:
        named = {**arrays, "classes": np.array(meta.classes), "info_json": np.array(json.dumps(info))}
        # numpy's stubs fear a key named allow_pickle (a keyword since numpy 2.1); none of these names is one
        np.savez_compressed(handle, **named)  # type: ignore[arg-type]
