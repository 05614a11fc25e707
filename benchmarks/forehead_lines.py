"""Line structure on the forehead: rendered training faces against real portraits.

A fixed box of the aligned 256x256 crop, between the eyes' x and 30-56 px above them (the brows are ~26 px above
the eyes), on rows and columns that the face mask (eroded 2 px) covers. Its luminance is averaged along x (what is
left are horizontal lines, the way forehead creases run) and along y (vertical lines), each profile high-passed
(minus its Gaussian blur of sigma 3 px), and the profile's standard deviation is reported in percent of the box's
mean luminance. On skin without lines both come out alike; horizontal above vertical is horizontal structure: creases,
or an artefact that runs across the forehead. The shape of the horizontal lines: the skewness of that profile
(photographed creases are narrow dark lines, occlusion and shadow: negative; a Lambertian groove lit from above is a
bright-dark pair: near 0), and its deepest line: how dark, and the side 2 px below it minus the side 2 px above
(a groove lit from above: bright below, dark above), over the faces whose horizontal contrast is in the top third.

    python benchmarks/forehead_lines.py [--real ~/.cache/facerecon/data/real_v5] [--count 200]
                                        [--textures ~/.cache/facerecon/skin_frll.npz]
Real: the pseudo-labelled crops (`python -m facerecon pseudo-label`); renders: the current engine, render seed 3
(a seed no data set uses), the given skin textures.
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
from facerecon.training.evaluate import evaluation_renderer  # noqa: E402

ROWS, COLS = slice(44, 70), slice(104, 152)  # crop pixels: eyes at rows ~100, x 95 and 159
RENDER_SEED = 3


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
    parser.add_argument("--count", type=int, default=200, help="renders")
    parser.add_argument("--textures", type=Path, default=Path.home() / ".cache/facerecon/skin_frll.npz")
    args = parser.parse_args()

    real = []
    for shard in list_shards(args.real):
        with np.load(shard) as z:
            real += [c for img, m in zip(z["image"], z["mask"] == 1) if (c := line_contrast(img, m))]
    if not real:
        raise SystemExit(f"no pseudo-labelled crops in {args.real}: run `python -m facerecon pseudo-label` first")
    renderer = evaluation_renderer(textures=args.textures)
    renders = [c for i in range(args.count)
               if (c := line_contrast((s := renderer.render(sample_seed(RENDER_SEED, i))).image, s.mask))]
    report("real", real)
    report("renders", renders)


if __name__ == "__main__":
    main()
