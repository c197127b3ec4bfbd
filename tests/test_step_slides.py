"""`fcn-viewer figure --steps`: every Step-Through step as a numbered 1920×1080 PNG and a GIF of them (tiny nets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_viewer.cli.main import main
from fcn_viewer.teaching.step_slides import GIF_NAME, busiest_class, step_file_names
from fcn_viewer.teaching.step_through import fusion_steps
from tests.gui_helpers import save_tiny
from tests.helpers import gradient_image, random_model, tiny_paper_config


def test_an_fcn8s_path_names_twelve_numbered_slides_and_a_gif() -> None:
    with torch.no_grad():
        outputs = random_model(tiny_paper_config()).forward_stages(torch.zeros(1, 3, 64, 64))  # type: ignore[operator]
    names = step_file_names(len(fusion_steps(outputs)))
    assert names[:2] == ["step-01.png", "step-02.png"] and names[-2:] == ["step-12.png", GIF_NAME]
    assert names[:-1] == sorted(names[:-1])
    logits = outputs.numpy(0)["logits_8s"]
    assert busiest_class(outputs) == np.bincount(logits.argmax(0).ravel()).argmax()


def test_figure_steps_writes_each_step_as_a_slide_and_a_gif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = save_tiny(tmp_path / "tiny32.safetensors", "fcn32s", paper=True, classes=5)
    image = tmp_path / "photo.png"
    Image.fromarray(gradient_image(48, 64)).save(image)
    out = tmp_path / "slides"
    argv = ["figure", str(image), "--steps", "--out", str(out), "--weights", str(weights), "--device", "cpu"]
    assert main([*argv, "--class", "Building"]) == 0
    pngs = sorted(out.glob("step-*.png"))
    assert [p.name for p in pngs] == ["step-01.png", "step-02.png", "step-03.png", "step-04.png"]  # FCN-32s: 4 steps
    first = np.asarray(Image.open(pngs[0]).convert("RGB"))
    assert first.shape == (1080, 1920, 3) and first.std() > 20
    gif = Image.open(out / GIF_NAME)
    assert gif.n_frames == 4 and gif.size == (1920, 1080)
    assert "score of Building on one scale" in capsys.readouterr().err
    assert main(argv) == 2  # the slides are there: not replaced without --overwrite
    assert "already holds step-01.png" in capsys.readouterr().err
    assert main([*argv, "--contributions"]) == 2
    assert main([*argv, "--class", "Unicorn", "--overwrite"]) == 2
