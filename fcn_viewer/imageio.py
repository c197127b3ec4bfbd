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

A file of many frames (an animated GIF, PNG or WebP, a multi-page TIFF) is read by ``ImageFrames`` under the same
rule, frame by frame: its frames are counted and sized from the headers when it is opened (at most ``MAX_FRAMES``
frames, ``MAX_SEQUENCE_PIXELS`` pixels in all, each frame within the limits above), and each is decoded only when
asked for, exactly as ``load_image`` decodes the first.
"""

from __future__ import annotations

import itertools
import math
import os
import stat
import struct
import threading
import warnings
import weakref
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

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
MAX_FRAMES = 10_000  # frames of one sequence: 6 minutes at 25 fps
MAX_SEQUENCE_PIXELS = 1_000_000_000  # all of one file's frames decoded: 1,000 MP, 3 GB of RGB
_JPEG_START = b"\xff\xd8"
_SCAN_MARKER = b"\xff\xda"  # can only be a marker: 0xFF inside entropy-coded data is followed by 0x00
_SCAN_CHUNK = 1 << 20


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def load_image(path: str | Path) -> np.ndarray:
    """Decodes the first frame of ``path`` with EXIF orientation applied; greyscale, palette, RGBA, CMYK, 16-bit → RGB.

    Large images are reduced while decoding and bad ones refused, by the rule in this module's
    docstring.
    """
    path = Path(path)
    with _named(path), _opened(path) as (image, _):
        return _pixels(image)


@contextmanager
def decoded(path: str | Path) -> Iterator[Image.Image]:
    """The first frame of ``path``, decoded as it is; any failure, in here or in the caller's block, becomes an
    ImageLoadError that names the file."""
    path = Path(path)
    with _named(path), _opened(path) as (image, _):
        image.load()
        yield image


class ImageFrames:
    """The frames of one image file (an animated GIF, PNG or WebP, a multi-page TIFF; one frame for any other),
    counted and sized from the headers when opened, each decoded when asked for as ``load_image`` decodes the first.

    The file stays open between frames, so playing forward reads on from the last frame (a GIF's frames build on
    each other); going back reopens it. Thread-safe; closed by :meth:`close` or when no longer referenced.
    """

    def __init__(self, path: Path, count: int) -> None:
        self.path = path
        self.count = count
        self._lock = threading.Lock()
        self._files = ExitStack()
        self._image: Image.Image | None = None
        weakref.finalize(self, self._files.close)

    @classmethod
    def open(cls, path: str | Path) -> ImageFrames:
        """Counts the frames of ``path``; refuses it, naming the limit, if they break the rule."""
        path = Path(path)
        with _named(path), _opened(path) as (image, handle):
            return cls(path, _count_frames(path, image, handle))

    def __len__(self) -> int:
        return self.count

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (from 0) as H×W×3 uint8 RGB."""
        if not 0 <= index < self.count:
            raise IndexError(f"{self.path}: no frame {index + 1} of {self.count}")
        with self._lock:
            try:
                with _named(self.path):
                    return _pixels(self._seek(index))
            except BaseException:
                self._close()  # its state is unknown: the next frame reopens the file
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _seek(self, index: int) -> Image.Image:
        image = self._image
        if image is None or index < image.tell():
            self._close()
            image, _ = self._files.enter_context(_opened(self.path))
            self._image = image
        while image.tell() < index:  # one frame at a time: each one's size is checked before it is decoded
            image.seek(image.tell() + 1)
            check_size(self.path, image.size, image.tell())
        return image

    def _close(self) -> None:
        self._image = None
        self._files.close()


@contextmanager
def _named(path: Path) -> Iterator[None]:
    """Any failure in the block becomes an ImageLoadError naming ``path``; Pillow's bomb warnings are ours to give."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
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
def _opened(path: Path) -> Iterator[tuple[Image.Image, BinaryIO]]:
    """``path`` opened as one of ``RASTER_FORMATS`` at its first frame, the header checked, nothing decoded yet;
    and the file it reads."""
    with open_regular(path) as handle, Image.open(handle, formats=RASTER_FORMATS) as image:
        _check_header(path, image, handle)
        yield image, handle


@contextmanager
def open_regular(path: Path, what: str = "an image") -> Iterator[BinaryIO]:
    """``path`` opened for reading, refused (as ``what`` it was to be) unless it is a regular file; never blocks on a
    FIFO."""
    if path.is_dir():
        raise ImageLoadError(f"{path}: is a folder, not {what}")
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise ImageLoadError(f"{path}: not a regular file ({file_kind(mode)}), so not opened as {what}")
        handle = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with handle:
        yield handle


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, in words (for the refusals that name it)."""
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "not a plain file"


def _check_header(path: Path, image: Image.Image, handle: BinaryIO) -> None:
    """Refuses, before decoding, sizes the pipeline cannot afford and JPEG scan bombs."""
    check_size(path, image.size, 0)
    if image.format in ("JPEG", "MPO"):
        scans = count_jpeg_scans(handle)
        if scans > MAX_JPEG_SCANS:
            raise ImageLoadError(
                f"{path}: a JPEG with {scans} scans (at most {MAX_JPEG_SCANS} are decoded): a possible CPU bomb"
            )


def check_size(path: Path, size: tuple[int, int], index: int) -> None:
    """Refuses frame ``index`` (from 0) of ``path`` if ``size`` is empty, too long on a side or too many pixels."""
    width, height = size
    where = f"{path}" if index == 0 else f"{path}, frame {index + 1}"
    if width < 1 or height < 1:
        raise ImageLoadError(f"{where}: the header claims an empty image ({width}×{height})")
    if max(width, height) > MAX_SIDE:
        raise ImageLoadError(
            f"{where}: {width}×{height} pixels: a side longer than {MAX_SIDE:,} px is refused "
            "(degenerate or oversized image)"
        )
    if width * height > MAX_PIXELS:
        raise ImageLoadError(
            f"{where}: {width}×{height} = {width * height / 1e6:.0f} MP: more than {MAX_PIXELS / 1e6:.0f} MP is "
            "refused as a possible decompression bomb"
        )


def _count_frames(path: Path, image: Image.Image, handle: BinaryIO) -> int:
    """How many frames ``image`` holds, from its headers only (no pixel decoded); refuses more than ``MAX_FRAMES``,
    more than ``MAX_SEQUENCE_PIXELS`` in all, and any frame whose size the rule refuses."""
    count = total = 0
    for count, size in enumerate(_frame_sizes(image, handle), start=1):
        if count > MAX_FRAMES:
            raise ImageLoadError(f"{path}: more than {MAX_FRAMES:,} frames: a sequence plays at most {MAX_FRAMES:,}")
        check_size(path, size, count - 1)
        total += size[0] * size[1]
        if total > MAX_SEQUENCE_PIXELS:
            raise ImageLoadError(
                f"{path}: {count} frames of {size[0]}×{size[1]} px: more than {MAX_SEQUENCE_PIXELS / 1e6:,.0f} MP "
                "in all, refused as a possible decompression bomb (extract the frames you need to a folder)"
            )
    return count


def _frame_sizes(image: Image.Image, handle: BinaryIO) -> Iterator[tuple[int, int]]:
    """The size of each frame of ``image``, read lazily from the headers (in ``handle``, the file it reads)."""
    if image.format == "GIF":
        yield from _gif_frame_sizes(handle)
    elif image.format == "TIFF":  # each page has its own size; reading a page's header decodes nothing
        for index in itertools.count():
            if index:
                try:
                    image.seek(index)
                except EOFError:
                    return
            yield image.size
    else:  # APNG, WebP, MPO: frames of the canvas size, counted in the header
        yield from itertools.repeat(image.size, getattr(image, "n_frames", 1))


def _gif_frame_sizes(handle: BinaryIO) -> Iterator[tuple[int, int]]:
    """The canvas size at each frame of the GIF in ``handle``, from its block structure alone: Pillow counts frames
    by reading every one, and grows the canvas to hold a frame reaching past it, as done here."""
    handle.seek(6)
    screen = handle.read(7)
    if len(screen) < 7:
        return
    width, height, flags = struct.unpack("<HHB", screen[:5])
    _skip_colour_table(handle, flags)
    while (block := handle.read(1)) not in (b"", b";"):
        if block == b",":  # an image: position, size, flags, its own colours, LZW code size, data
            descriptor = handle.read(9)
            if len(descriptor) < 9:
                return
            left, top, frame_width, frame_height, flags = struct.unpack("<HHHHB", descriptor)
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            _skip_colour_table(handle, flags)
            handle.read(1)
            _skip_sub_blocks(handle)
            yield width, height
        elif block == b"!":  # an extension: its label, then data
            handle.read(1)
            _skip_sub_blocks(handle)
        # any other byte is skipped, as Pillow skips it


def _skip_colour_table(handle: BinaryIO, flags: int) -> None:
    if flags & 0x80:
        handle.seek(3 << ((flags & 7) + 1), os.SEEK_CUR)


def _skip_sub_blocks(handle: BinaryIO) -> None:
    while (length := handle.read(1)) and length[0]:
        handle.seek(length[0], os.SEEK_CUR)


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


def _plan_reduction(image: Image.Image) -> int:
    """Asks a JPEG for a smaller DCT scale; for other formats, the factor to reduce by after decoding (1: none)."""
    width, height = image.size
    if width * height <= REDUCE_ABOVE_PIXELS:
        return 1
    factor = max(1, math.isqrt(width * height // REDUCED_MIN_PIXELS))
    if image.format in ("JPEG", "MPO"):
        scale = next((s for s in (8, 4, 2) if s <= factor), 1)
        if scale > 1:
            image.draft(image.mode, (math.ceil(width / scale), math.ceil(height / scale)))
        return 1
    return factor


def _pixels(image: Image.Image) -> np.ndarray:
    """The current frame of ``image`` (its size checked) decoded, reduced if huge, RGB and turned upright; ``image``
    itself is left as it is, so the next frame can build on it."""
    factor = _plan_reduction(image)
    image.load()
    pixels = _to_rgb(_reduced(image, factor))
    turn = _ORIENTATIONS.get(image.getexif().get(ExifTags.Base.Orientation, 1))
    return pixels if turn is None else np.array(Image.fromarray(pixels).transpose(turn))


# EXIF orientation → the turn that shows the picture upright (as PIL.ImageOps.exif_transpose)
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


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


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of ``path``'s first frame, from its header checked by the same rule; no pixel is decoded."""
    path = Path(path)
    with _named(path), _opened(path) as (image, _):
        return image.height, image.width
