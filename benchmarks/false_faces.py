"""False faces and missed faces: how many of a generated set of images without a face (noise, smooth blobs,
stripes, checkerboards, random shapes) the detector takes for a face, how many drawn smileys it finds (a face
drawing: reported, not counted as false), and how many real portraits of the data it finds.

    python benchmarks/false_faces.py [--per-kind 20] [--portraits heldout|all]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NON_FACE_KINDS = ("uniform noise", "gaussian noise", "smooth blobs", "stripes", "checkerboard", "shapes")


def non_face_image(kind: str, rng: np.random.Generator, size: tuple[int, int] = (480, 640)) -> np.ndarray:
    """One H x W x 3 uint8 image of `kind` (NON_FACE_KINDS, or "smiley": a drawn face)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "uniform noise":
        return (rng.random((h, w, 3)) * 255).astype(np.uint8)
    if kind == "gaussian noise":
        return np.clip(rng.normal(128, 50, (h, w, 3)), 0, 255).astype(np.uint8)
    if kind == "smooth blobs":
        blobs = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), rng.uniform(3, 20))
        return cv2.normalize(blobs, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if kind == "stripes":
        wave = np.sin(xx * rng.uniform(0.02, 0.2) + yy * rng.uniform(-0.1, 0.1))
        return np.repeat(((wave + 1) * 127).astype(np.uint8)[..., None], 3, 2)
    if kind == "checkerboard":
        c = int(rng.integers(8, 64))
        return np.repeat((((xx // c + yy // c) % 2) * 255).astype(np.uint8)[..., None], 3, 2)
    img = np.full((h, w, 3), 255, np.uint8)
    if kind == "shapes":
        img[:] = rng.integers(0, 255, 3)
        for _ in range(12):
            cv2.ellipse(img, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                        (int(rng.integers(10, 120)), int(rng.integers(10, 120))), float(rng.uniform(0, 180)), 0, 360,
                        tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        return img
    if kind == "smiley":
        cx, cy, r = w // 2 + int(rng.integers(-100, 100)), h // 2, int(rng.integers(80, 180))
        cv2.circle(img, (cx, cy), r, (0, 0, 0), 3)
        for dx in (-r // 3, r // 3):
            cv2.circle(img, (cx + dx, cy - r // 4), r // 10, (0, 0, 0), -1)
        cv2.ellipse(img, (cx, cy + r // 6), (r // 2, r // 3), 0, 20, 160, (0, 0, 0), 3)
        return img
    raise ValueError(f"unknown kind {kind!r}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--per-kind", type=int, default=20)
    p.add_argument("--portraits", choices=["heldout", "all"], default="all")
    args = p.parse_args()
    from facerecon.data.splits import photo_files
    from facerecon.data.synth.face_model import default_data_dir
    from facerecon.preprocess.detect import FaceDetector
    from facerecon.preprocess.image_io import load_image

    detector = FaceDetector()
    rng = np.random.default_rng(0)
    print("| images | count | taken for a face |\n|---|---|---|")
    false = 0
    for kind in (*NON_FACE_KINDS, "smiley"):
        found = sum(bool(detector.detect(non_face_image(kind, rng))) for _ in range(args.per_kind))
        false += found if kind != "smiley" else 0
        print(f"| {kind} | {args.per_kind} | {found} |")
    n = args.per_kind * len(NON_FACE_KINDS)
    data = default_data_dir()
    photos = photo_files([data / "congress", data / "frll" / "neutral_front", data / "frll" / "smiling_front"],
                         args.portraits)
    found = sum(bool(detector.detect(load_image(path))) for path in photos)
    print(f"\nfalse faces: {false} of {n} images without a face ({false / n:.1%}); real portraits ({args.portraits}): "
          f"{found} of {len(photos)} found")


if __name__ == "__main__":
    main()
