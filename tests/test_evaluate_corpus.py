"""`fcn-viewer evaluate` on a dataset holding the bad-image corpus: broken images and labels named, the rest scored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcn_viewer.cli.main import main
from tests.bad_images import write_corpus
from tests.helpers import gradient_image
from tests.test_evaluate import make_dataset

BROKEN_IMAGES = ("truncated.jpg", "empty.png", "text.png", "bomb.png")
GOOD_IMAGES = ("grey.png", "cmyk.jpg")  # 32×24, like the labels written for them
BROKEN_LABELS = ("bomb.png", "truncated.png", "rgba.png")


def test_evaluate_names_every_broken_image_and_label_and_scores_the_rest(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, corpus = make_dataset(tmp_path / "camvid", count=2), tmp_path / "corpus"
    write_corpus(corpus)
    label = Image.fromarray(np.zeros((24, 32), np.uint8), mode="L")
    for name in BROKEN_IMAGES + GOOD_IMAGES:
        shutil.copy(corpus / name, data / "val" / name)
        label.save(data / "valannot" / f"{Path(name).stem}.png")
    for name in BROKEN_LABELS:
        Image.fromarray(gradient_image(24, 32)).save(data / "val" / f"label_{name}")
        shutil.copy(corpus / name, data / "valannot" / f"label_{name}")
    report = tmp_path / "report.json"
    argv = ["evaluate", "--data", str(data), "--weights", str(tiny_weights), "--device", "cpu", "--json", str(report)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    total, skipped = 2 + len(BROKEN_IMAGES) + len(GOOD_IMAGES) + len(BROKEN_LABELS), len(BROKEN_IMAGES + BROKEN_LABELS)
    for name in BROKEN_IMAGES:
        assert f"skipped: {data / 'val' / name}:" in err, name
    for name in BROKEN_LABELS:
        assert f"{data / 'valannot' / f'label_{name}'}:" in err, name
    assert f"{skipped} of {total} image(s) skipped" in err
    assert "Traceback" not in err
    numbers = json.loads(report.read_text())
    assert numbers["images"] == total - skipped and len(numbers["skipped"]) == skipped
