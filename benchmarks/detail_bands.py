"""Where the detail correlation is lost: per frequency band, and with the network's 1/2-resolution features zeroed.

On synthetic evaluation faces (render seed 2), once per face (no flip averaging), it prints the mean per-face
correlation of predicted and true detail after blurring both by sigma px (the coarser bands) and of what the blur
takes away (the finer band), then the full-resolution correlation with the detail head's own 1/2-resolution input
zeroed where it enters the output conv, and with the feature pyramid's lateral from the ResNet stem zeroed (every
1/2-resolution image feature). Near-equal figures there mean the detail head works from 1/4-resolution features.

    python benchmarks/detail_bands.py [--model weights] [--count 80]
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

from facerecon.data.synth.engine import sample_seed  # noqa: E402
from facerecon.data.synth.face_model import default_data_dir  # noqa: E402
from facerecon.predictor import FaceReconstructor  # noqa: E402
from facerecon.training.evaluate import SYNTH_VAL_SEED, evaluation_renderer  # noqa: E402

SIGMAS_PX = (1.0, 2.0, 4.0)


def correlations(rec: FaceReconstructor, samples: list) -> dict[str, float]:
    """Mean per-face r at full resolution, above (low-pass) and below (high-pass) each sigma."""
    rs: dict[str, list[float]] = {"full": []}
    for s in samples:
        mask, _, detail = (a[0] for a in rec.predict(s.image[None]))
        where = s.valid_detail & (mask > 0.5)
        rs["full"].append(np.corrcoef(detail[where], s.detail[where])[0, 1])
        for sigma in SIGMAS_PX:
            low_p, low_t = (cv2.GaussianBlur(x, (0, 0), sigma) for x in (detail, s.detail))
            rs.setdefault(f"coarser than {sigma:g} px", []).append(np.corrcoef(low_p[where], low_t[where])[0, 1])
            rs.setdefault(f"finer than {sigma:g} px", []).append(
                np.corrcoef((detail - low_p)[where], (s.detail - low_t)[where])[0, 1])
    return {k: float(np.mean(v)) for k, v in rs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="facerecon/weights")
    parser.add_argument("--count", type=int, default=80)
    parser.add_argument("--textures", type=Path, default=Path.home() / ".cache/facerecon/skin_frll_heldout.npz")
    args = parser.parse_args()
    data = default_data_dir()
    rec = FaceReconstructor.from_pretrained(args.model, flip_average=False)
    renderer = evaluation_renderer(data, args.textures if args.textures.exists() else None, rec.framing)
    samples = [renderer.render(sample_seed(SYNTH_VAL_SEED, i)) for i in range(args.count)]
    print(f"{args.model}: {args.count} synthetic evaluation faces, "
          f"{'skins from ' + str(args.textures) if args.textures.exists() else 'procedural skin'}, no flip averaging")
    print("| detail correlation | r |\n|---|---|")
    for band, r in correlations(rec, samples).items():
        print(f"| {band} | {r:.3f} |")

    model = rec.backend.model
    width = model.config.fpn_width

    def zero_head_input(module, inputs):  # the head's features are [last decoder output, head input e_0]
        x = inputs[0].clone()
        x[:, -width:] = 0
        return (x,)

    # what turns the head's features into the detail: its output conv, or the block stage that replaces it
    reader = model.detail_head.out if model.detail_head.out is not None else model.full_res.reduce
    reader.register_forward_pre_hook(zero_head_input)
    print(f"| full, the detail head's 1/2-resolution input zeroed where its features become the detail | "
          f"{correlations(rec, samples)['full']:.3f} |")
    model.fpn.lateral[0].register_forward_hook(lambda module, inputs, output: output * 0)
    print(f"| full, and the pyramid's lateral from the stem zeroed too | {correlations(rec, samples)['full']:.3f} |")


if __name__ == "__main__":
    main()
