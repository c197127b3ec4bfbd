"""Picks the bundled sample photos from CamVid val by how typical their scenes are, before any model sees them.

    python resources/pick_samples.py --data ../shared/data/camvid [--count 3] [--apart 10]

A frame is typical when the share of each class among its labelled pixels is close to the share over the
whole val split (Jensen–Shannon divergence). Frames are taken best first, at least ``--apart`` frame
numbers from any already taken, so the samples come from different stretches of the drive.
The choice reads labels only: it is made without the model, so it cannot favour the model's lesson.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

NUM_CLASSES = 11


def class_shares(label: np.ndarray) -> np.ndarray:
    counts = np.bincount(label[label < NUM_CLASSES].ravel(), minlength=NUM_CLASSES).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        keep = a > 0
        return float(np.sum(a[keep] * np.log2(a[keep] / m[keep])))

    return (kl(p) + kl(q)) / 2


def frame_number(stem: str) -> int:
    """0016E5_08059 → 8059: the frame's place in its video."""
    return int(stem.rsplit("_", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--apart", type=int, default=30, help="frame numbers between any two picks (30 = 1 s of video)")
    args = parser.parse_args()
    stems = (args.data / "val.txt").read_text().split()
    shares = {stem: class_shares(np.asarray(Image.open(args.data / "valannot" / f"{stem}.png"))) for stem in stems}
    mean = np.mean(list(shares.values()), axis=0)
    ranked = sorted(stems, key=lambda s: jensen_shannon(shares[s], mean))
    picked: list[str] = []
    for stem in ranked:
        if all(abs(frame_number(stem) - frame_number(p)) >= args.apart for p in picked):
            picked.append(stem)
        if len(picked) == args.count:
            break
    for rank, stem in enumerate(picked, start=1):
        print(f"{rank}. {stem}  JS divergence to the val class shares {jensen_shannon(shares[stem], mean):.4f}")


if __name__ == "__main__":
    main()
