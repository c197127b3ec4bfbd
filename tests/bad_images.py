"""Generates the corpus of awkward and broken image files that every entry point must survive."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import gradient_image


# name → (file name, expected outcome): "ok" decodes to RGB, "error" raises ImageLoadError.
def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_bytes(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height pixels but carries almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def many_scans_jpeg(image: Image.Image, repeats: int) -> bytes:
    """A progressive JPEG whose last scan is repeated ``repeats`` more times: a CPU bomb for decoders."""
    data = _jpeg_bytes(image, progressive=True)
    last = data.rfind(b"\xff\xda")
    scan = data[last:-2]  # up to the end-of-image marker
    return data[:-2] + scan * repeats + data[-2:]


def foreign_format_bytes(format: str) -> bytes:
    """A small valid image in a format Pillow reads but the app does not open (DDS, BLP, ...)."""
    buffer = io.BytesIO()
    Image.new("RGBA", (8, 8), (1, 2, 3, 255)).convert({"BLP": "P", "PCX": "RGB"}.get(format, "RGBA")).save(buffer, format=format)
    return buffer.getvalue()


def sparse_gif(width: int, height: int, frames: int) -> bytes:
    """An animated GIF of ``frames`` frames on a width×height canvas, each frame one pixel in 23 bytes; a reader
    composes every frame onto the whole canvas (130 frames of 4000×4000 fit in 3 KB, 100,000 frames in 2.3 MB)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = (b"!\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: shown for 0.1 s
             + b"," + struct.pack("<HHHHB", 0, 0, 1, 1, 0)  # one pixel at the top left, the global colours
             + b"\x02\x02\x44\x01\x00")  # LZW, minimum code size 2: clear, colour 0, end
    return screen + frame * frames + b";"


def tiff_pages(path: Path, pages: list[Image.Image]) -> Path:
    """A multi-page TIFF of ``pages`` (any sizes and modes), deflate-compressed."""
    pages[0].save(path, format="TIFF", save_all=True, append_images=pages[1:], compression="tiff_deflate")
    return path


# An endless PostScript loop: Pillow would hand it to Ghostscript, whatever the file is called.
POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n"


def write_corpus(folder: Path) -> dict[str, str]:
    """Writes every case into ``folder``; returns file name → "ok" or "error"."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(gradient_image(24, 32))
    cases: dict[str, tuple[bytes | None, str]] = {
        "truncated.jpg": (_jpeg_bytes(rgb)[:200], "error"),
        "truncated.png": (_png_bytes(rgb)[:120], "error"),
        "empty.png": (b"", "error"),
        "text.png": (b"this is not an image\n", "error"),
        "cmyk.jpg": (_jpeg_bytes(rgb.convert("CMYK")), "ok"),
        "sixteen_bit.png": (_png_bytes(Image.fromarray((np.arange(24 * 32).reshape(24, 32) * 80).astype(np.uint16))), "ok"),
        "grey.png": (_png_bytes(rgb.convert("L")), "ok"),
        "palette.png": (_png_bytes(rgb.convert("P")), "ok"),
        "rgba.png": (_png_bytes(rgb.convert("RGBA")), "ok"),
        "one_pixel.png": (_png_bytes(Image.new("RGB", (1, 1), (200, 10, 10))), "ok"),
        "thin.png": (_png_bytes(Image.new("RGB", (1, 10000), (10, 200, 10))), "ok"),
        "bomb.png": (_bomb_png(30000, 30000), "error"),
        "wide.png": (_bomb_png(20_000_000, 1), "error"),
        "zero_height.png": (_bomb_png(16, 0), "error"),
        "postscript.png": (POSTSCRIPT, "error"),
        "dds.png": (foreign_format_bytes("DDS"), "error"),
        "blp.jpg": (foreign_format_bytes("BLP"), "error"),
        "scans.jpg": (many_scans_jpeg(rgb, 300), "error"),
        "progressive.jpg": (_jpeg_bytes(rgb, progressive=True), "ok"),
    }
    rotated = rgb.copy()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    cases["exif_rotated.jpg"] = (_jpeg_bytes(rotated, exif=exif.tobytes()), "ok")
    frames = [Image.new("RGB", (16, 12), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    cases["animated.gif"] = (buffer.getvalue(), "ok")
    outcomes = {}
    for name, (data, outcome) in cases.items():
        (folder / name).write_bytes(data or b"")
        outcomes[name] = outcome
    (folder / "folder.png").mkdir(exist_ok=True)
    outcomes["folder.png"] = "error"
    if hasattr(os, "mkfifo"):  # opening it for reading would block until a writer comes: never opened
        if not (folder / "fifo.png").exists():
            os.mkfifo(folder / "fifo.png")
        outcomes["fifo.png"] = "error"
    return outcomes
