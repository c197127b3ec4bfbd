"""Hostile frame sequences and GIF exports (issue 21): frame-count and frame-size bombs, foreign formats and FIFOs
named like animations, 16-bit pages, and GIF targets that cannot be written."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
from PIL import Image

from fcn_viewer import atomic
from fcn_viewer.errors import FCNViewerError, ImageLoadError, UsageError
from fcn_viewer.imageio import load_image
from fcn_viewer.inference import Segmentation, Segmenter
from fcn_viewer.teaching import sequence
from fcn_viewer.teaching.sequence import FramePictures, export_gif, open_sequence, stage_strip
from fcn_viewer.weights.loader import load_weights_file
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


@memory_capped
def test_segment_and_the_stages_tab_read_the_first_frame_of_a_frame_bomb_only(tmp_path: Path) -> None:
    """load_image (``segment``, the Stages tab) is the sequence's frame 1: it neither counts nor decodes the rest."""
    path = tmp_path / "long.gif"
    path.write_bytes(sparse_gif(160, 160, 100_000))
    child = run_capped(f"""
        import time
        from fcn_viewer.imageio import load_image
        started = time.perf_counter()
        print(load_image({str(path)!r}).shape, f"{{time.perf_counter() - started:.1f}}")
        """, memory_bytes=512 << 20, seconds=30)
    assert child.returncode == 0, child.stderr[-2000:]
    shape, seconds = child.stdout.rsplit(" ", 1)
    assert shape == "(160, 160, 3)" and float(seconds) < 2


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


# ---- GIF export -----------------------------------------------------------------------------------------------


class Counting:
    """The tiny net's segment, counting its calls."""

    def __init__(self, weights: Path) -> None:
        self.segmenter = Segmenter(load_weights_file(weights), "cpu")
        self.calls = 0

    def __call__(self, image: np.ndarray) -> Segmentation:
        self.calls += 1
        return self.segmenter.segment(image)


def export(target: Path, frames: Path, segment: Counting, progress: Callable[[int, int], bool] | None = None) -> Path:
    return export_gif(target, open_sequence(frames), segment, segment.segmenter.meta.palette, 0.6, 5.0,
                      progress=progress)


def test_a_read_only_target_fails_before_the_first_frame_naming_the_gif(tmp_path: Path, tiny_weights: Path) -> None:
    segment, frames = Counting(tiny_weights), write_frames(tmp_path / "f", 3)
    target = tmp_path / "panels.gif"
    target.write_bytes(b"kept")
    target.chmod(0o444)
    with pytest.raises(UsageError, match=r"panels.gif: is read-only") as caught:
        export(target, frames, segment)
    assert segment.calls == 0 and target.read_bytes() == b"kept"
    assert "Cannot play" not in str(caught.value)
    with pytest.raises(UsageError, match=r"panels.gif: .*not a folder"):
        export(tmp_path / "f" / "frame0.png" / "panels.gif", frames, segment)
    with pytest.raises(UsageError, match=r"f: is a folder"):
        export(tmp_path / "f", frames, segment)
    assert segment.calls == 0


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_fails_before_the_first_frame(tmp_path: Path, tiny_weights: Path) -> None:
    segment, frames = Counting(tiny_weights), write_frames(tmp_path / "f", 3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out").chmod(0o555)
    try:
        with pytest.raises(UsageError, match=r"out/panels.gif: cannot write"):
            export(tmp_path / "out" / "panels.gif", frames, segment)
    finally:
        (tmp_path / "out").chmod(0o755)
    assert segment.calls == 0


def test_a_full_disk_names_the_gif_not_its_temporary_file(tmp_path: Path, tiny_weights: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills after 2 KB: the error is one line naming the GIF, and no temporary file stays."""
    segment, frames = Counting(tiny_weights), write_frames(tmp_path / "f", 4)
    target = tmp_path / "panels.gif"

    class Full:
        def __init__(self, handle: BinaryIO, name: str) -> None:
            self.handle, self.name, self.written = handle, name, 0

        def write(self, data: bytes) -> int:
            self.written += len(data)
            if self.written > 2000:
                raise OSError(errno.ENOSPC, "No space left on device", self.name)
            return self.handle.write(data)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exception: object) -> None:
            self.handle.close()

        def __getattr__(self, attribute: str) -> object:
            return getattr(self.handle, attribute)

    def filling(name: str, mode: str) -> Full:
        return Full(open(name, mode), name)  # closed by Full

    monkeypatch.setattr(atomic, "open", filling, raising=False)  # the temporary file atomic_output writes
    with pytest.raises(FCNViewerError) as caught:
        export(target, frames, segment)
    message = str(caught.value)
    assert message == f"{target}: cannot write the GIF (the disk is full)", message
    assert not target.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_frames_are_written_as_they_are_made(tmp_path: Path, tiny_weights: Path) -> None:
    """After each frame, the GIF's hidden temporary file already holds it: nothing waits for the last frame."""
    segment, frames = Counting(tiny_weights), write_frames(tmp_path / "f", 4)
    sizes: list[int] = []

    def written(done: int, total: int) -> bool:
        [temporary] = [p for p in tmp_path.iterdir() if p.name.startswith(".panels.gif")]
        sizes.append(temporary.stat().st_size)
        return True

    export(tmp_path / "panels.gif", frames, segment, progress=written)
    assert len(sizes) == 4 and 0 < sizes[0] < sizes[1] < sizes[2] < sizes[3]


def test_frames_of_changing_size_are_letterboxed_on_one_canvas(tmp_path: Path, tiny_weights: Path) -> None:
    segment = Counting(tiny_weights)
    folder = tmp_path / "f"
    write_frames(folder, 1, size=(36, 44))
    Image.fromarray(np.full((36, 88, 3), 200, dtype=np.uint8)).save(folder / "frame1.png")  # twice as wide
    Image.fromarray(np.full((36, 22, 3), 200, dtype=np.uint8)).save(folder / "frame2.png")  # half as wide
    target = export(tmp_path / "panels.gif", folder, segment)
    with Image.open(target) as gif:
        canvas = gif.size
        gif.seek(1)
        wide = np.asarray(gif.convert("RGB")).astype(int)
        gif.seek(2)
        narrow = np.asarray(gif.convert("RGB")).astype(int)
    assert canvas == (7 * (220 + 4) - 4, 180 + 22)  # the first frame's strip
    band = np.array([24, 24, 28])
    # the wide strip is shrunk to fit: bands above and below, its last panel still at the right edge
    assert np.abs(wide[:40] - band).max() <= 8 and np.abs(wide[-40:] - band).max() <= 8
    assert np.abs(wide[90:110, -60:] - band).max() > 40
    # the narrow strip is centred: bands left and right
    assert np.abs(narrow[:, :300] - band).max() <= 8 and np.abs(narrow[:, -300:] - band).max() <= 8
    assert np.abs(narrow[40:, canvas[0] // 2 - 50:canvas[0] // 2 + 50] - band).max() > 40


def test_a_frame_30_000_px_wide_makes_a_strip_of_bounded_width() -> None:
    photo = np.zeros((2, 3000, 3), dtype=np.uint8)
    pictures = FramePictures(0, "line.png", photo, {"32s": np.zeros((1, 94, 3), dtype=np.uint8)}, {"32s": photo}, 1.0)
    strip = stage_strip(pictures)
    assert strip.shape[1] <= 3 * (4 * 180 + 4) and strip.shape[0] <= 180 + 22  # was 202×810,000: 490 MB


# The child makes 120 stage strips of 202×5064 px (3 MB each, 360 MB in all, more again as GIF frames) from one
# cached segmentation, so the test measures what export keeps, not the net.
EXPORT_PRELOAD = """
    from pathlib import Path
    import numpy as np
    from fcn_viewer.inference import Segmenter
    from fcn_viewer.teaching.sequence import export_gif
    from tests.helpers import random_model, tiny_compact_config, tiny_meta
    from fcn_viewer.weights.native import save_native
    from fcn_viewer.weights.loader import load_weights_file

    config = tiny_compact_config()
    weights = save_native(Path({folder!r}) / "tiny.safetensors", random_model(config).state_dict(), tiny_meta(config),
                          half=False)
    segmenter = Segmenter(load_weights_file(weights), "cpu")
    photo = np.random.default_rng(0).integers(0, 255, (20, 80, 3), dtype=np.uint8)
    cached = segmenter.segment(photo)

    class Frames:
        name = "noise"
        def __len__(self): return 120
        def frame(self, index): return photo
        def frame_name(self, index): return f"noise #{{index + 1}}"
    """


@memory_capped
def test_a_long_export_streams_in_bounded_memory(tmp_path: Path) -> None:
    child = run_capped(f"""
        target = export_gif(Path({str(tmp_path / "noise.gif")!r}), Frames(), lambda image: cached,
                            segmenter.meta.palette, 0.6, 10.0)
        print("saved", target.stat().st_size)
        """, memory_bytes=256 << 20, seconds=120, preload=EXPORT_PRELOAD.format(folder=str(tmp_path)))
    assert child.returncode == 0, child.stderr[-2000:]
    with Image.open(tmp_path / "noise.gif") as gif:
        assert gif.n_frames == 120 and gif.size == (5064, 202)


def test_errors_that_are_not_writing_errors_keep_their_own_words(tmp_path: Path, tiny_weights: Path) -> None:
    segment, folder = Counting(tiny_weights), write_frames(tmp_path / "f", 3)
    (folder / "frame1.png").write_bytes(b"not a picture")
    with pytest.raises(FCNViewerError, match=r"frame1.png: not an image"):
        export(tmp_path / "panels.gif", folder, segment)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".gif", ".tmp"))]
