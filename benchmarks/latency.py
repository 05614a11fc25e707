"""Latency benchmark: network forward (batch 1, 256x256) for torch and onnxruntime at the shipped and the full
width, and one photo end to end split by stage. Prints markdown tables of measured medians.

    python benchmarks/latency.py [--runs 30] [--threads N]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facerecon.model import FaceReconNet, NetworkConfig  # noqa: E402
from facerecon.model.backends import OnnxBackend, TorchBackend, export_onnx  # noqa: E402
from facerecon.model.hub import load_pretrained  # noqa: E402
from facerecon.predictor import FaceReconstructor  # noqa: E402
from facerecon.surface.export import write_mesh  # noqa: E402
from facerecon.surface.mesh import build_mesh  # noqa: E402


def median_ms(fn, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def network_table(runs: int, threads: int, tmp: Path) -> list[str]:
    x = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
    rows = ["| width | parameters | torch ms | onnxruntime ms |", "|---|---|---|---|"]
    for name, model in [("shipped (weights/)", load_pretrained(ROOT / "facerecon" / "weights")),
                        ("full (paper-sized, untrained)", FaceReconNet(NetworkConfig.full_width()).eval())]:
        params = sum(p.numel() for p in model.parameters()) / 1e6
        backend = TorchBackend(model, "cpu")
        torch_ms = median_ms(lambda backend=backend: backend.run(x), runs)
        onnx = OnnxBackend(export_onnx(model, tmp / f"{len(rows)}.onnx"), "cpu", threads)
        onnx_ms = median_ms(lambda onnx=onnx: onnx.run(x), runs)
        rows.append(f"| {name} | {params:.1f} M | {torch_ms:.1f} | {onnx_ms:.1f} |")
    return rows


def end_to_end_table(runs: int, tmp: Path) -> list[str]:
    """A 1280x1280 (1.6 megapixel) JPEG of examples/astronaut.png, decoded from bytes each run."""
    photo = Image.open(ROOT / "examples" / "astronaut.png").convert("RGB").resize((1280, 1280), Image.LANCZOS)
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=92)
    data = buf.getvalue()
    rows = ["| backend | decode | detect | align | network | mesh | export GLB | total |",
            "|---|---|---|---|---|---|---|---|"]
    for backend in ("onnx", "torch"):
        rec = FaceReconstructor.from_pretrained(ROOT / "facerecon" / "weights", backend=backend, device="cpu")
        stages: dict[str, list[float]] = {}
        for i in range(runs + 2):
            t0 = time.perf_counter()
            face = rec(data)[0]
            t1 = time.perf_counter()
            mesh = build_mesh(face)
            t2 = time.perf_counter()
            write_mesh(mesh, face.texture_rgb, tmp, formats=("glb",), face=face)
            t3 = time.perf_counter()
            if i < 2:
                continue  # warm-up
            for k, v in {**face.timings, "mesh": (t2 - t1) * 1e3, "export": (t3 - t2) * 1e3,
                         "total": (t3 - t0) * 1e3}.items():
                stages.setdefault(k, []).append(v)
        med = {k: statistics.median(v) for k, v in stages.items()}
        rows.append(f"| {backend} | " + " | ".join(f"{med[k]:.1f}" for k in
                                                  ("decode", "detect", "align", "network", "mesh", "export", "total"))
                    + " |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--threads", type=int, default=0, help="network table only; 0 = the libraries' defaults")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import onnxruntime

    print(f"torch {torch.__version__} threads={torch.get_num_threads()}, onnxruntime {onnxruntime.__version__} "
          f"threads={args.threads or 'default (one per core)'}, cores={len(__import__('os').sched_getaffinity(0))}")
    with tempfile.TemporaryDirectory() as tmp:
        print("\nNetwork forward, batch 1, 256x256, median ms over", args.runs, "runs")
        print("\n".join(network_table(args.runs, args.threads, Path(tmp))))
        print("\nOne 1280x1280 photo end to end (one face, GLB written), median ms per stage over", args.runs, "runs")
        print("\n".join(end_to_end_table(args.runs, Path(tmp))))


if __name__ == "__main__":
    main()
