"""`python -m facerecon synth`: render N samples into shards with W worker processes; deterministic, resumable."""
from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from ..shards import list_shards, shard_path, write_shard
from ..splits import is_held_out
from .face_model import FaceModel, default_data_dir
from .render import Renderer

SHARD_SIZE = 200
_renderer: Renderer | None = None


def background_photos(data_dir: Path, limit: int = 300) -> list[np.ndarray]:
    files = [f for f in sorted((data_dir / "congress").glob("*.jpg")) if not is_held_out(f.name)][:limit]
    return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]


def _init(data_dir: Path) -> None:
    global _renderer
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cv2.setNumThreads(1)
    _renderer = Renderer(FaceModel.load(data_dir / "ict_facekit" / "ict_facekit_head_f16.npz"),
                         background_photos(data_dir))


def _render_shard(job: tuple[Path, int, int, int]) -> int:
    out_dir, index, seed, count = job
    first = index * SHARD_SIZE
    samples = [asdict(_renderer.render(seed * 10_000_000 + i)) for i in range(first, min(first + SHARD_SIZE, count))]
    write_shard(shard_path(out_dir, index), samples)
    return len(samples)


def synthesise(out_dir: Path, count: int, seed: int, workers: int, data_dir: Path | None = None) -> float:
    """Render `count` samples; shards already on disk are kept (resume). Returns samples per second."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    n_shards = -(-count // SHARD_SIZE)
    done = {p.name for p in list_shards(out_dir)}
    jobs = [(out_dir, i, seed, count) for i in range(n_shards) if shard_path(out_dir, i).name not in done]
    t0, rendered = time.perf_counter(), 0
    with mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(data_dir,)) as pool:
        for n in pool.imap_unordered(_render_shard, jobs):
            rendered += n
            print(f"rendered {rendered} new samples ({len(done) * SHARD_SIZE + rendered}/{count})", flush=True)
    return rendered / max(time.perf_counter() - t0, 1e-9)
