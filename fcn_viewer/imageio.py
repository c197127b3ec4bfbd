"""Reads any image a user may open into the one format the pipeline takes: H×W×3 uint8 RGB."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fcn_viewer.errors import ImageLoadError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def load_image(path: str | Path) -> np.ndarray:
    """Decodes ``path`` with EXIF orientation applied; greyscale, palette, RGBA, CMYK, 16-bit → RGB.

    Images whose header claims more than Pillow's ``MAX_IMAGE_PIXELS`` (≈ 89 MP) are refused
    before decoding, as possible decompression bombs.
    """
    with decoded(path) as image:
        return _to_rgb(ImageOps.exif_transpose(image))


@contextmanager
def decoded(path: str | Path) -> Iterator[Image.Image]:
    """The first frame of ``path``, decoded; any failure, in here or in the caller's block, becomes an
    ImageLoadError that names the file (decompression bombs are refused before decoding)."""
    path = Path(path)
    if path.is_dir():
        raise ImageLoadError(f"{path}: is a folder, not an image")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if Image.MAX_IMAGE_PIXELS is not None and width * height > Image.MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(f"{width}×{height} = {width * height} pixels")
            image.seek(0)
            image.load()
            yield image
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: file not found") from None
    except PermissionError:
        raise ImageLoadError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{path}: not an image, or a format Pillow cannot read") from None
    except Image.DecompressionBombError as error:
        raise ImageLoadError(f"{path}: too many pixels, a possible decompression bomb ({error})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageLoadError(f"{path}: damaged or truncated image ({error})") from None


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if pixels.max(initial=0) > 255 else 255.0
        grey = np.clip(pixels / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        span = float(pixels.max() - pixels.min()) or 1.0
        grey = ((pixels - pixels.min()) / span * 255.0 + 0.5).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.array(image.convert("RGB"), dtype=np.uint8)


def list_images(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))
