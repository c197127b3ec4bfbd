"""Makes the README's screenshots from the app itself: the window (`fcn-viewer gui --screenshot`) on the first
bundled sample photo — Stages, Step-Through, Compare, Ground Truth, the Lessons tab on each lesson, the presenter's
slide at 1920×1080 — its slide figure (`fcn-viewer figure`), step slide 4 (`fcn-viewer figure --steps`) and the three
lesson slides (`fcn-viewer figure --lesson`), each reduced to a 256-colour PNG under 300 KB.

    python docs/make_screenshots.py [--out docs/images]

(from the repository root, with the project installed or PYTHONPATH=.). Renders offscreen unless
QT_QPA_PLATFORM says otherwise, with the bundled camvid-fcn8s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from fcn_viewer.resources import sample_images

MAX_BYTES = 300_000
WINDOW = "1280x800"
STEP = 4  # the pool4 scores that the fusion adds to the upsampled conv7 scores
LESSONS = ("classifier", "commute", "upsampling")  # `figure --lesson` slides
SHOTS: dict[str, list[str]] = {
    "stages.png": ["gui", "--tab", "stages"],
    "step-through.png": ["gui", "--teach-step", str(STEP)],
    "compare.png": ["gui", "--tab", "compare"],
    "ground-truth.png": ["gui", "--tab", "truth"],
    "presenter.png": ["gui", "--tab", "present", "--teach-step", str(STEP)],
    **{f"lessons-tab-{name}.png": ["gui", "--tab", "lessons", "--lesson", name] for name in LESSONS},
}
SIZES = {"presenter.png": "1920x1080"}  # a projector's; the others WINDOW


def fcn_viewer(*args: str) -> None:
    env = {"QT_QPA_PLATFORM": "offscreen", **os.environ}
    subprocess.run([sys.executable, "-m", "fcn_viewer", *args], check=True, env=env)


def shrink(path: Path) -> int:
    """Rewrites ``path`` as an adaptive 256-colour PNG; its size in bytes."""
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    photo = sample_images()[0]
    for name, args in SHOTS.items():
        fcn_viewer(*args, str(photo), "--screenshot", str(out / name), "--size", SIZES.get(name, WINDOW))
    fcn_viewer("figure", str(photo), "--out", str(out / "slide.png"), "--overwrite")
    with tempfile.TemporaryDirectory() as folder:
        fcn_viewer("figure", str(photo), "--steps", "--out", folder)
        shutil.copyfile(Path(folder) / f"step-{STEP:02d}.png", out / "step-slide.png")
    for lesson in LESSONS:
        fcn_viewer("figure", str(photo), "--lesson", lesson, "--out", str(out / f"lesson-{lesson}.png"), "--overwrite")
    for path in sorted(out.glob("*.png")):
        size = shrink(path)
        print(f"{path}: {size / 1000:.0f} KB")
        if size >= MAX_BYTES:
            raise SystemExit(f"{path} is {size} bytes, over the {MAX_BYTES} byte budget")


if __name__ == "__main__":
    main()
