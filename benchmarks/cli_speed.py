"""CLI speed as a user meets it: `facerecon predict` in a new process on held-out portraits, GLB only (or the given
formats), with the defaults (backend auto). Prints the launch to the first photo's line, the whole run, and the same
for one photo.

    python benchmarks/cli_speed.py [--photos 32] [--runs 3] [--data ../shared/data] [--backend auto] [--formats glb]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(photos: list[Path], backend: str, out: Path, formats: str) -> tuple[float, float]:
    """(seconds from launch to the first photo's line on stdout, seconds to exit)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "facerecon", "predict", *map(str, photos), "--out", str(out),
                             "--formats", formats, "--backend", backend], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    first = None
    for _ in proc.stdout:
        first = first or time.perf_counter() - t0
    if proc.wait() != 0 or first is None:
        raise SystemExit(f"facerecon predict failed (exit {proc.returncode})")
    return first, time.perf_counter() - t0


def main() -> None:
    from facerecon.data.synth.face_model import default_data_dir
    from facerecon.training.evaluate import held_out_photos

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--photos", type=int, default=32)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--data", type=Path, default=None, help="the shared data folder (default ../shared/data)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--formats", default="glb", help="as the CLI takes them (its default: glb,obj,ply,stl)")
    args = p.parse_args()
    photos = held_out_photos(Path(args.data or default_data_dir()))[: args.photos]
    print(f"{len(photos)} held-out portraits, formats {args.formats}, backend {args.backend}, "
          f"median of {args.runs} runs")
    with tempfile.TemporaryDirectory() as tmp:
        run(photos[:1], args.backend, Path(tmp) / "warm", args.formats)  # the ONNX export or file cache, once
        for name, batch in (("one photo", photos[:1]), (f"{len(photos)} photos", photos)):
            times = [run(batch, args.backend, Path(tmp) / f"{name}{i}", args.formats) for i in range(args.runs)]
            first, total = (statistics.median(t[k] for t in times) for k in (0, 1))
            print(f"| {name} | launch to first photo {first:.2f} s | all {total:.2f} s |")


if __name__ == "__main__":
    main()
