"""Synthetic data engine speed: samples/s with W worker processes (through `synthesise`, shards written), and the
time per stage of one process (from a profile of Renderer.render).

    python benchmarks/synth_speed.py [--count 1200] [--workers 2]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facerecon.data.synth.engine import background_photos, synthesise  # noqa: E402
from facerecon.data.synth.face_model import FaceModel, default_data_dir  # noqa: E402
from facerecon.data.synth.render import Renderer  # noqa: E402

# Renderer.render's named stages, in the order it runs them
STAGES = ("pose", "frame", "cast", "relief", "albedo", "hair", "light", "compose", "camera_effects", "labels")


def stage_times(n: int) -> tuple[dict[str, float], float]:
    data = default_data_dir()
    renderer = Renderer(FaceModel.load(data / "ict_facekit" / "ict_facekit_head_f16.npz"), background_photos(data))
    renderer.render(0)
    profile = cProfile.Profile()
    profile.enable()
    for i in range(n):
        renderer.render(i + 1)
    profile.disable()
    stats = pstats.Stats(profile).stats
    total = next(v[3] for k, v in stats.items() if k[2] == "render") / n * 1e3
    times: dict[str, float] = {}
    for (file, _, name), (_, _, _, cum, _) in stats.items():
        if name in STAGES and file.endswith(str(Path("synth") / "render.py")):
            times[name] = cum / n * 1e3
    return times, total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--count", type=int, default=1200)  # 3 shards per worker: start-up amortised
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rate = synthesise(Path(tmp), args.count, seed=123, workers=args.workers)
    print(f"\n{args.count} samples at 256x256 with {args.workers} workers: {rate:.1f} samples/s (shards written)\n")
    times, total = stage_times(20)
    print("| stage (one process) | ms per sample |\n|---|---|")
    for k in STAGES:
        print(f"| {k} | {times.get(k, 0.0):.1f} |")
    print(f"| total | {total:.1f} |")


if __name__ == "__main__":
    main()
