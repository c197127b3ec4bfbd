"""Reads any image a user may open into the one format the pipeline takes: H×W×3 uint8 RGB.

The rule for every file (README, "What the app guarantees"):

* only regular files are opened (a FIFO, a device or a folder is refused without blocking);
* only the raster formats in ``RASTER_FORMATS`` are tried, whatever the file's name: never
  PostScript/EPS or any other Pillow plugin that runs an external program;
* the header is checked before any pixel is decoded: each side 1 … ``MAX_SIDE`` px, at most
  ``MAX_PIXELS`` pixels (a possible decompression bomb above), and a JPEG at most ``MAX_JPEG_SCANS``
  scans (a progressive file repeating scans is a CPU bomb);
* images over ``REDUCE_ABOVE_PIXELS`` are reduced while decoding (JPEG: DCT scaling in draft mode;
  others: an integer box reduction) by the largest factor that keeps at least
  ``REDUCED_MIN_PIXELS``, so a genuine 12000×9000 photo opens as 3000×2250;
* every decoder failure, whatever Pillow plugin raises it, becomes an ``ImageLoadError`` naming
  the file.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fcn_viewer.errors import FCNViewerError, ImageLoadError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
# Pillow format names tried when opening, whatever the suffix (the JPEG opener also returns the
# MPO files many cameras write). Nothing here calls an external program.
RASTER_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
MAX_SIDE = 30_000  # px; larger sides are refused (a 20,000,000×1 PNG would feed the net 8.9 MP)
MAX_PIXELS = 170_000_000  # above every camera sensor sold (≈ 150 MP); below Pillow's own 179 MP refusal
MAX_JPEG_SCANS = 100  # progressive encoders write about 10
REDUCE_ABOVE_PIXELS = 40_000_000
REDUCED_MIN_PIXELS = 4_000_000  # the network's own budget (inference.DEFAULT_MAX_PIXELS)
_JPEG_START = b"\xff\xd8"
_SCAN_MARKER = b"\xff\xda"  # can only be a marker: 0xFF inside entropy-coded data is followed by 0x00
_SCAN_CHUNK = 1 << 20


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def load_image(path: str | Path) -> np.ndarray:
    """Decodes ``path`` with EXIF orientation applied; greyscale, palette, RGBA, CMYK, 16-bit → RGB.

    Large images are reduced while decoding and bad ones refused, by the rule in this module's
    docstring.
    """
    with decoded(path, reduce=True) as image:
        ImageOps.exif_transpose(image, in_place=True)
        return _to_rgb(_reduced(image, image.info.get("fcn_viewer_reduce", 1)))


@contextmanager
def decoded(path: str | Path, reduce: bool = False) -> Iterator[Image.Image]:
    """The first frame of ``path``, decoded; any failure, in here or in the caller's block, becomes an
    ImageLoadError that names the file. With ``reduce``, a JPEG over the reduction threshold is
    decoded at a smaller DCT scale; other formats record the factor still to apply in
    ``image.info["fcn_viewer_reduce"]``."""
    path = Path(path)
    try:
        with _open_regular(path) as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(handle, formats=RASTER_FORMATS) as image:
                _check_header(path, image, handle)
                image.seek(0)
                if reduce:
                    _plan_reduction(image)
                image.load()
                yield image
    except FCNViewerError:  # ours, already naming the file (or raised by the caller's block)
        raise
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: file not found") from None
    except PermissionError:
        raise ImageLoadError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageLoadError(
            f"{path}: not an image, or not one of the formats read here ({', '.join(RASTER_FORMATS)})"
        ) from None
    except Image.DecompressionBombError as error:
        raise ImageLoadError(f"{path}: too many pixels, a possible decompression bomb ({error})") from None
    except MemoryError:
        raise ImageLoadError(f"{path}: not enough memory to decode it") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageLoadError(f"{path}: damaged or truncated image ({_short(error)})") from None
    except Exception as error:  # any other plugin error (NotImplementedError, struct.error, ...)
        raise ImageLoadError(f"{path}: cannot decode it ({type(error).__name__}: {_short(error)})") from None


@contextmanager
def _open_regular(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading, refused unless it is a regular file; never blocks on a FIFO."""
    if path.is_dir():
        raise ImageLoadError(f"{path}: is a folder, not an image")
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise ImageLoadError(f"{path}: not a regular file ({_file_kind(mode)}), so not opened as an image")
        handle = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with handle:
        yield handle


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "not a plain file"


def _check_header(path: Path, image: Image.Image, handle: BinaryIO) -> None:
    """Refuses, before decoding, sizes the pipeline cannot afford and JPEG scan bombs."""
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageLoadError(f"{path}: the header claims an empty image ({width}×{height})")
    if max(width, height) > MAX_SIDE:
        raise ImageLoadError(
            f"{path}: {width}×{height} pixels: a side longer than {MAX_SIDE:,} px is refused "
            "(degenerate or oversized image)"
        )
    if width * height > MAX_PIXELS:
        raise ImageLoadError(
            f"{path}: {width}×{height} = {width * height / 1e6:.0f} MP: more than {MAX_PIXELS / 1e6:.0f} MP is "
            "refused as a possible decompression bomb"
        )
    if image.format in ("JPEG", "MPO"):
        scans = count_jpeg_scans(handle)
        if scans > MAX_JPEG_SCANS:
            raise ImageLoadError(
                f"{path}: a JPEG with {scans} scans (at most {MAX_JPEG_SCANS} are decoded): a possible CPU bomb"
            )


def count_jpeg_scans(handle: BinaryIO) -> int:
    """How many start-of-scan markers the JPEG in ``handle`` holds (its position is restored)."""
    position = handle.tell()
    handle.seek(0)
    count, tail = 0, b""
    try:
        while chunk := handle.read(_SCAN_CHUNK):
            data = tail + chunk
            count += data.count(_SCAN_MARKER)
            tail = b"\xff" if data.endswith(b"\xff") else b""  # a marker split between two chunks
            if count > MAX_JPEG_SCANS:
                break
    finally:
        handle.seek(position)
    return count


def _plan_reduction(image: Image.Image) -> None:
    """Asks a JPEG for a smaller DCT scale, or notes the factor to reduce other formats by after decoding."""
    width, height = image.size
    if width * height <= REDUCE_ABOVE_PIXELS:
        return
    factor = max(1, math.isqrt(width * height // REDUCED_MIN_PIXELS))
    if image.format in ("JPEG", "MPO"):
        scale = next((s for s in (8, 4, 2) if s <= factor), 1)
        if scale > 1:
            image.draft(image.mode, (math.ceil(width / scale), math.ceil(height / scale)))
        return
    image.info["fcn_viewer_reduce"] = factor


_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I", "F"})


def _reduced(image: Image.Image, factor: int) -> Image.Image:
    """``image`` box-reduced by ``factor`` before any conversion, so the full size is held only once."""
    if factor <= 1:
        return image
    if image.mode not in _REDUCIBLE_MODES:  # palette, 16-bit, ...: convert first
        image = Image.fromarray(_to_rgb(image))
    return image.reduce(factor)


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float32)
        peak = 65535.0 if pixels.max(initial=0) > 255 else 255.0
        grey = np.clip(pixels / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(pixels)
        pixels = np.where(finite, pixels, 0.0)
        span = float(pixels.max(initial=0) - pixels.min(initial=0)) or 1.0
        grey = ((pixels - pixels.min(initial=0)) / span * 255.0 + 0.5).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.array(image.convert("RGB"), dtype=np.uint8)


def list_images(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))
