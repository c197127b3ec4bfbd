"""`--save-scores` files are compressed, and `--scores-dtype float16` stores the same tensors at half precision."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from fcn_viewer.cli.main import main
from tests.helpers import gradient_image


def test_score_files_are_compressed_and_float16_is_smaller_and_close(tmp_path: Path, tiny_weights: Path) -> None:
    photo = tmp_path / "a.png"
    Image.fromarray(gradient_image(72, 96)).save(photo)
    files = {}
    for dtype in ("float32", "float16"):
        out = tmp_path / dtype
        argv = ["segment", str(photo), "--weights", str(tiny_weights), "--out", str(out), "--save-scores",
                "--scores-dtype", dtype]
        assert main(argv) == 0
        files[dtype] = out / "a.npz"
        with zipfile.ZipFile(files[dtype]) as archive:
            assert {member.compress_type for member in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    with np.load(files["float32"]) as exact, np.load(files["float16"]) as half:
        assert exact.files == half.files
        assert exact["logits_8s"].dtype == np.float32 and half["logits_8s"].dtype == np.float16
        for name in exact.files:
            if exact[name].dtype.kind == "f":
                np.testing.assert_allclose(half[name], exact[name], rtol=2e-3, atol=2e-3)
        assert json.loads(str(half["info_json"]))["dtype"] == "float16"
    raw_float32 = sum(array.nbytes for array in np.load(files["float32"]).values())
    assert files["float32"].stat().st_size < raw_float32  # not stored uncompressed
    assert files["float16"].stat().st_size < 0.6 * files["float32"].stat().st_size
