"""Whether the eyelids and the lips survive: the final surface's relief finer than a blur, against the truth's.

The coarse head predicts at 1/4 resolution and its map is upsampled and smoothed, so relief as narrow as an eyelid's
edge or a lip's contour survives in the final surface (coarse + detail, as the predictor returns them) only where
something else carries it: since stage 13 the detail, decided at 256x256, holds the relief finer than its band
(NetworkConfig.detail_band_px; docs/representation.md). On synthetic evaluation faces (render seed 2, held-out
skins) it takes the relief finer than a Gaussian of sigma --band px (the depth less its blur within the face, as
facerecon.data.relief splits the labels, steps left out) of the true depth and of the predicted one, and prints per
model the mean per-face correlation and least-squares gain of the predicted against the true (1 = as deep as the
truth) around the eyes (within 20 px of each eye's landmark), around the mouth (within 12 px of the segment between
its corners) and over the face less a 6-px rim.
Two ceilings go first, what a perfect coarse head would give at its 1/4 resolution (the true coarse map area-averaged
to 1/4, upsampled bilinearly and smoothed as the predictor smooths it, plus the true detail): with the labels split
at the band (since stage 13; a learned upsampling of the coarse map could gain at most the gap between this row and
1), and with stage 12's labels (the detail the wrinkles alone, the coarse map all the rest).

    python benchmarks/fine_relief.py --models /tmp/stage12 facerecon/weights [--count 60] [--band 2]
                                     [--textures ~/.cache/facerecon/skin_frll_heldout.npz]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facerecon.data.relief import split_relief  # noqa: E402
from facerecon.data.synth.engine import sample_seed  # noqa: E402
from facerecon.data.synth.face_model import default_data_dir  # noqa: E402
from facerecon.predictor import COARSE_SMOOTHING_PX, FaceReconstructor  # noqa: E402
from facerecon.training.evaluate import SYNTH_VAL_SEED, evaluation_renderer  # noqa: E402

EYE_RADIUS_PX, MOUTH_RADIUS_PX = 20, 12


def regions(sample) -> dict[str, np.ndarray]:
    """S x S bool masks of the face less its rim, the eyes and the mouth (from the true 5 landmarks)."""
    inside = cv2.erode(sample.mask.astype(np.uint8), np.ones((13, 13), np.uint8)) > 0
    s = sample.mask.shape[0]
    yy, xx = np.mgrid[:s, :s]
    points = np.stack([xx, yy], -1).astype(np.float32)
    eyes = np.zeros((s, s), bool)
    for eye in sample.landmarks5[:2]:
        eyes |= np.linalg.norm(points - eye, axis=-1) < EYE_RADIUS_PX
    a, b = sample.landmarks5[3], sample.landmarks5[4]
    t = np.clip(((points - a) @ (b - a)) / max(float((b - a) @ (b - a)), 1e-6), 0, 1)
    mouth = np.linalg.norm(points - (a + t[..., None] * (b - a)), axis=-1) < MOUTH_RADIUS_PX
    return {"eyes": inside & eyes, "mouth": inside & mouth, "face": inside}


def split(depth: np.ndarray, sample, band_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(depth blurred by band_px, the relief finer than that, where it is defined): split_relief on depth as the
    whole label."""
    return split_relief(depth.astype(np.float32), np.zeros_like(depth, np.float32), sample.valid_coarse,
                        sample.valid_coarse, band_px)


def through_quarter(coarse: np.ndarray) -> np.ndarray:
    """A coarse map (S x S) as the coarse head can give it: area-averaged to S/4, upsampled bilinearly, smoothed."""
    s = coarse.shape[0]
    small = cv2.resize(coarse, (s // 4, s // 4), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR), (0, 0), COARSE_SMOOTHING_PX)


def scores(truth: np.ndarray, valid: np.ndarray, depth: np.ndarray, sample, places: dict[str, np.ndarray],
           band_px: float, stats: dict[str, list[tuple[float, float]]]) -> None:
    """Appends to stats, per region of places (regions), the r and gain of depth's fine relief against truth's
    (where valid)."""
    pred = split(depth, sample, band_px)[1]
    for name, where in places.items():
        where = where & valid
        if where.sum() >= 50:
            t, p = truth[where], pred[where]
            stats[name].append((float(np.corrcoef(t, p)[0, 1]), float(t @ p / max(float(t @ t), 1e-9))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["facerecon/weights"])
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--band", type=float, default=2.0, help="sigma of the blur, crop px")
    parser.add_argument("--textures", type=Path, default=Path.home() / ".cache/facerecon/skin_frll_heldout.npz")
    args = parser.parse_args()
    data = default_data_dir()
    print(f"relief finer than sigma {args.band:g} px, {args.count} synthetic evaluation faces: mean per-face r; "
          "gain (least squares, 1 = as deep as the truth)")
    print("| surface | eyes | mouth | face less its rim |\n|---|---|---|---|")

    def row(label: str, stats: dict[str, list[tuple[float, float]]]) -> None:
        cells = [f"{np.mean([r for r, _ in v]):.3f}; {np.mean([g for _, g in v]):.2f}" for v in stats.values()]
        print(f"| {label} | {' | '.join(cells)} |", flush=True)

    as_split, unsplit = ({"eyes": [], "mouth": [], "face": []} for _ in range(2))
    for model in args.models:
        rec = FaceReconstructor.from_pretrained(model, backend="torch")
        renderer = evaluation_renderer(data, args.textures if args.textures.exists() else None, rec.framing)
        stats: dict[str, list[tuple[float, float]]] = {"eyes": [], "mouth": [], "face": []}
        for i in range(args.count):
            s = renderer.render(sample_seed(SYNTH_VAL_SEED, i))
            wrinkles = np.where(s.valid_detail, s.detail, 0)
            smooth, truth, valid = split(s.coarse + wrinkles, s, args.band)
            places = regions(s)
            if model == args.models[0]:  # the ceilings, once (on the first model's framing)
                ceiling = through_quarter(smooth) + (s.coarse + wrinkles - smooth)
                scores(truth, valid, ceiling, s, places, args.band, as_split)
                scores(truth, valid, through_quarter(s.coarse) + wrinkles, s, places, args.band, unsplit)
            _, coarse, detail = rec.predict(s.image[None])
            scores(truth, valid, coarse[0] + detail[0], s, places, args.band, stats)
        if model == args.models[0]:
            row(f"ceiling: true coarse at 1/4 + true detail, split at {args.band:g} px", as_split)
            row("ceiling: the same with stage 12's labels (wrinkles alone in the detail)", unsplit)
        row(model, stats)


if __name__ == "__main__":
    main()
