"""What warping the network's maps into the maps' frame (predictor.to_map_frame, align.MAP_FRAMING) costs on the
synthetic evaluation faces (render seed 2, as `facerecon evaluate`): each face is rendered twice, into the crop the
network is run on (its framing, from the model's config) and into the maps' crop; the network's maps are scored
against the first render's labels (what `evaluate` reports) and, warped, against the second's (what a user gets).
As the floor of resampling a mask, the first render's true mask warped likewise is compared with the second's, and
the face pixels of the maps' crop that lie outside the network's crop are counted.

    python benchmarks/map_frame.py [--model facerecon/weights] [--backend torch] [--count 300]
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facerecon.data.pseudo_labels import canonical_triangles  # noqa: E402
from facerecon.data.relief import relabelled  # noqa: E402
from facerecon.data.synth.engine import sample_seed  # noqa: E402
from facerecon.data.synth.face_model import default_data_dir  # noqa: E402
from facerecon.model.hub import read_config, resolve_weights  # noqa: E402
from facerecon.predictor import FaceReconstructor, to_map_frame  # noqa: E402
from facerecon.training import evaluate  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "facerecon" / "weights"))
    p.add_argument("--backend", default="torch")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--textures", type=Path, default=Path.home() / ".cache/facerecon/skin_frll_heldout.npz")
    args = p.parse_args()
    data = default_data_dir()
    rec = FaceReconstructor.from_pretrained(args.model, backend=args.backend)
    config = read_config(resolve_weights(args.model))[0]
    textures = args.textures if args.textures.exists() else None
    renderers = {name: evaluate.evaluation_renderer(data, textures, framing)
                 for name, framing in (("network", rec.framing), ("maps", rec.map_framing))}
    triangles = canonical_triangles(data)
    per = {name: defaultdict(list) for name in renderers}
    true_mask = defaultdict(int)  # the true mask warped: overlap, union; face pixels beyond the network's crop
    for i in range(args.count):
        s = {name: relabelled(r.render(sample_seed(evaluate.SYNTH_VAL_SEED, i)), config.detail_band_px,
                                config.detail_wrinkles_whole) for name, r in renderers.items()}
        mask, coarse, detail = (a[0] for a in rec.predict(s["network"].image[None]))
        affines = [np.array(s[name].params["crop_affine"]) for name in ("network", "maps")]
        scored = {"network": (mask, coarse, detail), "maps": to_map_frame(mask, coarse, detail, *affines)}
        # masks warped as the maps are (to_map_frame's first output)
        warped_truth, covered = (to_map_frame(m, coarse, detail, *affines)[0] > 0.5
                                 for m in (s["network"].mask.astype(np.float32), np.ones_like(mask)))
        true_mask["inter"] += int((warped_truth & s["maps"].mask).sum())
        true_mask["union"] += int((warped_truth | s["maps"].mask).sum())
        true_mask["beyond"] += int((s["maps"].mask & ~covered).sum())
        for name, (m, c, d) in scored.items():
            for key, value in evaluate.synthetic_face(rec, s[name], i, m > 0.5, c, d, triangles).items():
                per[name][key].append(value)
    print(f"{args.model} ({args.backend}), {args.count} synthetic evaluation faces (seed {evaluate.SYNTH_VAL_SEED})")
    print("| maps | mask IoU | coarse / final depth error, mm | coarse error, crop px | normal error, deg "
          "| detail r |\n|---|---|---|---|---|---|")
    for name, m in per.items():
        iou = sum(m["mask_inter"]) / max(sum(m["mask_union"]), 1)
        print(f"| {'the network crop' if name == 'network' else 'warped into the maps crop'} | {iou:.4f} | "
              f"{np.mean(m['mae_mm']):.3f} / {np.mean(m['depth_mae_mm']):.3f} | {np.mean(m['mae_px']):.3f} | "
              f"{np.mean(m['normal_error']):.2f} | {np.mean(m['detail_corr']):.3f} |")
    print(f"The true mask of the network's crop warped into the maps' crop: IoU "
          f"{true_mask['inter'] / true_mask['union']:.4f} with the maps' crop's own; the maps' crop's face pixels "
          f"beyond the network's crop: {true_mask['beyond']}")


if __name__ == "__main__":
    main()
