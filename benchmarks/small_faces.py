"""Small faces in large photos: portraits of the data scaled so that the face is N px wide and placed in a grey
photo of M megapixels; how many are found, and the detection's time and peak memory per megapixel (each photo
size in a process of its own, so that its peak is its own).

    python benchmarks/small_faces.py [--faces 60,80,120,200] [--megapixels 12,24,48] [--portraits 5]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def one_size(megapixels: float, faces: list[int], portraits: int) -> dict:
    import cv2

    from facerecon.data.splits import photo_files
    from facerecon.data.synth.face_model import default_data_dir
    from facerecon.preprocess.detect import FaceDetector
    from facerecon.preprocess.image_io import load_image

    detector = FaceDetector()
    w = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    h = w * 3 // 4
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    found, ms = {n: 0 for n in faces}, []
    for path in photo_files([default_data_dir() / "frll" / "neutral_front"])[:portraits]:
        rgb = load_image(path)
        face_width = detector.detect(rgb)[0].box
        face_width = face_width[2] - face_width[0]
        for n in faces:
            small = cv2.resize(rgb, None, fx=n / face_width, fy=n / face_width, interpolation=cv2.INTER_AREA)
            photo = np.full((h, w, 3), 120, np.uint8)
            photo[h // 3:h // 3 + small.shape[0], w // 2:w // 2 + small.shape[1]] = small
            t = time.perf_counter()
            found[n] += bool(detector.detect(photo))
            ms.append((time.perf_counter() - t) * 1e3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    return {"megapixels": w * h / 1e6, "found": found, "ms": float(np.median(ms)), "peak_mb": peak,
            "tried": portraits}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--faces", default="60,80,120,200")
    p.add_argument("--megapixels", default="12,24,48")
    p.add_argument("--portraits", type=int, default=5)
    p.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)  # a child process: one photo size
    args = p.parse_args()
    faces = [int(v) for v in args.faces.split(",")]
    if args.one:
        print(json.dumps(one_size(args.one, faces, args.portraits)))
        return
    print("| photo | " + " | ".join(f"{n} px faces found" for n in faces) + " | detection ms | ms per MP | "
          "peak MB above the model | MB per MP |\n|---" * 1 + "|---" * (len(faces) + 4) + "|")
    for mp in (float(v) for v in args.megapixels.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(mp), "--faces", args.faces, "--portraits",
                              str(args.portraits)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['megapixels']:.0f} MP | " + " | ".join(f"{r['found'][str(n)]} / {r['tried']}" for n in faces)
              + f" | {r['ms']:.0f} | {r['ms'] / r['megapixels']:.0f} | {r['peak_mb']:.0f} | "
              f"{r['peak_mb'] / r['megapixels']:.1f} |")


if __name__ == "__main__":
    main()
