"""Soak tests: hundreds of quick opens in the viewer and a thousand-image `segment` run, with flat memory.

Resident memory is read from /proc/self/statm after a warm-up, so one-off allocations (Qt, torch's
thread pools, first-call caches) do not count; what is left is growth per image, which must stay small.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytestqt.qtbot import QtBot

import fcn_viewer.cli.segment as segment_module
from fcn_viewer.cli.main import main
from fcn_viewer.view.panel_content import ViewResult
from tests.gui_helpers import WAIT_MS, load, make_window
from tests.helpers import gradient_image

pytestmark = [
    pytest.mark.soak,
    pytest.mark.usefixtures("isolated"),
    pytest.mark.skipif(not Path("/proc/self/statm").is_file(), reason="reads resident memory from /proc"),
]
GUI_OPENS, GUI_WARMUP, GUI_GROWTH_MB = 500, 50, 50.0
BATCH_IMAGES, BATCH_WARMUP, BATCH_GROWTH_MB = 1000, 100, 30.0


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """These runs measure memory and correctness, not speed: one intra-op thread keeps their time
    steady on a busy machine, where OpenMP threads competing for the cores make tiny convolutions ~10× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def resident_mb() -> float:
    gc.collect()
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def numbered_images(folder: Path, count: int, height: int, width: int) -> list[Path]:
    """Small PNGs whose top-left pixel spells their number (red = n mod 256, green = n div 256)."""
    folder.mkdir()
    paths = []
    for number in range(count):
        image = gradient_image(height, width, seed=number % 17)
        image[0, 0, :2] = (number % 256, number // 256)
        path = folder / f"img{number:04d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def test_500_quick_opens_show_only_current_results_with_flat_memory(
    qtbot: QtBot, settings_path: Path, tmp_path: Path, tiny_weights: Path
) -> None:
    paths = numbered_images(tmp_path / "many", GUI_OPENS, 32, 40)
    window = make_window(qtbot, settings_path)
    load(qtbot, window, tiny_weights)
    shown: list[Path] = []  # paths only: holding the results would itself grow memory
    wrong: list[str] = []

    def check(result: ViewResult) -> None:
        number = int(result.path.stem.removeprefix("img"))
        if result.path != window.viewer.current_path:
            wrong.append(f"{result.path.name} shown while {window.viewer.current_path} is open")
        elif tuple(result.image[0, 0, :2]) != (number % 256, number // 256) or result.segmentation is None:
            wrong.append(f"{result.path.name} shown with another image's pixels or without a segmentation")
        shown.append(result.path)

    window.resultShown.connect(check)

    def settle(path: Path) -> None:
        qtbot.waitUntil(lambda: bool(shown) and shown[-1] == path and not window.busy_now, timeout=WAIT_MS)

    rng = np.random.default_rng(0)
    baseline = 0.0
    for index, path in enumerate(paths):
        window.open_image(path)  # without waiting: opens come faster than results
        if index % 10 == 9 or rng.random() < 0.05:
            settle(path)
        elif rng.random() < 0.2:
            qtbot.wait(1)  # let a few answers arrive, most of them stale by now
        if index + 1 == GUI_WARMUP:
            settle(path)
            baseline = resident_mb()
    settle(paths[-1])
    growth = resident_mb() - baseline
    print(f"\nGUI soak: {GUI_OPENS} opens, {len(shown)} results shown, resident memory growth after "
          f"{GUI_WARMUP} warm-up opens: {growth:+.1f} MB (limit {GUI_GROWTH_MB:.0f} MB)")
    assert not wrong, wrong[:5]
    assert len(shown) >= GUI_OPENS // 10 and shown[-1] == paths[-1]
    assert window.panels["input"].title.text() == "input · 3×32×40"
    assert growth <= GUI_GROWTH_MB
    window.close()


def test_segment_over_1000_images_keeps_memory_flat(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    numbered_images(tmp_path / "batch", BATCH_IMAGES, 16, 16)
    samples: list[float] = []
    write = segment_module.write_outputs

    def measured(*args: object, **kwargs: object) -> None:
        write(*args, **kwargs)  # type: ignore[arg-type]
        samples.append(resident_mb() if (len(samples) + 1) % BATCH_WARMUP == 0 else -1.0)

    monkeypatch.setattr(segment_module, "write_outputs", measured)
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "batch"), "--weights", str(tiny_weights), "--out", str(out),
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    readings = [mb for mb in samples if mb >= 0]
    growth = max(readings) - readings[0]
    print(f"\nsegment soak: {BATCH_IMAGES} images, resident memory after image 100, 200, …: "
          f"{', '.join(f'{mb:.0f}' for mb in readings)} MB; growth after {BATCH_WARMUP} warm-up images: "
          f"{growth:+.1f} MB (limit {BATCH_GROWTH_MB:.0f} MB)")
    assert len(samples) == BATCH_IMAGES and len(list(out.glob("*_mask.png"))) == BATCH_IMAGES
    assert growth <= BATCH_GROWTH_MB
