"""Whatever file a user opens, decoding gives an RGB image or an ImageLoadError that names the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fcn_viewer.errors import ImageLoadError
from fcn_viewer.imageio import load_image
from tests.bad_images import write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, write_corpus(folder)


def test_every_corpus_file_decodes_or_fails_clearly(corpus: tuple[Path, dict[str, str]]) -> None:
    folder, outcomes = corpus
    for name, outcome in outcomes.items():
        if outcome == "ok":
            image = load_image(folder / name)
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        else:
            with pytest.raises(ImageLoadError, match=name.replace(".", r"\.")):
                load_image(folder / name)


def test_specific_conversions(corpus: tuple[Path, dict[str, str]]) -> None:
    folder, _ = corpus
    assert load_image(folder / "exif_rotated.jpg").shape == (32, 24, 3)  # orientation applied
    assert load_image(folder / "thin.png").shape == (10000, 1, 3)
    assert tuple(load_image(folder / "animated.gif")[0, 0]) == (255, 0, 0)  # first frame
    sixteen = load_image(folder / "sixteen_bit.png")
    assert sixteen[0, 0, 0] == 0 and sixteen[-1, -1, 0] == round(767 * 80 / 65535 * 255)  # 16 bits → 8 bits
    rgba = load_image(folder / "rgba.png")
    assert rgba.shape == (24, 32, 3)


def test_bomb_is_refused(corpus: tuple[Path, dict[str, str]]) -> None:
    folder, _ = corpus
    with pytest.raises(ImageLoadError, match=r"bomb.png: too many pixels.*decompression bomb"):
        load_image(folder / "bomb.png")


def test_unreadable_file_names_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("fcn_viewer.imageio.Image.open", refuse)
    with pytest.raises(ImageLoadError, match=r"secret.png: permission denied"):
        load_image(path)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.binary(max_size=2048), cut=st.integers(min_value=0, max_value=400), flip=st.integers(0, 399))
def test_fuzzed_bytes_only_raise_image_load_error(tmp_path_factory: pytest.TempPathFactory, data: bytes, cut: int,
                                                  flip: int) -> None:
    folder = tmp_path_factory.mktemp("fuzz", numbered=True)
    base = bytearray(Image_bytes())
    base[flip % len(base)] ^= 0xFF
    for candidate in (data, bytes(base[: cut + 8]), bytes(base)):
        path = folder / "x.png"
        path.write_bytes(candidate)
        try:
            image = load_image(path)
        except ImageLoadError as error:
            assert "x.png" in str(error)
        else:
            assert image.ndim == 3 and image.shape[2] == 3


def Image_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()
