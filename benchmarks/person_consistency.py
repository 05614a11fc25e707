"""Does the reconstruction follow the person, or paint everyone alike? A check on real photos without 3D scans.

FRLL holds a neutral and a smiling portrait of each person. Above the nose tip (crop rows < 136, on the pixels that
every crop's mask holds) a smile changes little, so a person's two reconstructions should share what sets them apart
from other people. Per map (the coarse depth less its best-fitting plane, i.e. tilt; the detail; and, as the
reference, MediaPipe Face Mesh's depth rasterised as the pseudo-labels are), each photo's deviation from the mean
over all photos is correlated between photos. It prints the mean r of a person's two photos (with its 95% bootstrap
interval over people), of two people's photos, and for how many people the neutral photo's nearest smiling photo is
their own (chance: 1).
Most of these photos are training photos for the mask and coarse heads (pseudo-labels, no detail loss).

    python benchmarks/person_consistency.py [--model weights ...] [--backend auto]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facerecon.data.pseudo_labels import canonical_triangles, label_face  # noqa: E402
from facerecon.data.splits import is_held_out  # noqa: E402
from facerecon.data.synth.face_model import default_data_dir  # noqa: E402
from facerecon.model.backends import BACKENDS  # noqa: E402
from facerecon.predictor import FaceReconstructor  # noqa: E402
from facerecon.preprocess.align import CANONICAL_LANDMARKS  # noqa: E402
from facerecon.training.evaluate import without_plane  # noqa: E402

UPPER_FACE_ROWS = int(CANONICAL_LANDMARKS[2, 1])  # crop rows above the nose tip


def person_pairs(frll: Path) -> list[tuple[Path, Path]]:
    """(neutral, smiling) photo of each person both folders hold; files are named <person>_<pose>.jpg."""
    smiling = {p.name.split("_")[0]: p for p in (frll / "smiling_front").glob("*.jpg")}
    return [(p, smiling[p.name.split("_")[0]]) for p in sorted((frll / "neutral_front").glob("*.jpg"))
            if p.name.split("_")[0] in smiling]


def consistency(neutral: np.ndarray, smiling: np.ndarray) -> tuple[float, float, float, int]:
    """neutral, smiling: people x pixels. (same person's mean r, the half-width of its 95% bootstrap interval over
    people, other people's mean r, people identified)."""
    both = np.concatenate([neutral, smiling])
    z = both - both.mean(0)
    z = (z - z.mean(1, keepdims=True)) / z.std(1, keepdims=True)
    n = len(neutral)
    r = z[:n] @ z[n:].T / z.shape[1]  # r[i, j]: person i's neutral photo against person j's smiling one
    others = ~np.eye(n, dtype=bool)
    same = np.diag(r)
    resampled = same[np.random.default_rng(0).integers(n, size=(1000, n))].mean(1)
    half_width = (np.percentile(resampled, 97.5) - np.percentile(resampled, 2.5)) / 2
    return float(same.mean()), float(half_width), float(r[others].mean()), int((r.argmax(1) == np.arange(n)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["facerecon/weights"])
    parser.add_argument("--backend", default="auto", choices=BACKENDS,
                        help="auto (what users get) is int8 for a model with an int8 file, else float onnx: compare "
                             "models with one backend, e.g. torch")
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default ../shared/data)")
    args = parser.parse_args()
    data = Path(args.data or default_data_dir())
    pairs = person_pairs(data / "frll")
    triangles = canonical_triangles(data)
    first = FaceReconstructor.from_pretrained(args.model[0], backend=args.backend)
    photos = [p for pair in pairs for p in pair]
    images, detections = [], []
    for p in photos:
        images.append(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB))
        detections.append(first.detector.detect(images[-1])[:1])
    found = [i for i in range(0, len(photos), 2) if detections[i] and detections[i + 1]]
    order = [i for k in found for i in (k, k + 1)]  # neutral, smiling, neutral, ...
    held_out = sum(is_held_out(photos[i].name) for i in order)
    print(f"{len(found)} FRLL people with a face found in both photos ({held_out} of their {len(order)} photos held "
          "out)")
    reference = [label_face(images[i], detections[i][0].mesh, detections[i][0].landmarks5, triangles) for i in order]
    print("| maps | same person r (95% interval over people) | other people r | identified |\n|---|---|---|---|")
    for name in args.model:
        rec = first if name == args.model[0] else FaceReconstructor.from_pretrained(name, backend=args.backend)
        faces = [rec(images[i], faces=detections[i])[0] for i in order]
        region = np.logical_and.reduce([(f.mask > 0.5) & ref["mediapipe_region"] for f, ref in zip(faces, reference)])
        region[UPPER_FACE_ROWS:] = False
        rows, cols = np.nonzero(region)
        maps = {f"{name} coarse depth": [without_plane(cols, rows, f.coarse_depth[region]) for f in faces],
                f"{name} detail": [f.detail[region] for f in faces]}
        if name == args.model[0]:
            maps["MediaPipe depth"] = [without_plane(cols, rows, ref["coarse"][region]) for ref in reference]
        for label, values in maps.items():
            same, half_width, other, identified = consistency(np.array(values[0::2]), np.array(values[1::2]))
            print(f"| {label} ({len(rows)} px) | {same:.3f} +- {half_width:.3f} | {other:.3f} | "
                  f"{identified} / {len(found)} |")


if __name__ == "__main__":
    main()
