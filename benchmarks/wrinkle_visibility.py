"""How visible the labelled wrinkles are in the rendered photos, and whether the detail correlation follows it.

Each synthetic evaluation face (render seed 2) is rendered three times from the same seed: as it is, with the
wrinkles taken out of the relief that shades it, and with no relief at all (the label is the same each time; the
camera noise and JPEG draws too). The first difference is the wrinkles' own shading, the second the unlabelled pores'
and micro-relief's. On each face's deepest wrinkle pixels (|label| above half its maximum) it reports the mean
absolute wrinkle shading in grey levels (0-255, luminance) beside the pores' there, and the shipped per-face detail
correlation, by quarter of the wrinkle shading and as rank correlations.

    python benchmarks/wrinkle_visibility.py [--model weights] [--count 120]
                                            [--textures ~/.cache/facerecon/skin_frll_heldout.npz]
"""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import facerecon.data.synth.render as render  # noqa: E402
from facerecon.data.synth.engine import sample_seed  # noqa: E402
from facerecon.data.synth.face_model import default_data_dir  # noqa: E402
from facerecon.predictor import FaceReconstructor  # noqa: E402
from facerecon.training.evaluate import SYNTH_VAL_SEED, evaluation_renderer  # noqa: E402


@contextmanager
def shading_relief(keep: str):
    """Renders inside use as shading relief "all" (as trained), "pores" (the wrinkles removed) or "none". The
    engine has no switch for this (nothing but this measurement needs one), so its displacement_map is wrapped;
    the wrapper draws the same random numbers, so the rest of the face is unchanged."""
    original = render.displacement_map

    def wrapped(rng: np.random.Generator, footprint: float):
        relief, wrinkles, params = original(rng, footprint)
        relief = {"all": relief, "pores": relief - wrinkles, "none": np.zeros_like(relief)}[keep]
        return relief, wrinkles, params

    render.displacement_map = wrapped
    try:
        yield
    finally:
        render.displacement_map = original


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho without ties (scipy is not a dependency): Pearson r of the ranks."""
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="facerecon/weights")
    parser.add_argument("--count", type=int, default=120)
    parser.add_argument("--textures", type=Path, default=Path.home() / ".cache/facerecon/skin_frll_heldout.npz")
    args = parser.parse_args()
    data = default_data_dir()
    rec = FaceReconstructor.from_pretrained(args.model)  # the defaults: flip averaging, as `evaluate` reports
    renderer = evaluation_renderer(data, args.textures if args.textures.exists() else None, rec.framing)
    r, wrinkle_grey, pore_grey, label_std = [], [], [], []
    for i in range(args.count):
        seed = sample_seed(SYNTH_VAL_SEED, i)
        grey = {}
        for keep in ("all", "pores", "none"):
            with shading_relief(keep):
                sample = renderer.render(seed)
            grey[keep] = sample.image.astype(np.float32).mean(-1)
            if keep == "all":
                face = sample
        mask, _, detail = (a[0] for a in rec.predict(face.image[None]))
        where = face.valid_detail & (mask > 0.5)
        label = face.detail[where]
        if where.sum() < 100 or label.std() == 0:
            continue
        deepest = np.abs(label) > 0.5 * np.abs(label).max()
        r.append(np.corrcoef(detail[where], label)[0, 1])
        wrinkle_grey.append(np.abs((grey["all"] - grey["pores"])[where][deepest]).mean())
        pore_grey.append(np.abs((grey["pores"] - grey["none"])[where][deepest]).mean())
        label_std.append(label.std())
    r, wrinkle_grey, pore_grey, label_std = map(np.array, (r, wrinkle_grey, pore_grey, label_std))
    print(f"{args.model}: {len(r)} synthetic evaluation faces, flip averaged; mean detail r {r.mean():.3f}")
    print(f"on the deepest wrinkle pixels: wrinkle shading {np.median(wrinkle_grey):.2f} grey levels (median over "
          f"faces; quartiles {np.round(np.quantile(wrinkle_grey, [0.25, 0.75]), 2).tolist()}), the pores' there "
          f"{np.median(pore_grey):.2f}; wrinkles shade less than the pores on {np.mean(wrinkle_grey < pore_grey):.0%}")
    edges = np.quantile(wrinkle_grey, [0.25, 0.5, 0.75])
    quarter = np.digitize(wrinkle_grey, edges)
    print("| quarter of faces by wrinkle shading | grey levels | detail r |\n|---|---|---|")
    for k in range(4):
        q = quarter == k
        print(f"| {k + 1} | {wrinkle_grey[q].min():.2f}-{wrinkle_grey[q].max():.2f} | {r[q].mean():.3f} |")
    print(f"rank correlation of the detail r with the wrinkle shading {rank_correlation(r, wrinkle_grey):.2f}, "
          f"with the label's amplitude {rank_correlation(r, label_std):.2f}")


if __name__ == "__main__":
    main()
