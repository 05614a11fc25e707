"""Latency benchmark: network forward (batch 1, 256x256) in torch, onnxruntime, and the shipped width's int8 file
(model_int8.onnx) in onnxruntime and in OpenVINO, at the shipped and the full width, and one photo end to end split
by stage, for each backend. Prints markdown tables of measured medians, under the CPU's name.

Each measurement runs in a fresh process, as a user's would (the CLI on the onnxruntime path never imports torch,
let alone runs it beside onnxruntime's threads), and is repeated in --repeats processes, of which the median is
printed: on this shared 2-core machine one process's median ranged 21-27 ms for the same int8 network.

    python benchmarks/latency.py [--runs 30] [--repeats 3] [--threads N] [--photo examples/astronaut.png]
                                 [--end-to-end-only] [--model facerecon/weights]
    python benchmarks/latency.py --compare-int8 FOLDER FOLDER ... [--repeats 8]   # int8 networks side by side
"""
from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "facerecon" / "weights"
sys.path.insert(0, str(ROOT))


def median_ms(fn, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def network_ms(width: str, backend: str, runs: int, threads: int, tmp: str, folder: Path, batch: int = 1) -> float:
    """One forward pass's median: width 'shipped' (the model folder's) or 'full' (paper-sized, untrained)."""
    from facerecon.model import FaceReconNet, NetworkConfig
    from facerecon.model.backends import OnnxBackend, TorchBackend, export_onnx, int8_backend
    from facerecon.model.hub import load_pretrained

    x = np.random.default_rng(0).random((batch, 3, 256, 256), dtype=np.float32)
    if backend in ("onnx-int8", "openvino-int8"):
        net = int8_backend(folder, "cpu", threads, runtime="openvino" if backend == "openvino-int8" else "onnxruntime")
    else:
        model = load_pretrained(folder) if width == "shipped" else FaceReconNet(NetworkConfig.full_width()).eval()
        if backend == "torch":
            import torch

            if threads:
                torch.set_num_threads(threads)
            net = TorchBackend(model, "cpu")
        else:
            net = OnnxBackend(export_onnx(model, Path(tmp) / f"{width}.onnx"), "cpu", threads)
    return median_ms(lambda: net.run(x), runs)


def end_to_end_ms(backend: str, runs: int, tmp: str, photo_path: Path, folder: Path) -> dict[str, float]:
    """Median ms per stage for a 1280x1280 (1.6 megapixel) JPEG of photo_path, decoded from bytes each run: decode,
    detect, align, network (FaceReconstruction.timings), mesh, export (GLB) and total."""
    from PIL import Image

    from facerecon.predictor import FaceReconstructor
    from facerecon.surface.export import write_mesh
    from facerecon.surface.mesh import build_mesh

    photo = Image.open(photo_path).convert("RGB").resize((1280, 1280), Image.LANCZOS)
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=92)
    data = buf.getvalue()
    rec = FaceReconstructor.from_pretrained(folder, backend=backend, device="cpu")
    stages: dict[str, list[float]] = {}
    for i in range(runs + 2):
        t0 = time.perf_counter()
        face = rec(data)[0]
        t1 = time.perf_counter()
        mesh = build_mesh(face)
        t2 = time.perf_counter()
        # a new folder each run, as the CLI and the demo write each photo's files (overwriting one file took 0.9 ms
        # more, the file system freeing its old pages)
        write_mesh(mesh, face.texture_rgb, Path(tmp) / f"run{i}", formats=("glb",), face=face)
        t3 = time.perf_counter()
        if i < 2:
            continue  # warm-up
        for k, v in {**face.timings, "mesh": (t2 - t1) * 1e3, "export": (t3 - t2) * 1e3,
                     "total": (t3 - t0) * 1e3}.items():
            stages.setdefault(k, []).append(v)
    return {k: statistics.median(v) for k, v in stages.items()}


def fresh(repeats: int, fn, *args):
    """The median of fn(*args) (a number, or a dict of numbers, per key) over `repeats` new Python processes (spawned,
    so nothing of this one's libraries or threads carries over)."""
    results = []
    for _ in range(repeats):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results.append(pool.submit(fn, *args).result())
    if isinstance(results[0], dict):
        return {k: statistics.median(r[k] for r in results) for k in results[0]}
    return statistics.median(results)


def compare_int8(folders: list[Path], repeats: int, runs: int, threads: int) -> None:
    """The int8 networks of several model folders, batch 1 and batch 2 (flip averaging), each in `repeats` fresh
    processes taken in turn, so that the machine's drift between processes (docs/speed.md) falls on all alike."""
    times: dict[tuple[Path, int], list[float]] = {}
    for _ in range(repeats):
        for folder in folders:
            for batch in (1, 2):
                ms = fresh(1, network_ms, "shipped", "onnx-int8", runs, threads, "", folder, batch)
                times.setdefault((folder, batch), []).append(ms)
    print(f"int8 network, ms: {repeats} fresh processes each, taken in turn, of the median of {runs} runs")
    print("| model | batch 1: median; fastest process | batch 2: median; fastest process |\n|---|---|---|")
    for folder in folders:
        cells = [f"{statistics.median(times[folder, b]):.1f}; {min(times[folder, b]):.1f}" for b in (1, 2)]
        print(f"| {folder} | {' | '.join(cells)} |")


def cpu_name() -> str:
    """The CPU's model name (Linux), as machines of this workplace's kind differ: docs/speed.md."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "CPU unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "CPU unknown")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement (the median is printed)")
    p.add_argument("--threads", type=int, default=0, help="network table only; 0 = the libraries' defaults")
    p.add_argument("--photo", type=Path, default=ROOT / "examples" / "astronaut.png",
                   help="the end-to-end photo, scaled to 1280x1280 (the astronaut's face is 260 px wide there)")
    p.add_argument("--end-to-end-only", action="store_true", help="leave out the network table")
    p.add_argument("--model", type=Path, default=WEIGHTS, help="a model folder (default: the bundled weights)")
    p.add_argument("--compare-int8", type=Path, nargs="+", metavar="FOLDER",
                   help="only the int8 networks of these model folders, batch 1 and 2, side by side")
    args = p.parse_args()
    if args.compare_int8:
        compare_int8(args.compare_int8, args.repeats, args.runs, args.threads)
        return
    import onnxruntime
    import openvino
    import torch

    print(f"{cpu_name()}, cores {len(os.sched_getaffinity(0))}; torch {torch.__version__}, onnxruntime "
          f"{onnxruntime.__version__}, openvino {openvino.__version__}; threads "
          f"{args.threads or 'one per core (the defaults)'}")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.end_to_end_only:
            print(f"\nNetwork forward, batch 1, 256x256, ms: median over {args.repeats} processes of the median of "
                  f"{args.runs} runs")
            print("| width | torch ms | onnxruntime ms | onnxruntime int8 ms | openvino int8 ms |\n" + "|---" * 5 + "|")
        for width in () if args.end_to_end_only else ("shipped", "full"):
            ms = [f"{fresh(args.repeats, network_ms, width, b, args.runs, args.threads, tmp, args.model):.1f}"
                  for b in ("torch", "onnx")]
            int8 = [f"{fresh(args.repeats, network_ms, width, b, args.runs, args.threads, tmp, args.model):.1f}"
                    if width == "shipped" else "-" for b in ("onnx-int8", "openvino-int8")]
            name = f"{args.model.name}/" if width == "shipped" else "full (paper-sized, untrained; no int8 model)"
            print(f"| {name} | {' | '.join(ms + int8)} |")
        print(f"\n{args.photo.name} at 1280x1280 end to end (one face, GLB written), ms per stage: median over "
              f"{args.repeats} processes of the median of {args.runs} runs")
        keys = ("decode", "detect", "align", "network", "mesh", "export", "total")
        print("| backend | decode | detect | align | network | mesh | export GLB | total |\n" + "|---" * 8 + "|")
        for backend in ("openvino-int8", "onnx-int8", "onnx", "torch"):
            med = fresh(args.repeats, end_to_end_ms, backend, args.runs, tmp, args.photo, args.model)
            print(f"| {backend} | " + " | ".join(f"{med[k]:.1f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
