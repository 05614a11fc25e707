"""Where the synthetic mask IoU could still come from, and whether two models' IoUs differ beyond the faces drawn.

On rendered faces (render seed --seed: 2 is evaluate's set, 9 the selection set), framed as the model's crops and
flip-averaged as the predictor runs, it prints the pooled mask IoU that evaluate reports and three readings of it:
- the threshold: the IoU with the mask's logits shifted by a bias (0 = the probability 0.5 that every consumer of
  the mask uses), so a miscalibrated head would show its best bias away from 0;
- the resolution: the mask head predicts at 1/8 of the crop and its logits are upsampled bilinearly, so the true
  mask averaged into those 32x32 cells and upsampled alike (as a probability, and as its logit, clipped to
  0.02-0.98) is the best IoU such a map could give;
- the edges: the predictor's mask, its outline guided by the crop (facerecon.predictor.guided_mask), against the
  network's as upsampled (the bias table);
- with --against another model: both on the same faces, and a bootstrap over the faces (paired, 2,000 resamples)
  of the difference of the pooled IoUs, against the faces this set happened to draw: the masks as upsampled, as
  guided, and --against's guided mask against --model's as upsampled (a model shipped before the guide).

    python benchmarks/mask_headroom.py [--model weights] [--against weights] [--seed 2] [--count 300]
                                       [--textures ~/.cache/facerecon/skin_frll_heldout.npz]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facerecon.data.synth.engine import sample_seed  # noqa: E402
from facerecon.predictor import FaceReconstructor, guided_mask  # noqa: E402
from facerecon.training.evaluate import SYNTH_VAL_SEED, evaluation_renderer  # noqa: E402

BIASES = np.round(np.arange(-0.5, 0.51, 0.1), 2) + 0.0  # + 0.0: no "-0.0"
HEAD_CELLS = 32  # the mask head's map: 1/8 of the 256-px crop


def counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    return int((pred & truth).sum()), int((pred | truth).sum())


def cell_limited(truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The true mask (S x S bool) averaged into HEAD_CELLS^2 cells and upsampled bilinearly as the head's logits
    are: thresholded as a probability at 0.5, and as a logit (clipped to 0.02-0.98) at 0."""
    cells = F.adaptive_avg_pool2d(torch.from_numpy(truth.astype(np.float32))[None, None], HEAD_CELLS)
    up = [F.interpolate(m, size=truth.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
          for m in (cells, torch.logit(cells.clamp(0.02, 0.98)))]
    return up[0] > 0.5, up[1] > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="facerecon/weights")
    parser.add_argument("--against", help="a second model folder, compared on the same faces")
    parser.add_argument("--seed", type=int, default=SYNTH_VAL_SEED)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--textures", type=Path, default=Path.home() / ".cache/facerecon/skin_frll_heldout.npz")
    args = parser.parse_args()
    if args.against == args.model:
        parser.error("--against: another model than --model")
    models = [args.model] + ([args.against] if args.against else [])
    textures = args.textures if args.textures.exists() else None
    tallies = {}  # reading -> per face (intersection, union)
    for model in models:
        rec = FaceReconstructor.from_pretrained(model, backend="torch", mask_edges_guided=False)
        renderer = evaluation_renderer(None, textures, rec.framing)
        for i in range(args.count):
            s = renderer.render(sample_seed(args.seed, i))
            p = rec.predict(s.image[None])[0][0]
            tallies.setdefault((model, "guided"), []).append(counts(guided_mask(p, s.image) > 0.5, s.mask))
            p = p.astype(np.float64)
            logit = np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))
            for b in BIASES:
                tallies.setdefault((model, b), []).append(counts(logit + b > 0, s.mask))
            if model == args.model:
                for name, pred in zip(("probability", "logit"), cell_limited(s.mask)):
                    tallies.setdefault(name, []).append(counts(pred, s.mask))
    tallies = {k: np.array(v, np.float64) for k, v in tallies.items()}

    def pooled(t: np.ndarray) -> float:
        return t[:, 0].sum() / t[:, 1].sum()

    print(f"render seed {args.seed}, {args.count} faces; pooled mask IoU (evaluate's at bias 0)")
    print("| logit bias | " + " | ".join(f"{b:+.1f}" for b in BIASES) + " |\n|---|" + "---|" * len(BIASES))
    for model in models:
        print(f"| {model} | " + " | ".join(f"{pooled(tallies[(model, b)]):.5f}" for b in BIASES) + " |")
    print(f"the true mask through the head's {HEAD_CELLS}x{HEAD_CELLS} map, upsampled bilinearly: as a probability "
          f"{pooled(tallies['probability']):.5f}, as a logit {pooled(tallies['logit']):.5f}")
    for model in models:
        print(f"{model}, its edges guided by the crop (the predictor's mask): {pooled(tallies[(model, 'guided')]):.5f}")
    if args.against:
        rng = np.random.default_rng(0)
        draws = rng.integers(0, args.count, (2000, args.count))
        for name, a_reading, b_reading in (("as upsampled", 0.0, 0.0), ("guided", "guided", "guided"),
                                           ("guided against as upsampled", 0.0, "guided")):
            a, b = tallies[(args.model, a_reading)], tallies[(args.against, b_reading)]
            diffs = np.array([pooled(b[j]) - pooled(a[j]) for j in draws])
            lo, hi = np.percentile(diffs, [2.5, 97.5])
            better = (b[:, 0] / b[:, 1] > a[:, 0] / a[:, 1]).sum()
            print(f"{args.against} - {args.model}, {name}: {pooled(b) - pooled(a):+.5f}, 95% bootstrap interval over "
                  f"the faces [{lo:+.5f}, {hi:+.5f}]; higher on {better} of {args.count} faces")


if __name__ == "__main__":
    main()
