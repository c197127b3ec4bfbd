"""`fcn-viewer segment`: indexed masks, overlays, every stage tensor, and going on past bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcn_viewer.classes import CAMVID_PALETTE
from fcn_viewer.cli.main import main
from tests.helpers import CAMVID, gradient_image, requires_camvid

STAGE_TENSORS = {"score_fr", "upscore2", "upscore2c", "score_pool4", "fuse_pool4", "upscore_pool4",
                 "upscore_pool4c", "score_pool3", "fuse_pool3", "upscore8", "logits_32s", "logits_16s", "logits_8s"}


def _check_outputs(out: Path, stem: str, size: tuple[int, int]) -> dict[str, np.ndarray]:
    height, width = size
    mask = Image.open(out / f"{stem}_mask.png")
    assert mask.mode == "P" and mask.size == (width, height)
    assert tuple(mask.getpalette()[:6]) == (*CAMVID_PALETTE[0], *CAMVID_PALETTE[1])
    assert np.asarray(mask).max() < 11
    overlay = Image.open(out / f"{stem}_overlay.png")
    assert overlay.mode == "RGB" and overlay.size == (width, height)
    with np.load(out / f"{stem}.npz") as scores:
        arrays = {k: scores[k] for k in scores.files}
    assert STAGE_TENSORS <= set(arrays)
    for stage, _stride in (("32s", 32), ("16s", 16), ("8s", 8)):
        assert arrays[f"logits_{stage}"].shape == (11, height, width)
        assert arrays[f"logits_{stage}"].dtype == np.float32
    assert arrays["score_fr"].shape == (11, -(-height // 32), -(-width // 32))
    assert arrays["fuse_pool3"].shape == (11, -(-height // 8), -(-width // 8))
    np.testing.assert_array_equal(np.asarray(mask), arrays["logits_8s"].argmax(0))
    info = json.loads(str(arrays["info_json"]))
    assert info["stages"] == ["32s", "16s", "8s"]
    assert list(arrays["classes"])[0] == "Sky"
    return arrays


def test_segment_writes_mask_overlay_and_all_stage_tensors(tmp_path: Path, tiny_weights: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(gradient_image(45, 61)).save(images / "a.png")
    Image.fromarray(gradient_image(64, 64, seed=1)).convert("L").save(images / "b.jpg")
    out = tmp_path / "out"
    code = main(["segment", str(images), "--weights", str(tiny_weights), "--out", str(out), "--save-scores"])
    assert code == 0
    _check_outputs(out, "a", (45, 61))
    _check_outputs(out, "b", (64, 64))


def test_segment_reports_a_bad_file_and_goes_on(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.png"
    bad.write_text("not an image")
    good = tmp_path / "good.png"
    Image.fromarray(gradient_image(20, 30)).save(good)
    code = main(["segment", str(bad), str(good), "--weights", str(tiny_weights), "--out", str(tmp_path / "o")])
    assert code == 1
    assert "broken.png: not an image" in capsys.readouterr().err
    assert (tmp_path / "o" / "good_mask.png").is_file()
    assert not (tmp_path / "o" / "broken_mask.png").exists()


def test_missing_weights_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["segment", str(tmp_path), "--weights", str(tmp_path / "none.pth"), "--out", str(tmp_path)])
    assert code == 1
    assert "none.pth" in capsys.readouterr().err


@requires_camvid()
def test_segment_a_real_camvid_photo(tmp_path: Path, tiny_weights: Path) -> None:
    photo = sorted((CAMVID / "val").glob("*"))[0]
    out = tmp_path / "out"
    assert main(["segment", str(photo), "--weights", str(tiny_weights), "--out", str(out), "--save-scores"]) == 0
    _check_outputs(out, photo.stem, (360, 480))


def test_segment_survives_the_bad_image_corpus(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.bad_images import write_corpus

    outcomes = write_corpus(tmp_path / "corpus")
    files = [str(tmp_path / "corpus" / name) for name in outcomes]
    code = main(["segment", *files, "--weights", str(tiny_weights), "--out", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    for name, outcome in outcomes.items():
        stem = Path(name).stem
        if outcome == "ok":
            assert (tmp_path / "out" / f"{stem}_mask.png").is_file(), name
        else:
            assert f"{name}:" in err, name
            assert not (tmp_path / "out" / f"{stem}_mask.png").exists()
    assert f"{sum(o == 'error' for o in outcomes.values())} of {len(outcomes)} image(s) failed" in err


def test_existing_outputs_are_kept_unless_overwrite(tmp_path: Path, tiny_weights: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "photo.png"
    Image.fromarray(gradient_image(20, 30)).save(image)
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo_mask.png").write_bytes(b"the user's own file")
    assert main(["segment", str(image), "--weights", str(tiny_weights), "--out", str(out)]) == 1
    assert "photo_mask.png: already exists; pass --overwrite" in capsys.readouterr().err
    assert (out / "photo_mask.png").read_bytes() == b"the user's own file"
    assert main(["segment", str(image), "--weights", str(tiny_weights), "--out", str(out), "--overwrite"]) == 0
    assert Image.open(out / "photo_mask.png").mode == "P"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
