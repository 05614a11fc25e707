"""GPU benchmark (CUDA): network latency and throughput, agreement with the CPU, and training speed, the last both
as pure GPU steps and through the real training loop (facerecon.training.train on rendered-size shards of random data).
Prints markdown tables of measured figures; needs a CUDA device. Imports nothing that needs open3d or mediapipe.

    python benchmarks/gpu_speed.py [--runs 50] [--train-samples 4096]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
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

from facerecon.data.shards import shard_path, write_shard  # noqa: E402
from facerecon.model import FaceReconNet, NetworkConfig  # noqa: E402
from facerecon.model.hub import load_pretrained  # noqa: E402
from facerecon.training import train  # noqa: E402


def cuda_ms(fn, runs: int, warmup: int = 5) -> float:
    """Median wall time of fn in ms, the GPU synchronised around each run."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def inference_table(runs: int) -> list[str]:
    rows = ["| width | precision | batch 1 ms | batch 64 images/s |", "|---|---|---|---|"]
    for name, model in [("shipped (weights/)", load_pretrained(ROOT / "facerecon" / "weights")),
                        ("full (paper-sized, untrained)", FaceReconNet(NetworkConfig.full_width()))]:
        for precision, dtype in [("fp32", torch.float32), ("fp16", torch.float16)]:
            net = model.to("cuda", dtype).eval()
            one, many = (torch.rand(n, 3, 256, 256, device="cuda", dtype=dtype) for n in (1, 64))
            with torch.inference_mode():
                ms1 = cuda_ms(lambda net=net, one=one: net(one), runs)
                ms64 = cuda_ms(lambda net=net, many=many: net(many), max(5, runs // 5))
            rows.append(f"| {name} | {precision} | {ms1:.2f} | {64e3 / ms64:.0f} |")
    return rows


def agreement_table() -> list[str]:
    """The shipped weights on examples/astronaut.png (resized to 256x256) on the CPU and on the GPU."""
    image = Image.open(ROOT / "examples" / "astronaut.png").convert("RGB").resize((256, 256), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]
    model = load_pretrained(ROOT / "facerecon" / "weights", dtype=torch.float32).eval()
    rows = ["| GPU precision | mask pixels that differ | coarse max abs diff (px) | detail max abs diff (px) |",
            "|---|---|---|---|"]
    with torch.inference_mode():
        cpu = [o.float() for o in model(x)]
        for precision, dtype in [("fp32", torch.float32), ("fp16", torch.float16)]:
            gpu = [o.float().cpu() for o in model.to("cuda", dtype)(x.to("cuda", dtype))]
            model.to("cpu", torch.float32)
            differ = int(((cpu[0] > 0) != (gpu[0] > 0)).sum())
            rows.append(f"| {precision} | {differ} of {cpu[0].numel()} | {float((cpu[1] - gpu[1]).abs().max()):.4f} | "
                        f"{float((cpu[2] - gpu[2]).abs().max()):.4f} |")
    return rows


def random_batch(n: int) -> dict[str, torch.Tensor]:
    mask = torch.zeros(n, 1, 256, 256)
    mask[..., 48:208, 64:192] = 1
    return {"image": torch.rand(n, 3, 256, 256), "mask": mask, "coarse": torch.randn(n, 1, 256, 256) * 8 * mask,
            "detail": torch.randn(n, 1, 256, 256) * 0.1 * mask, "valid_coarse": mask, "valid_detail": mask}


def gpu_step_rate(batch_size: int, runs: int) -> float:
    """Training samples/s of the shipped network with the batch already on the GPU (no data loading)."""
    cfg = train.TrainConfig()
    model = load_pretrained(ROOT / "facerecon" / "weights", dtype=torch.float32).to("cuda").train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    b = {k: v.cuda() for k, v in random_batch(batch_size).items()}
    weights = torch.ones(batch_size, device="cuda")

    def step():
        loss = train.compute_losses(model, b, cfg, weights)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return batch_size * 1e3 / cuda_ms(step, runs)


def write_random_shards(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((256, 256), bool)
    mask[48:208, 64:192] = True
    for k in range(0, count, 200):
        write_shard(shard_path(folder, k // 200), [
            {"image": rng.integers(0, 256, (256, 256, 3), np.uint8), "mask": mask,
             "coarse": (rng.normal(0, 8, (256, 256)) * mask).astype(np.float32),
             "detail": (rng.normal(0, 0.1, (256, 256)) * mask).astype(np.float32),
             "valid_coarse": mask, "valid_detail": mask, "params": {}} for _ in range(min(200, count - k))],
            "random data")


def loop_rate(data: Path, out: Path, batch_size: int, loader_threads: int, samples: int) -> float:
    """Samples/s of `python -m facerecon train` on the GPU between its first and last log line (start-up, data
    loading and the closing checkpoint left out)."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        train.main([f"synth_dirs={data / 'synth'}", f"real_dirs={data / 'real'}", f"out_dir={out}",
                    "init_from=" + str(ROOT / "facerecon" / "weights"), "res_schedule=256", f"batch_size={batch_size}",
                    f"total_samples={samples}", "log_every=10", "ckpt_minutes=1000", "val_fraction=0.01",
                    "device=cuda", f"loader_threads={loader_threads}", "threads=4"])
    steps = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith('{"step"') and '"lr"' in line]
    first, last = steps[0], steps[-1]
    return (last["samples"] - first["samples"]) / ((last["minutes"] - first["minutes"]) * 60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--train-samples", type=int, default=4096, help="samples per training-loop measurement")
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark measures the GPU")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"{len(__import__('os').sched_getaffinity(0))} CPU cores")
    print("\nNetwork forward at 256x256, median over", args.runs, "runs\n" + "\n".join(inference_table(args.runs)))
    print("\nCPU vs GPU, shipped weights, one 256x256 image\n" + "\n".join(agreement_table()))
    print("\nTraining samples/s at 256x256, shipped width, fp32")
    rows = ["| what | batch | loader threads | samples/s |", "|---|---|---|---|"]
    for bs in (16, 64):
        rows.append(f"| GPU steps only (batch on the GPU) | {bs} | - | {gpu_step_rate(bs, args.runs // 2):.0f} |")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_random_shards(tmp / "data" / "synth", 800)
        write_random_shards(tmp / "data" / "real", 200)
        for bs, threads in [(16, 0), (64, 0), (64, 4), (64, 12)]:
            rate = loop_rate(tmp / "data", tmp / f"run_{bs}_{threads}", bs, threads, args.train_samples)
            rows.append(f"| training loop (`python -m facerecon train`) | {bs} | {threads} | {rate:.0f} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
