"""Line structure on the forehead and across the nasolabial folds: rendered training faces against real portraits.

A fixed box of the aligned 256x256 crop, between the eyes' x and 30-56 px above them (the brows are ~26 px above
the eyes), on rows and columns that the face mask (eroded 2 px) covers. Its luminance is averaged along x (what is
left are horizontal lines, the way forehead creases run) and along y (vertical lines), each profile high-passed
(minus its Gaussian blur of sigma 3 px), and the profile's standard deviation is reported in percent of the box's
mean luminance. On skin without lines both come out alike; horizontal above vertical is horizontal structure: creases,
or an artefact that runs across the forehead. The shape of the horizontal lines: the skewness of that profile
(photographed creases are narrow dark lines, occlusion and shadow: negative; a Lambertian groove lit from above is a
bright-dark pair: near 0), and its deepest line: how dark, and the side 2 px below it minus the side 2 px above
(a groove lit from above: bright below, dark above), over the faces whose horizontal contrast is in the top third.

The nasolabial folds: where the crop template puts them (from beside the nose wing, (105, 142), down to beside the
mouth corner, (92, 172), and mirrored), the luminance across each fold, -8 to +8 px, averaged along its middle 70%,
both folds together, high-passed at 3 px: the darkest point within 4 px of the template's line, how deep (% of the
luminance there), and the cheek side 2 px from it minus the nose side.

    python benchmarks/forehead_lines.py [--real ~/.cache/facerecon/data/real_v5] [--count 400]
                                        [--textures ~/.cache/facerecon/skin_frll.npz]
Real: the pseudo-labelled crops (`python -m facerecon pseudo-label`); renders: the current engine, render seed 3
(a seed no data set uses), the given skin textures, all of them and the near-frontal ones (yaw and pitch within
FRONTAL degrees, as the portraits are).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facerecon.data.shards import list_shards  # noqa: E402
from facerecon.data.synth.engine import sample_seed  # noqa: E402
from facerecon.surface.raster import sample_bilinear  # noqa: E402
from facerecon.training.evaluate import evaluation_renderer  # noqa: E402

ROWS, COLS = slice(44, 70), slice(104, 152)  # crop pixels: eyes at rows ~100, x 95 and 159
RENDER_SEED = 3
FRONTAL = 15.0  # degrees of yaw and pitch at most: the renders compared like for like with the portraits


def line_contrast(image: np.ndarray, mask: np.ndarray) -> tuple[float, ...] | None:
    """(horizontal, vertical) line contrast in % in the forehead box, the horizontal profile's skewness, and its
    deepest line's depth and side difference (% of the box's luminance); None where the mask leaves too little."""
    lum = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)[ROWS, COLS]
    inside = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)[ROWS, COLS]
    rows = inside.mean(1) > 0.9
    cols = inside[rows].all(0)
    if rows.sum() < 16 or cols.sum() < 24:
        return None
    box = lum[rows][:, cols]

    def high_passed(profile: np.ndarray) -> np.ndarray:
        p = profile.astype(np.float32)[:, None]
        return (p - cv2.GaussianBlur(p, (0, 0), 3, borderType=cv2.BORDER_REFLECT))[:, 0]

    mean = float(box.mean())
    across, along = high_passed(box.mean(1)), high_passed(box.mean(0))
    skew = float((across ** 3).mean() / max(float((across ** 2).mean()) ** 1.5, 1e-12))
    # the deepest line: how dark its middle is, and how unlike its two sides (a groove lit from one side is a dark
    # and a bright band; a crease darkened by occlusion is dark between alike sides)
    i = int(np.argmin(across[2:-2])) + 2
    trough = -100 * float(across[i]) / mean
    sides = 100 * float(across[i + 2] - across[i - 2]) / mean
    return 100 * float(across.std()) / mean, 100 * float(along.std()) / mean, skew, trough, sides


FOLD = np.array([[105.0, 142.0], [92.0, 172.0]])  # the left nasolabial fold in the crop template (top, bottom)


def fold_profile(image: np.ndarray, mask: np.ndarray) -> tuple[float, float] | None:
    """(valley depth, cheek side minus nose side) in % across the nasolabial folds; None where the mask does not
    cover them."""
    lum = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    inside = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    along = (FOLD[1] - FOLD[0]) / np.linalg.norm(FOLD[1] - FOLD[0])
    cheek = np.array([-along[1], along[0]])  # across the left fold, away from the nose
    offsets = np.arange(-8, 9, dtype=np.float64)
    profiles = []
    for mirror in (False, True):
        line = FOLD[0] + np.linspace(0.15, 0.85, 12)[:, None] * (FOLD[1] - FOLD[0])
        points = line[:, None, :] + offsets[None, :, None] * cheek  # 12 x 17 x 2
        if mirror:
            points[..., 0] = image.shape[1] - 1 - points[..., 0]
        xy = points.reshape(-1, 2)
        if not inside[np.round(xy[:, 1]).astype(int), np.round(xy[:, 0]).astype(int)].all():
            continue
        profiles.append(sample_bilinear(lum, xy).reshape(points.shape[:2]).mean(0))
    if not profiles:
        return None
    profile = np.mean(profiles, axis=0).astype(np.float32)[:, None]
    high = (profile - cv2.GaussianBlur(profile, (0, 0), 3, borderType=cv2.BORDER_REFLECT))[:, 0]
    mean = float(profile.mean())
    i = int(np.argmin(high[4:-4])) + 4
    return -100 * float(high[i]) / mean, 100 * float(high[i + 2] - high[i - 2]) / mean


def report_folds(name: str, values: list[tuple[float, float]]) -> None:
    a = np.array(values)
    print(f"{name:>8} ({len(a)} faces): nasolabial valley median {np.median(a[:, 0]):.2f} % deep (q90 "
          f"{np.percentile(a[:, 0], 90):.2f}), cheek side minus nose side {np.median(a[:, 1]):+.2f} % (|.| "
          f"{np.median(np.abs(a[:, 1])):.2f})")


def report(name: str, values: list[tuple[float, float]]) -> None:
    a = np.array(values)
    q = lambda k, p: np.percentile(a[:, k], p)  # noqa: E731
    lined = a[a[:, 0] >= np.percentile(a[:, 0], 100 * 2 / 3)]
    print(f"{name:>8} ({len(a)} faces): horizontal median {q(0, 50):.2f} % (q90 {q(0, 90):.2f}), vertical median "
          f"{q(1, 50):.2f} % (q90 {q(1, 90):.2f}); horizontal above vertical by {np.median(a[:, 0] - a[:, 1]):+.2f}; "
          f"skewness of the lined third {np.median(lined[:, 2]):+.2f} (q10 {np.percentile(lined[:, 2], 10):+.2f}), "
          f"its deepest line {np.median(lined[:, 3]):.2f} % deep, the side below minus the side above "
          f"{np.median(lined[:, 4]):+.2f} % (|.| {np.median(np.abs(lined[:, 4])):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=Path.home() / ".cache/facerecon/data/real_v5")
    parser.add_argument("--count", type=int, default=400, help="renders")
    parser.add_argument("--textures", type=Path, default=Path.home() / ".cache/facerecon/skin_frll.npz")
    args = parser.parse_args()

    crops = []
    for shard in list_shards(args.real):
        with np.load(shard) as z:
            crops += list(zip(z["image"], z["mask"] == 1))
    if not crops:
        raise SystemExit(f"no pseudo-labelled crops in {args.real}: run `python -m facerecon pseudo-label` first")
    renderer = evaluation_renderer(textures=args.textures)
    samples = [renderer.render(sample_seed(RENDER_SEED, i)) for i in range(args.count)]
    renders = [(s.image, s.mask) for s in samples]
    # the portraits face the camera; the renders turn up to 70 degrees, which moves the template's boxes off the
    # features they are meant for: the near-frontal renders are the like-for-like comparison
    frontal = [(s.image, s.mask) for s in samples
               if max(abs(s.params["yaw"]), abs(s.params["pitch"])) <= FRONTAL]
    sets = (("real", crops), ("renders", renders), ("frontal", frontal))
    for name, pairs in sets:
        report(name, [c for img, m in pairs if (c := line_contrast(img, m))])
    for name, pairs in sets:
        report_folds(name, [c for img, m in pairs if (c := fold_profile(img, m))])


if __name__ == "__main__":
    main()
