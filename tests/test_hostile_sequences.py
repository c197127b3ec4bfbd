"""Hostile frame sequences (issue 21): frame-count and frame-size bombs, foreign formats and FIFOs named like
animations, 16-bit pages."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcn_viewer.errors import ImageLoadError
from fcn_viewer.imageio import load_image
from fcn_viewer.teaching import sequence
from fcn_viewer.teaching.sequence import open_sequence
from tests.bad_images import POSTSCRIPT, sparse_gif, tiff_pages
from tests.hostile import memory_capped, run_capped, within
from tests.test_sequence import write_frames

# The child opens the file as the Sequence tab does and decodes every frame, one after the other.
PLAY_EVERY_FRAME = """
    import time
    from pathlib import Path
    from fcn_viewer.errors import ImageLoadError
    from fcn_viewer.teaching.sequence import open_sequence
    """


def play_capped(path: Path, memory_bytes: int = 1 << 30) -> subprocess.CompletedProcess[str]:
    return run_capped(f"""
        started = time.perf_counter()
        try:
            source = open_sequence(Path({str(path)!r}))
            for index in range(len(source)):
                source.frame(index)
        except ImageLoadError as error:
            print(error)
        else:
            print(f"played {{len(source)}} frames")
        print(f"in {{time.perf_counter() - started:.1f}} s")
        """, memory_bytes=memory_bytes, seconds=120, preload=PLAY_EVERY_FRAME)


def seconds_taken(child: subprocess.CompletedProcess[str]) -> float:
    return float(child.stdout.rsplit("in ", 1)[1].split()[0])


# ---- frames go through the image reader --------------------------------------------------------------------


@memory_capped
@pytest.mark.parametrize(("name", "limit"), [
    ("bomb.gif", "bomb.gif: 63 frames of 4000×4000 px: more than 1,000 MP in all"),  # 3 KB: 130 frames of 4000×4000
    ("long.gif", "long.gif: more than 10,000 frames"),  # 2.3 MB: 100,000 frames
    ("wide.tif", "wide.tif: 20000000×1 pixels: a side longer than 30,000 px"),  # 20 KB
])
def test_frame_count_and_size_bombs_fail_fast_in_bounded_memory_naming_the_limit(tmp_path: Path, name: str,
                                                                                  limit: str) -> None:
    path = tmp_path / name
    if name == "bomb.gif":
        path.write_bytes(sparse_gif(4000, 4000, 130))
    elif name == "long.gif":
        path.write_bytes(sparse_gif(160, 160, 100_000))
    else:
        tiff_pages(path, [Image.new("L", (20_000_000, 1))])
    child = play_capped(path)
    assert child.returncode == 0, child.stderr[-2000:]
    assert limit in child.stdout and len(child.stdout.splitlines()) == 2, child.stdout
    assert seconds_taken(child) < 10


@memory_capped
def test_frames_are_decoded_one_at_a_time(tmp_path: Path) -> None:
    """30 frames of 4000×4000 (1.4 GB of RGB at once) play in 1 GB: each is decoded when asked for."""
    path = tmp_path / "large.gif"
    path.write_bytes(sparse_gif(4000, 4000, 30))
    child = play_capped(path)
    assert child.returncode == 0, child.stderr[-2000:]
    assert "played 30 frames" in child.stdout


def test_a_later_page_over_the_limits_is_refused_when_opened(tmp_path: Path) -> None:
    path = tiff_pages(tmp_path / "pages.tif", [Image.new("L", (8, 6)), Image.new("L", (20_000_000, 1))])
    with pytest.raises(ImageLoadError, match=r"pages.tif, frame 2: 20000000×1 pixels: a side longer than 30,000 px"):
        open_sequence(path)


def test_a_folder_of_too_many_frames_is_refused_naming_the_limit(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sequence, "MAX_FRAMES", 5)
    folder = write_frames(tmp_path / "frames", 6, size=(4, 4))
    with pytest.raises(ImageLoadError, match=r"frames: more than 5 images: .*at most 5 frames"):
        open_sequence(folder)
    (folder / "frame5.png").unlink()
    assert len(open_sequence(folder)) == 5


def test_postscript_named_like_an_animation_never_reaches_ghostscript(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("an external program was started")

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    for name in ("scan.tif", "clip.gif", "clip.webp"):
        (tmp_path / name).write_bytes(POSTSCRIPT)
        outcome = within(lambda name=name: open_sequence(tmp_path / name))
        assert isinstance(outcome, ImageLoadError), outcome
        assert f"{name}: not an image, or not one of the formats read here" in str(outcome)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_like_an_animation_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "clip.gif")
    outcome = within(lambda: open_sequence(tmp_path / "clip.gif"))
    assert isinstance(outcome, ImageLoadError) and "clip.gif: not a regular file (a FIFO)" in str(outcome), outcome


def test_a_16_bit_page_reads_the_same_in_the_sequence_as_in_the_stages_tab(tmp_path: Path) -> None:
    pages = [Image.fromarray(np.full((6, 8), value, dtype=np.uint16)) for value in (40_000, 20_000)]
    path = tiff_pages(tmp_path / "depth.tif", pages)
    frames = open_sequence(path)
    assert len(frames) == 2
    np.testing.assert_array_equal(frames.frame(0), load_image(path))
    assert frames.frame(0)[0, 0].tolist() == [156, 156, 156]  # 40000 / 65535 of the range, not clipped to 255
    assert frames.frame(1)[0, 0].tolist() == [78, 78, 78]


def test_frames_are_read_in_any_order(tmp_path: Path) -> None:
    pictures = [Image.fromarray(np.full((8, 10, 3), 40 * i, dtype=np.uint8)) for i in range(5)]
    pictures[0].save(tmp_path / "a.gif", save_all=True, append_images=pictures[1:], duration=100)
    frames = open_sequence(tmp_path / "a.gif")
    assert [int(frames.frame(i)[0, 0, 0]) for i in (3, 4, 1, 1, 0, 4)] == [120, 160, 40, 40, 0, 160]
