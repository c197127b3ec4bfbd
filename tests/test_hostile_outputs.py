"""Outputs that must not lie: masks past 256 classes, NaN scores, flat memory over a long batch, a full disk found
before any work, stale temporary files, the overwrite rule, and options that would do nothing."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_viewer.cli.main import main
from fcn_viewer.inference import Segmenter
from fcn_viewer.model import build_fcn
from fcn_viewer.weights.loader import LoadedModel
from fcn_viewer.weights.meta import ModelMeta, Preprocessing
from fcn_viewer.weights.native import save_native
from tests.helpers import gradient_image, tiny_compact_config

CLASSES = 300


def wide_model() -> LoadedModel:
    """A tiny FCN-8s with 300 classes whose every pixel is class 299."""
    config = tiny_compact_config("fcn8s", CLASSES)
    model = build_fcn(config)
    with torch.no_grad():
        model.score_fr.weight.zero_()
        model.score_fr.bias.zero_()
        model.score_fr.bias[CLASSES - 1] = 50.0
    palette = tuple((i % 256, (7 * i) % 256, (13 * i) % 256) for i in range(CLASSES))
    meta = ModelMeta("wide", "300 classes", config, tuple(f"c{i}" for i in range(CLASSES)), palette, Preprocessing())
    return LoadedModel(model.eval(), meta, "memory")


def test_masks_past_256_classes_keep_their_class_ids(tmp_path: Path) -> None:
    loaded = wide_model()
    segmentation = Segmenter(loaded, "cpu").segment(gradient_image(64, 64))
    mask = segmentation.mask()
    assert mask.dtype == np.uint16 and int(np.bincount(mask.ravel()).argmax()) == CLASSES - 1
    weights = save_native(tmp_path / "wide.safetensors", loaded.model.state_dict(), loaded.meta, half=False)
    image = tmp_path / "photo.png"
    Image.fromarray(gradient_image(64, 64)).save(image)
    assert main(["segment", str(image), "--weights", str(weights), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    written = np.asarray(Image.open(tmp_path / "out" / "photo_mask.png"))
    assert written.max() == CLASSES - 1  # a 16-bit PNG, not ids wrapped at 256


def test_nan_scores_are_reported_in_the_notes() -> None:
    loaded = wide_model()
    with torch.no_grad():
        loaded.model.score_fr.bias[0] = float("nan")
    segmentation = Segmenter(loaded, "cpu").segment(gradient_image(32, 32))
    assert any("NaN or infinite scores" in note for note in segmentation.notes)


def test_batch_memory_stays_flat_with_save_scores(tmp_path: Path, tiny_weights: Path) -> None:
    """At a small scale (CI): the peak RSS after 120 images is that after 20 (the README gives the 2,000 run)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(140):
        Image.fromarray(gradient_image(96, 128, seed=index)).save(folder / f"{index:03}.png")
    first = [str(folder / f"{index:03}.png") for index in range(20)]
    argv = ["--weights", str(tiny_weights), "--save-scores", "--device", "cpu"]
    assert main(["segment", *first, "--out", str(tmp_path / "a"), *argv]) == 0
    after_few = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main(["segment", str(folder), "--out", str(tmp_path / "b"), *argv]) == 0
    after_many = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after_many - after_few < 64 * 1024  # KiB
    assert len(list((tmp_path / "b").glob("*.npz"))) == 140


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 200 KB tmpfs: a disk that fills (skipped where this process may not mount one)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def photos(folder: Path, count: int, height: int = 48, width: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.fromarray(gradient_image(height, width, seed=index)).save(folder / f"{index:02}.png")
    return folder


def test_a_disk_too_small_for_the_outputs_stops_segment_before_the_first_image(
    small_disk: Path, tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = small_disk / "out"
    argv = ["segment", str(photos(tmp_path / "in", 12)), "--weights", str(tiny_weights), "--out", str(out),
            "--save-scores", "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "[1/12]" not in err and "Traceback" not in err
    assert re.search(rf"error: --out {re.escape(str(out))}: not enough free space: 12 image\(s\) need about "
                     r"[\d.]+ MB, and [\d.]+ kB are free there$", err.strip())
    assert list(out.iterdir()) == []


def test_free_space_is_checked_against_every_images_outputs(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    free = {"bytes": 10 << 30}
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=free["bytes"]))
    assert main(["segment", str(photos(tmp_path / "in", 3)), "--weights", str(tiny_weights), "--out", str(out)]) == 0
    free["bytes"] = 10_000  # enough for a mask and an overlay, not for twelve
    argv = ["segment", str(photos(tmp_path / "more", 12)), "--weights", str(tiny_weights), "--out", str(out)]
    assert main(argv) == 2
    assert "not enough free space: 12 image(s) need about" in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_disk_that_fills_mid_run_stops_with_one_line_naming_the_folder(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fcn_viewer import outputs

    written = []
    real = outputs.write_mask

    def filling(path: Path, *args: object) -> Path:
        if len(written) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(path)
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(outputs, "write_mask", filling)
    out = tmp_path / "out"
    argv = ["segment", str(photos(tmp_path / "in", 12)), "--weights", str(tiny_weights), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith(f"error: --out {out}: the disk is full (No space left on device): stopped at image 3")
    assert "[1/12]" in err and "[2/12]" in err and "[4/12]" not in err
    assert not list(out.glob(".*.tmp"))


def test_figure_on_a_full_disk_names_the_folder_before_any_work(
    small_disk: Path, tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open(small_disk / "filler", "wb") as filler:
        with contextlib.suppress(OSError):
            filler.write(bytes(200 << 10))
    image = photos(tmp_path / "in", 1) / "00.png"
    out = small_disk / "figure.png"
    assert main(["figure", str(image), "--out", str(out), "--weights", str(tiny_weights), "--device", "cpu"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: --out {out}: not enough free space: the figure needs about"), line


def test_stale_temporary_files_of_ours_are_removed_at_the_next_start_and_said(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".00_overlay.png.0123abcd.tmp", out / ".00.npz.89abcdef.tmp"]  # what a SIGKILL leaves
    for path in stale:
        path.write_bytes(b"half a file")
    kept = [out / ".notes.tmp", out / "photo.0123abcd.tmp", out / ".x.0123ABCD.tmp"]  # not our pattern
    for path in kept:
        path.write_bytes(b"someone else's")
    assert main(["segment", str(photos(tmp_path / "in", 1)), "--weights", str(tiny_weights), "--out", str(out)]) == 0
    assert not any(path.exists() for path in stale) and all(path.exists() for path in kept)
    assert (f"note: removed 2 temporary file(s) left in {out} by an interrupted run: .00.npz.89abcdef.tmp, "
            ".00_overlay.png.0123abcd.tmp") in capsys.readouterr().err
    figure_stale = out / ".figure.png.00ff00ff.tmp"
    figure_stale.write_bytes(b"half a figure")
    argv = ["figure", str(tmp_path / "in" / "00.png"), "--out", str(out / "figure.png"), "--weights", str(tiny_weights)]
    assert main(argv) == 0
    assert not figure_stale.exists() and "note: removed 1 temporary file(s)" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file locks")
def test_a_temporary_file_still_being_written_is_not_removed(tmp_path: Path) -> None:
    from fcn_viewer.atomic import atomic_output, remove_stale_temporaries

    target = tmp_path / "busy.png"
    with atomic_output(target) as handle:
        handle.write(b"being written")
        assert remove_stale_temporaries(tmp_path) == []
        assert len(list(tmp_path.glob(".busy.png.*.tmp"))) == 1
    assert target.read_bytes() == b"being written"


def test_figure_refuses_to_replace_a_file_without_overwrite(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = photos(tmp_path / "in", 1) / "00.png"
    out = tmp_path / "figure.png"
    out.write_bytes(b"an earlier figure")
    out.chmod(0o444)
    argv = ["figure", str(image), "--out", str(out), "--weights", str(tiny_weights)]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: --out {out}: already exists; pass --overwrite to replace it"
    assert out.read_bytes() == b"an earlier figure"
    assert main([*argv, "--overwrite"]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("argv, message", [
    (["figure", "IMAGE", "--out", "OUT/f.png", "--class", "Nope"], "--class does nothing without --contributions or --steps"),
    (["figure", "IMAGE", "--out", "OUT/f.png", "--tolerance", "3"], "--tolerance does nothing without a label: none was given (--label) or found beside IMAGE"),
    (["segment", "IMAGE", "--out", "OUT", "--scores-dtype", "float16"], "--scores-dtype does nothing without --save-scores"),
    (["segment", "IMAGE", "--out", "OUT", "--model", "camvid-fcn8s", "--arch", "fcn8s"],
     "--arch does nothing without --weights"),
    (["segment", "IMAGE", "--out", "OUT", "--download"], "--download does nothing with --weights"),
    (["gui", "IMAGE", "--teach-step", "2"], "--teach-step does nothing without --screenshot"),
    (["gui", "IMAGE", "--size", "800x600"], "--size does nothing without --screenshot"),
])
def test_options_that_do_nothing_are_usage_errors(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    image = photos(tmp_path / "in", 1) / "00.png"
    argv = [part.replace("IMAGE", str(image), 1) if part == "IMAGE" else part.replace("OUT", str(tmp_path / "out"))
            for part in argv]
    if "--model" not in argv and argv[0] != "gui":
        argv += ["--weights", str(tiny_weights)]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not (tmp_path / "out").exists()
