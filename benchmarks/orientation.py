"""Turned photos without an EXIF tag: portraits of the data turned 90, 180 and 270 degrees, and each upside down on
a larger grey canvas (a person upside down in an upright photo). A face counts as upright when its crop correlates
above 0.8 with the crop of the upright photo.

    python benchmarks/orientation.py [--every 7]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--every", type=int, default=7, help="take every N-th portrait of the data")
    args = p.parse_args()
    from facerecon import FaceReconstructor, NoFaceFound
    from facerecon.data.splits import photo_files
    from facerecon.data.synth.face_model import default_data_dir
    from facerecon.preprocess.image_io import load_image

    rec = FaceReconstructor.from_pretrained()
    data = default_data_dir()
    photos = photo_files([data / "congress", data / "frll" / "smiling_front"])[:: args.every]
    names = ("turned 90", "turned 180", "turned 270", "upside down on a canvas")
    counts = {k: [0, 0, 0] for k in names}  # upright, found but not upright, not found
    detect_ms = {k: [] for k in counts}
    for path in photos:
        rgb = load_image(path)
        upright = rec(rgb)[0].crop_rgb.astype(np.float32).ravel()
        canvas = np.full((rgb.shape[0] * 2, rgb.shape[1] * 2, 3), 90, np.uint8)
        canvas[rgb.shape[0] // 2:][: rgb.shape[0], rgb.shape[1] // 2:][:, : rgb.shape[1]] = rgb[::-1, ::-1]
        for name, image in (("turned 90", np.rot90(rgb, 1)), ("turned 180", np.rot90(rgb, 2)),
                            ("turned 270", np.rot90(rgb, 3)), ("upside down on a canvas", canvas)):
            try:
                face = rec(np.ascontiguousarray(image))[0]
            except NoFaceFound:
                counts[name][2] += 1
                continue
            detect_ms[name].append(face.timings["detect"])
            r = np.corrcoef(face.crop_rgb.astype(np.float32).ravel(), upright)[0, 1]
            counts[name][0 if r > 0.8 else 1] += 1
    print(f"{len(photos)} portraits of the data\n")
    print("| photo | upright | found but not upright | not found | detection ms (median) |\n|---|---|---|---|---|")
    for name, (up, wrong, none) in counts.items():
        ms = statistics.median(detect_ms[name]) if detect_ms[name] else float("nan")
        print(f"| {name} | {up} | {wrong} | {none} | {ms:.0f} |")


if __name__ == "__main__":
    main()
