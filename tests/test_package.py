"""A wheel is self-contained: built, installed outside the repository, it lists its bundled models and segments a
bundled sample photo from another working directory; the source tree finds the same files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcn_viewer.cli.main import main
from fcn_viewer.resources import bundled_models_dir, sample_images
from fcn_viewer.teaching.ground_truth import find_label
from fcn_viewer.weights.registry import ENTRIES

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel (once per session) and installed with ``pip --target`` into a fresh folder."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a clean copy: no build/ left over from an earlier build can slip into the wheel
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", ".venv", "venv", "__pycache__", ".pytest_cache", "tests", "docs"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(source)],
                   check=True, cwd=root)
    wheel = next((root / "dist").glob("fcn_viewer-*.whl"))
    target = root / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, cwd=root)
    return target


def run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``fcn-viewer`` script, with only the install folder (not the repository) on the path."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "FCN_VIEWER_RESOURCES")}
    env["PYTHONPATH"] = str(target)
    env["FCN_VIEWER_CACHE"] = str(cwd / "cache")
    return subprocess.run([sys.executable, str(target / "bin" / "fcn-viewer"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_installed_wheel_lists_its_bundled_models(installed_wheel: Path, tmp_path: Path) -> None:
    done = run_installed(installed_wheel, tmp_path, "models")
    assert done.returncode == 0, done.stderr
    for name in ("camvid-fcn8s", "camvid-fcn16s", "camvid-fcn32s"):
        line = next(line for line in done.stdout.splitlines() if line.startswith(name))
        assert " bundled " in line, line
    assert str(installed_wheel / "fcn_viewer" / "bundled" / "models" / "camvid-fcn8s.safetensors") in done.stdout
    assert str(REPO) not in done.stdout
    # the measured bf16 agreement that lets auto precision run the bundled nets in bf16 travels with them
    assert (installed_wheel / "fcn_viewer" / "bundled" / "models" / "bf16_agreement.json").is_file()


def test_the_installed_wheel_segments_a_bundled_sample(installed_wheel: Path, tmp_path: Path) -> None:
    samples = sorted((installed_wheel / "fcn_viewer" / "bundled" / "samples").glob("*.jpg"))
    assert len(samples) == 3
    done = run_installed(installed_wheel, tmp_path, "segment", str(samples[0]), "--out", "out")
    assert done.returncode == 0, done.stderr
    mask = np.asarray(Image.open(tmp_path / "out" / f"{samples[0].stem}_mask.png"))
    assert mask.shape == (360, 480)
    assert len(np.unique(mask)) >= 3  # a trained net on a street scene: road, building, sky at least


def test_the_installed_wheel_evaluates_its_labelled_samples_without_data(
    installed_wheel: Path, tmp_path: Path, tiny_weights: Path
) -> None:
    done = run_installed(installed_wheel, tmp_path, "evaluate", "--weights", str(tiny_weights), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    samples = installed_wheel / "fcn_viewer" / "bundled" / "samples"
    assert f"scoring the bundled labelled sample photos ({samples})" in done.stderr
    assert f"3 image(s) of {samples}" in done.stderr
    assert all(f"tiny · {stage} stage" in done.stdout for stage in ("32s", "16s", "8s"))


def test_the_installed_wheel_says_where_its_samples_and_labels_are(installed_wheel: Path, tmp_path: Path) -> None:
    done = run_installed(installed_wheel, tmp_path, "samples")
    assert done.returncode == 0, done.stderr
    bundled = installed_wheel / "fcn_viewer" / "bundled"
    assert f"# photos: {bundled / 'samples'}" in done.stdout and f"# labels: {bundled / 'samplesannot'}" in done.stdout
    pairs = [line.split("\t") for line in done.stdout.splitlines() if not line.startswith("#")]
    assert [Path(photo).name for photo, _ in pairs] == [
        "camvid-01-cyclists.jpg", "camvid-02-oncoming-car.jpg", "camvid-03-shopfronts.jpg"]
    for photo, label in pairs:
        assert Path(photo).parent == bundled / "samples" and Path(label) == bundled / "samplesannot" / (
            Path(photo).stem + ".png")
        assert Image.open(label).size == Image.open(photo).size


def test_samples_names_every_bundled_folder_of_pictures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in ("models", "samples", "samplesannot", "sequence"):
        (tmp_path / folder).mkdir()
    Image.new("RGB", (8, 6)).save(tmp_path / "samples" / "a.jpg")
    Image.new("L", (8, 6)).save(tmp_path / "samplesannot" / "a.png")
    Image.new("RGB", (8, 6)).save(tmp_path / "samples" / "unlabelled.jpg")
    monkeypatch.setenv("FCN_VIEWER_RESOURCES", str(tmp_path))
    assert main(["samples"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"# sequence: {tmp_path / 'sequence'}" in lines and not any(line.startswith("# models") for line in lines)
    assert lines[-2:] == [f"{tmp_path / 'samples' / 'a.jpg'}\t{tmp_path / 'samplesannot' / 'a.png'}",
                          str(tmp_path / "samples" / "unlabelled.jpg")]
    (tmp_path / "samples" / "a.jpg").unlink()
    (tmp_path / "samples" / "unlabelled.jpg").unlink()
    assert main(["samples"]) == 1
    assert f"no sample photos are installed in {tmp_path / 'samples'}" in capsys.readouterr().err


def test_the_source_tree_finds_the_bundled_models_and_labelled_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FCN_VIEWER_RESOURCES", raising=False)
    assert all(entry.available for entry in ENTRIES if entry.bundled)
    assert bundled_models_dir() == REPO / "fcn_viewer" / "bundled" / "models"
    samples = sample_images()
    assert [path.name for path in samples][:1] == ["camvid-01-cyclists.jpg"]
    for sample in samples:
        label = find_label(sample)
        assert label is not None and label.is_file()
        assert Image.open(label).size == Image.open(sample).size


def test_fcn_viewer_resources_still_overrides_the_bundled_folder(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "samples").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "samples" / "b.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "samples" / "a.jpg")
    monkeypatch.setenv("FCN_VIEWER_RESOURCES", str(tmp_path))
    assert bundled_models_dir() == tmp_path / "models"
    assert sample_images() == [tmp_path / "samples" / "a.jpg", tmp_path / "samples" / "b.png"]


def test_the_installed_wheel_carries_the_bundled_sequence(installed_wheel: Path) -> None:
    frames = sorted((installed_wheel / "fcn_viewer" / "bundled" / "sequence").glob("*.jpg"))
    assert [frame.stem for frame in frames] == [f"camvid-seq-{number:02d}" for number in range(1, 21)]
    assert sum(frame.stat().st_size for frame in frames) < 1_500_000
