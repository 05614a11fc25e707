"""Does the reconstruction follow the person, or paint everyone alike? A check on real photos without 3D scans.

FRLL holds a neutral and a smiling portrait of each person. Above the nose tip (crop rows < 136, on the pixels that
every crop's mask holds) a smile changes little, so a person's two reconstructions should share what sets them apart
from other people. Per map (the coarse depth less its best-fitting plane, i.e. tilt; the detail; and, as the
reference, MediaPipe Face Mesh's depth rasterised as the pseudo-labels are), each photo's deviation from the mean
over all photos is correlated between photos. It prints the mean r of a person's two photos (with its 95% bootstrap
interval over people), of two people's photos, and for how many people the neutral photo's nearest smiling photo is
their own (chance: 1).
A smile moves the mouth corners, two of the five points that frame the crop, so the upper face sits about 2 px
elsewhere in a person's smiling crop than in the neutral one (it prints how far its Face Mesh landmarks moved), and
relief finer than that (the detail) no longer overlaps. So each pair is also compared registered: the smiling
photo's maps warped onto the neutral crop by the similarity that takes its upper-face landmarks onto the neutral
photo's (depths scaled with it); the "registered" columns read only the pixels that every warped mask still covers.
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
from facerecon.preprocess.align import (  # noqa: E402
    CANONICAL_LANDMARKS,
    affine_scale,
    apply_affine,
    similarity_lstsq,
)
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
    print("| maps | upper face moved between a person's crops | same person r (95% interval over people) | other "
          "people r | identified | registered: same person r | other people r | identified |\n|---" + "|---" * 7 + "|")
    for name in args.model:
        rec = first if name == args.model[0] else FaceReconstructor.from_pretrained(name, backend=args.backend)
        faces = [rec(images[i], faces=detections[i])[0] for i in order]  # framed as the model was trained
        # each photo's Face Mesh landmarks in its crop; how far the upper face's moved between a person's two crops
        landmarks = [apply_affine(f.crop_affine, detections[i][0].mesh[:, :2]) for f, i in zip(faces, order)]
        upper = [landmarks[k][:, 1] < UPPER_FACE_ROWS for k in range(0, len(order), 2)]
        moved = np.mean([np.linalg.norm(landmarks[k + 1][u] - landmarks[k][u], axis=1).mean()
                         for k, u in zip(range(0, len(order), 2), upper)])
        onto_neutral = [upper_face_similarity(landmarks[k + 1], landmarks[k]) for k in range(0, len(order), 2)]
        reference = [label_face(images[i], detections[i][0].mesh, f.crop_affine, triangles)
                     for f, i in zip(faces, order)]
        regions = [(f.mask > 0.5, ref["mediapipe_region"]) for f, ref in zip(faces, reference)]
        maps = {f"{name} coarse depth": [(f.coarse_depth, *r) for f, r in zip(faces, regions)],
                f"{name} detail": [(f.detail, *r) for f, r in zip(faces, regions)],
                f"MediaPipe depth ({name}'s crops)": [(ref["coarse"], ref["mediapipe_region"],
                                                        ref["mediapipe_region"]) for ref in reference]}
        for label, per_photo in maps.items():
            plane = not label.endswith("detail")  # depths are compared less their tilt
            row = [compare(per_photo, plane=plane), compare(registered(per_photo, onto_neutral), plane=plane)]
            print(f"| {label} ({row[0][4]} px; registered {row[1][4]} px) | {moved:.2f} px | "
                  + " | ".join(f"{same:.3f} +- {half_width:.3f} | {other:.3f} | {identified} / {len(found)}"
                               for same, half_width, other, identified, _ in row) + " |")


def upper_face_similarity(smiling: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """2x3 similarity taking the smiling crop's Face Mesh landmarks above the nose tip onto the neutral crop's."""
    upper = neutral[:, 1] < UPPER_FACE_ROWS
    return similarity_lstsq(smiling[upper], neutral[upper])


def registered(per_photo: list[tuple[np.ndarray, ...]], onto_neutral: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    """(map, mask, region) per photo, the smiling photos' warped into their neutral crop's frame (depths scaled with
    the similarity; pixels that come from outside the crop fall out of the masks)."""
    out = []
    for k, affine in enumerate(onto_neutral):
        out.append(per_photo[2 * k])
        value, *masks = per_photo[2 * k + 1]
        size = value.shape[::-1]
        out.append((cv2.warpAffine(value, affine, size, flags=cv2.INTER_LINEAR) * affine_scale(affine),
                    *(cv2.warpAffine(m.astype(np.uint8), affine, size, flags=cv2.INTER_NEAREST).astype(bool)
                      for m in masks)))
    return out


def compare(per_photo: list[tuple[np.ndarray, ...]], plane: bool) -> tuple[float, float, float, int, int]:
    """consistency() over the upper-face pixels that every photo's mask and Face Mesh region hold, depths less their
    plane; and that pixel count last."""
    region = np.logical_and.reduce([mask & mp for _, mask, mp in per_photo])
    region[UPPER_FACE_ROWS:] = False
    rows, cols = np.nonzero(region)
    values = [without_plane(cols, rows, v[region]) if plane else v[region] for v, _, _ in per_photo]
    return (*consistency(np.array(values[0::2]), np.array(values[1::2])), len(rows))

if __name__ == "__main__":
    main()
