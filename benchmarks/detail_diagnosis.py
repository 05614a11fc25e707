"""Why the predicted detail is faint on real photos: the relief the labels hold, the relief the network predicts.

On synthetic evaluation faces (render seed 2, held-out portrait skins) it measures, inside the face where the detail
is labelled, the mean magnitude (crop px) of
- the detail label (the wrinkles), and the label's relief finer than a Gaussian of sigma 4 px ("fine relief");
- the fine relief of the undisplaced mesh (the coarse label): eyelids, lips, nostrils at the face model's resolution;
- the predicted detail, its least-squares gain on the label (1 = full amplitude) and correlation;
- the fine relief of the predicted final depth (coarse after the predictor's smoothing, plus detail) and of the true
  final depth (coarse label plus detail label);
and on the held-out real portraits the predicted detail and the predicted final depth's fine relief. A real head
scan's fine relief (the issue's reference, 4-px blur) is 0.17 crop px inside the face.

    python benchmarks/detail_diagnosis.py [--model weights] [--count 60]
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

from facerecon.data.relief import blur_within  # noqa: E402
from facerecon.data.synth.engine import sample_seed  # noqa: E402
from facerecon.data.synth.face_model import default_data_dir  # noqa: E402
from facerecon.predictor import FaceReconstructor  # noqa: E402
from facerecon.training.evaluate import SYNTH_VAL_SEED, evaluation_renderer, held_out_photos  # noqa: E402

FINE_SIGMA_PX = 4.0


def fine_relief(depth: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """depth minus its Gaussian blur (sigma FINE_SIGMA_PX) within `inside`: the face's rim is not relief."""
    return depth - blur_within(depth.astype(np.float32), inside, FINE_SIGMA_PX)


def inner(mask: np.ndarray) -> np.ndarray:
    """The mask less a 6-px rim: where a 4-px blur is not dominated by the face's edge."""
    return cv2.erode(mask.astype(np.uint8), np.ones((13, 13), np.uint8)) > 0


def report(rows: dict[str, list[float]]) -> None:
    for k, v in rows.items():
        q1, q2, q3 = np.nanpercentile(v, [25, 50, 75])
        print(f"  {k:11s} {q2:.4f}   (quartiles {q1:.4f} - {q3:.4f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--textures", type=Path, default=None)
    args = ap.parse_args()
    rec = FaceReconstructor.from_pretrained(args.model, backend="torch")
    data_dir = default_data_dir()
    renderer = evaluation_renderer(data_dir, args.textures, rec.framing)
    rows = {k: [] for k in ("label", "label_fine", "mesh_fine", "true_fine", "pred", "pred_fine", "gain", "corr")}
    for i in range(args.count):
        s = renderer.render(sample_seed(SYNTH_VAL_SEED, i))
        mask, coarse, detail = (a[0] for a in rec.predict(s.image[None]))
        d = inner(s.valid_detail & (mask > 0.5))
        if d.sum() < 500:
            continue
        t, p = s.detail[d], detail[d]
        rows["label"].append(np.abs(t).mean())
        rows["label_fine"].append(np.abs(fine_relief(s.detail, s.mask)[d]).mean())
        rows["mesh_fine"].append(np.abs(fine_relief(s.coarse, s.mask)[d]).mean())
        rows["true_fine"].append(np.abs(fine_relief(s.coarse + s.detail, s.mask)[d]).mean())
        rows["pred"].append(np.abs(p).mean())
        rows["pred_fine"].append(np.abs(fine_relief(coarse + detail, s.mask)[d]).mean())
        rows["gain"].append((p * t).sum() / max((t * t).sum(), 1e-9))
        rows["corr"].append(np.corrcoef(p, t)[0, 1] if p.std() > 0 else np.nan)
    print(f"synthetic faces (seed {SYNTH_VAL_SEED}, {len(rows['label'])} faces), medians, crop px:")
    report(rows)
    real = {"pred": [], "pred_fine": [], "coarse_fine": []}
    for path in held_out_photos(data_dir):
        faces = rec.reconstruct(path)
        for f in faces[:1]:
            m = inner(f.mask > 0.5)
            if m.sum() < 500:
                continue
            real["pred"].append(np.abs(f.detail[m]).mean())
            real["pred_fine"].append(np.abs(fine_relief(f.coarse_depth + f.detail, f.mask > 0.5)[m]).mean())
            real["coarse_fine"].append(np.abs(fine_relief(f.coarse_depth, f.mask > 0.5)[m]).mean())
    print(f"held-out real portraits ({len(real['pred'])} faces), medians, crop px:")
    report(real)


if __name__ == "__main__":
    main()
