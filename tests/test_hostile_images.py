"""Hostile image files: foreign formats, FIFOs, degenerate sizes, scan bombs, huge photos, fuzzed headers."""

from __future__ import annotations

import io
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fcn_viewer import imageio
from fcn_viewer.errors import ImageLoadError
from fcn_viewer.imageio import load_image
from tests.bad_images import POSTSCRIPT, foreign_format_bytes, many_scans_jpeg

HANG_LIMIT_S = 10.0


def load_within(path: Path, seconds: float = HANG_LIMIT_S) -> object:
    """load_image's result or exception; fails the test if it has not returned within ``seconds``."""
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(_attempt(path)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"load_image({path.name}) still running after {seconds} s"
    return outcome[0]


def _attempt(path: Path) -> object:
    try:
        return load_image(path)
    except Exception as error:  # the assertions look at its type
        return error


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    outcome = load_within(fifo)
    assert isinstance(outcome, ImageLoadError) and "photo.png: not a regular file (a FIFO)" in str(outcome)


def test_postscript_is_never_handed_to_ghostscript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("an external program was started")

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    for name in ("photo.png", "photo.eps", "photo.jpg"):
        (tmp_path / name).write_bytes(POSTSCRIPT)
        outcome = load_within(tmp_path / name)
        assert isinstance(outcome, ImageLoadError) and "not one of the formats read here" in str(outcome)


@pytest.mark.parametrize("format", ["DDS", "BLP", "ICO", "PCX", "TGA"])
def test_formats_outside_the_allowlist_are_refused_by_content(tmp_path: Path, format: str) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(foreign_format_bytes(format))
    with pytest.raises(ImageLoadError, match=r"photo.png: not an image, or not one of the formats"):
        load_image(path)


def test_plugin_exceptions_of_any_type_become_image_load_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "odd.png"
    Image.new("RGB", (4, 4)).save(path)
    for failure in (NotImplementedError("no decoder"), KeyError("mode"), struct.error("bad"), RecursionError(),
                    MemoryError()):
        def explode(self: Image.Image, failure: BaseException = failure) -> None:
            raise failure

        monkeypatch.setattr("PIL.ImageFile.ImageFile.load", explode)
        with pytest.raises(ImageLoadError, match=r"odd.png: "):
            load_image(path)


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(20_000_000, 1), (80_000_000, 1), (1, 40_000)])
def test_degenerate_sides_are_refused_before_decoding(tmp_path: Path, size: tuple[int, int]) -> None:
    path = tmp_path / "line.png"
    path.write_bytes(_png_header(*size))
    with pytest.raises(ImageLoadError, match=f"line.png: {size[0]}×{size[1]} pixels: a side longer than 30,000 px"):
        load_image(path)


def test_jpeg_with_repeated_scans_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "scans.jpg"
    path.write_bytes(many_scans_jpeg(Image.new("RGB", (64, 48), (9, 9, 9)), 10_000))
    outcome = load_within(path, 5.0)
    assert isinstance(outcome, ImageLoadError) and "scans.jpg: a JPEG with" in str(outcome)


def test_jpeg_scan_count_sees_markers_split_between_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imageio, "_SCAN_CHUNK", 3)
    data = b"\xff\xd8" + b"\xff\xda\x00\x01" * 5 + b"\xff\xd9"
    assert imageio.count_jpeg_scans(io.BytesIO(data)) == 5


@pytest.mark.parametrize(("format", "mode"), [("JPEG", "RGB"), ("PNG", "RGB"), ("PNG", "P"), ("PNG", "RGBA"), ("TIFF", "L")])
def test_huge_photos_are_reduced_while_decoding_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, format: str, mode: str
) -> None:
    """The rule at a small scale: over REDUCE_ABOVE_PIXELS, the largest factor keeping REDUCED_MIN_PIXELS."""
    monkeypatch.setattr(imageio, "REDUCE_ABOVE_PIXELS", 40_000)
    monkeypatch.setattr(imageio, "REDUCED_MIN_PIXELS", 4_000)
    path = tmp_path / f"photo.{format.lower()}"
    Image.new("RGB", (400, 300), (200, 200, 200)).convert(mode).save(path, format=format)  # 120,000 px: factor 5 (JPEG 4)
    image = load_image(path)
    assert image.shape == ((75, 100, 3) if format == "JPEG" else (60, 80, 3))
    assert abs(int(image[10, 10, 0]) - 200) <= 3
    small = tmp_path / f"small.{format.lower()}"
    Image.new("RGB", (200, 150)).save(small, format=format)
    assert load_image(small).shape == (150, 200, 3)  # under the threshold: full size


def test_a_12000x9000_camera_jpeg_opens_reduced(tmp_path: Path) -> None:
    """The real size in the header (108 MP, over Pillow's 89 MP warning): draft mode decodes it at 1/4 scale.

    The scan data is that of a smaller picture, so the test stays fast; libjpeg pads what is missing.
    """
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 900), (30, 60, 90)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    start = data.find(b"\xff\xc0") + 5  # SOF0: length, precision, then height and width
    data[start:start + 4] = struct.pack(">HH", 9000, 12000)
    path = tmp_path / "camera.jpg"
    path.write_bytes(bytes(data))
    assert load_image(path).shape == (2250, 3000, 3)


def _header_strategy() -> st.SearchStrategy[bytes]:
    side = st.integers(0, 2**32 - 1) | st.integers(0, 70_000)
    png = st.builds(
        lambda w, h, depth, colour, tail: _png_ihdr(w, h, depth, colour) + tail,
        side, side, st.sampled_from([0, 1, 2, 4, 8, 16, 255]), st.sampled_from([0, 2, 3, 4, 6, 7]), st.binary(max_size=64),
    )
    bmp = st.builds(
        lambda w, h, bits, compression, tail: b"BM" + struct.pack("<IHHI", 1000, 0, 0, 54)
        + struct.pack("<IiiHHIIiiII", 40, w, h, 1, bits, compression, 0, 2835, 2835, 0, 0) + tail,
        st.integers(-2**31, 2**31 - 1), st.integers(-2**31, 2**31 - 1), st.sampled_from([0, 1, 4, 8, 16, 24, 32, 33]),
        st.integers(0, 7), st.binary(max_size=64),
    )
    gif = st.builds(
        lambda w, h, flags, tail: b"GIF89a" + struct.pack("<HHBBB", w, h, flags, 0, 0) + tail,
        st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 255), st.binary(max_size=64),
    )
    jpeg = st.builds(
        lambda w, h, components, tail: b"\xff\xd8\xff\xc0" + struct.pack(">HBHHB", 8 + 3 * components, 8, h, w, components)
        + b"\x01\x11\x00" * components + tail,
        st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 5), st.binary(max_size=64),
    )
    ppm = st.builds(lambda w, h, peak: f"P6\n{w} {h}\n{peak}\n".encode() + b"\x00" * 12,
                    st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 70000))
    tiff = st.builds(
        lambda w, h, bits, tail: b"II*\x00\x08\x00\x00\x00" + struct.pack("<H", 3)
        + struct.pack("<HHII", 256, 4, 1, w) + struct.pack("<HHII", 257, 4, 1, h)
        + struct.pack("<HHII", 258, 3, 1, bits) + b"\x00\x00\x00\x00" + tail,
        st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 65535), st.binary(max_size=64),
    )
    return st.one_of(png, bmp, gif, jpeg, ppm, tiff)


def _png_ihdr(width: int, height: int, depth: int, colour: int) -> bytes:
    data = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + data + struct.pack(">I", zlib.crc32(b"IHDR" + data))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(header=_header_strategy())
def test_fuzzed_headers_only_raise_image_load_error(tmp_path_factory: pytest.TempPathFactory, header: bytes) -> None:
    path = tmp_path_factory.mktemp("headers", numbered=True) / "fuzz.png"
    path.write_bytes(header)
    try:
        image = load_image(path)
    except ImageLoadError as error:
        assert "fuzz.png" in str(error)
    else:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert max(image.shape[:2]) <= imageio.MAX_SIDE
