"""The CLI's error boundary, exit codes and output checks: no traceback, one line naming the problem."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcn_viewer.atomic import atomic_output, folder_lock
from fcn_viewer.cli import boundary
from fcn_viewer.cli.evaluate import json_bytes
from fcn_viewer.cli.main import main
from tests.helpers import gradient_image

ROOT = Path(__file__).resolve().parents[1]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv", [
    ["segment", "x.png", "--out", "OUT", "--model", "no-such-net"],
    ["evaluate", "--data", "OUT", "--model", "no-such-net"],
    ["download", "no-such-net"],
])
def test_unknown_model_names_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    argv = [str(tmp_path / "out") if part == "OUT" else part for part in argv]
    assert main(argv) == boundary.EXIT_USAGE
    assert _error_line(capsys).startswith("error: unknown model 'no-such-net'; known models: camvid-fcn8s")


@pytest.mark.parametrize("value", ["-5", "nan", "lots"])
def test_figure_tolerance_is_checked_by_the_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["figure", "x.png", "--out", str(tmp_path / "f.png"), "--tolerance", value])
    assert exited.value.code == 2
    assert f"--tolerance: {value}:" in capsys.readouterr().err


def test_internal_errors_are_one_line_unless_debug(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from fcn_viewer.cli import models

    def broken(args: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(models, "run_models", broken)
    assert main(["models"]) == boundary.EXIT_INTERNAL
    assert _error_line(capsys) == "internal error: ZeroDivisionError: a bug (run with --debug for the traceback)"
    assert main(["models", "--debug"]) == boundary.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("internal error: ZeroDivisionError: a bug")


def test_environment_errors_name_the_path(capsys: pytest.CaptureFixture[str]) -> None:
    def denied() -> int:
        raise PermissionError(13, "Permission denied", "/some/file")

    assert boundary.run_guarded(denied) == boundary.EXIT_USAGE
    assert _error_line(capsys) == "error: /some/file: Permission denied"


def _image(path: Path) -> Path:
    Image.fromarray(gradient_image(20, 30)).save(path)
    return path


@pytest.mark.parametrize("where", ["file", "under_file", "proc"])
def test_unusable_out_is_refused_before_any_work(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    (tmp_path / "taken").write_text("a file")
    out = {"file": tmp_path / "taken", "under_file": tmp_path / "taken" / "out", "proc": Path("/proc/fcn-viewer-out")}[where]
    image = _image(tmp_path / "photo.png")
    assert main(["segment", str(image), "--weights", str(tiny_weights), "--out", str(out)]) == boundary.EXIT_USAGE
    line = _error_line(capsys)
    assert line.startswith(f"error: --out {out}") and ("not a folder" in line or "cannot write" in line)


@pytest.mark.parametrize("where", ["folder", "under_file"])
def test_unusable_json_is_refused_before_evaluating(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    (tmp_path / "taken").write_text("a file")
    target = {"folder": tmp_path, "under_file": tmp_path / "taken" / "r.json"}[where]
    argv = ["evaluate", "--data", str(tmp_path / "nowhere"), "--weights", str(tiny_weights), "--json", str(target)]
    assert main(argv) == boundary.EXIT_USAGE
    line = _error_line(capsys)
    assert line.startswith(f"error: --json {tmp_path}") and ("is a folder" in line or "taken: exists and is not a folder" in line)


def test_a_240_character_file_name_is_written_atomically(tmp_path: Path, tiny_weights: Path) -> None:
    image = _image(tmp_path / ("p" * 240 + ".png"))
    out = tmp_path / "out"
    assert main(["segment", str(image), "--weights", str(tiny_weights), "--out", str(out)]) == 0
    assert (out / ("p" * 240 + "_overlay.png")).is_file()
    with atomic_output(tmp_path / ("q" * 255)) as handle:
        handle.write(b"x")
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_second_run_into_one_folder_waits_for_the_first(tmp_path: Path) -> None:
    waited = threading.Event()
    inside = threading.Event()

    def second() -> None:
        with folder_lock(tmp_path, waited.set):
            inside.set()

    with folder_lock(tmp_path):
        thread = threading.Thread(target=second)
        thread.start()
        assert waited.wait(5)
        time.sleep(0.1)
        assert not inside.is_set()  # still waiting while the first holds the folder
    thread.join(5)
    assert inside.is_set()


def test_json_with_a_non_utf8_path_is_still_written() -> None:
    name = os.fsdecode(b"data-\xff")
    data = json_bytes({"dataset": name})
    assert json.loads(data) == {"dataset": name}


def test_all_void_labels_are_a_note_and_exit_1(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "d" / "val").mkdir(parents=True)
    (tmp_path / "d" / "valannot").mkdir()
    _image(tmp_path / "d" / "val" / "a.png")
    Image.fromarray(np.full((20, 30), 11, np.uint8), mode="L").save(tmp_path / "d" / "valannot" / "a.png")
    assert main(["evaluate", "--data", str(tmp_path / "d"), "--weights", str(tiny_weights)]) == 1
    assert "note: no pixel of the 1 label(s) is a class of the model" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_label_is_skipped_not_waited_for(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "d" / "val").mkdir(parents=True)
    (tmp_path / "d" / "valannot").mkdir()
    for stem in ("a", "b"):
        _image(tmp_path / "d" / "val" / f"{stem}.png")
    Image.fromarray(np.ones((20, 30), np.uint8), mode="L").save(tmp_path / "d" / "valannot" / "b.png")
    os.mkfifo(tmp_path / "d" / "valannot" / "a.png")
    outcome: list[int] = []
    thread = threading.Thread(target=lambda: outcome.append(
        main(["evaluate", "--data", str(tmp_path / "d"), "--weights", str(tiny_weights)])), daemon=True)
    thread.start()
    thread.join(60)
    assert outcome == [1]
    assert "a.png: not a regular file (a FIFO)" in capsys.readouterr().err


def test_a_binary_voc_listing_is_a_clear_error(tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = tmp_path / "voc" / "ImageSets" / "Segmentation" / "val.txt"
    listing.parent.mkdir(parents=True)
    listing.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    assert main(["evaluate", "--data", str(tmp_path / "voc"), "--weights", str(tiny_weights)]) == 1
    assert "val.txt: not a text file of image names" in _error_line(capsys)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_leaves_no_temporary_file(tmp_path: Path, tiny_weights: Path) -> None:
    images = tmp_path / "in"
    images.mkdir()
    for index in range(40):
        Image.fromarray(gradient_image(160, 200, seed=index)).save(images / f"{index:02}.png")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "fcn_viewer", "segment", str(images), "--weights", str(tiny_weights),
         "--out", str(out), "--save-scores", "--device", "cpu"],
        env=env, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.is_dir() and any(out.glob("*.npz"))):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == boundary.EXIT_TERMINATED, err
    assert err.strip().endswith("terminated") and "Traceback" not in err
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_huge_screenshot_size_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = _image(tmp_path / "photo.png")
    argv = ["gui", str(image), "--screenshot", str(tmp_path / "s.png"), "--size", "30000x30000"]
    assert main(argv) == boundary.EXIT_USAGE
    assert "is too large (at most 8192x8192)" in _error_line(capsys)


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="file names must be bytes (Linux)")
def test_figure_of_an_image_with_a_non_utf8_name(tmp_path: Path, tiny_weights: Path) -> None:
    image = _image(Path(os.fsdecode(bytes(tmp_path) + b"/ph\xffoto.png")))
    out = Path(os.fsdecode(bytes(tmp_path) + b"/fig\xff.png"))
    assert main(["figure", str(image), "--out", str(out), "--weights", str(tiny_weights), "--device", "cpu"]) == 0
    assert out.is_file()
