"""`python -m facerecon synth`: render N samples into shards with W worker processes; deterministic, resumable."""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from ...preprocess.align import FRAMING, Framing
from ..shards import list_shards, shard_framing, shard_path, write_shard
from ..splits import is_held_out
from .face_model import FaceModel, default_data_dir
from .render import ENGINE_VERSION, Renderer
from .textures import SkinTextures

SHARD_SIZE = 200
_renderer: Renderer | None = None


def background_photos(data_dir: Path, limit: int = 300) -> list[np.ndarray]:
    files = [f for f in sorted((data_dir / "congress").glob("*.jpg")) if not is_held_out(f.name)][:limit]
    return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]


# Thread pools inside a worker (OpenMP, OpenBLAS, open3d's raycaster) size themselves to every core of the machine:
# one worker here runs at 200% CPU, and on a 16-core machine 15 workers held the load average at 134 and wrote no
# shard in 80 s. So each worker gets its own share of the cores (sched_setaffinity), and the pools that size
# themselves at import get as many threads as that share from these variables, set before the workers start.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init(data_dir: Path, textures: Path | None, framing: Framing, started: mp.Value, workers: int) -> None:
    global _renderer
    with started.get_lock():
        k, started.value = started.value, started.value + 1
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores[k * len(cores) // workers:(k + 1) * len(cores) // workers] or [cores[k % len(cores)]])
    cv2.setNumThreads(1)
    _renderer = Renderer(FaceModel.load(data_dir / "ict_facekit" / "ict_facekit_head_f16.npz"),
                         background_photos(data_dir), skin=SkinTextures.load(textures) if textures else None,
                         framing=framing)


def sample_seed(seed: int, index: int) -> int:
    """The render seed of sample `index` of the set rendered with `seed`."""
    return seed * 10_000_000 + index


def _render_shard(job: tuple[Path, int, int, int, int]) -> int:
    out_dir, index, seed, count, shard_size = job
    first = index * shard_size
    samples = [asdict(_renderer.render(sample_seed(seed, i))) for i in range(first, min(first + shard_size, count))]
    write_shard(shard_path(out_dir, index), samples, f"synth engine {ENGINE_VERSION}", _renderer.framing)
    return len(samples)


def preview_grid(shard: Path, path: Path, rows: int = 6) -> Path:
    """image | mask | depth | detail for the first samples of a shard, as one PNG."""
    with np.load(shard) as z:
        lines = []
        for i in range(min(rows, len(z["image"]))):
            mask = z["mask"][i] == 1
            coarse, detail = z["coarse"][i].astype(np.float32), z["detail"][i].astype(np.float32)
            lo, hi = (coarse[mask].min(), coarse[mask].max()) if mask.any() else (0, 1)
            depth = np.where(mask, (coarse - lo) / max(hi - lo, 1e-6), 0)
            spread = np.percentile(np.abs(detail[mask]), 98) if mask.any() else 1
            det = np.where(mask, 0.5 + 0.5 * detail / max(spread, 1e-6), 0)
            grey = [np.repeat((np.clip(a, 0, 1) * 255).astype(np.uint8)[..., None], 3, 2)
                    for a in (mask.astype(float), depth, det)]
            lines.append(np.concatenate([z["image"][i], *grey], axis=1))
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(lines, axis=0), cv2.COLOR_RGB2BGR))
    return path


def synthesise(out_dir: Path, count: int, seed: int, workers: int, data_dir: Path | None = None,
               shard_size: int = SHARD_SIZE, textures: Path | None = None, framing: Framing = FRAMING) -> float:
    """Render `count` samples; shards already on disk are kept (resume). Returns samples per second.

    Sample i of the run is rendered from seed * 10^7 + i, whichever worker renders it: the output depends on
    (seed, count, shard_size, textures, framing) only. textures: a SkinTextures file (`python -m facerecon
    textures`); framing: how each crop is fitted to its landmarks (align.Framing)."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    n_shards = -(-count // shard_size)
    existing = list_shards(out_dir)
    done = {p.name for p in existing}
    other = {shard_framing(p) for p in existing} - {framing}
    if other:  # a run resumed with another framing would leave shards that cannot be trained on together
        raise ValueError(f"{out_dir} holds shards of another framing ({other.pop()}): render into a new folder")
    jobs = [(out_dir, i, seed, count, shard_size) for i in range(n_shards) if shard_path(out_dir, i).name not in done]
    t0, rendered = time.perf_counter(), 0
    ctx = mp.get_context("spawn")
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, str(max(1, len(os.sched_getaffinity(0)) // workers))))
    try:
        pool = ctx.Pool(workers, initializer=_init, initargs=(data_dir, textures, framing, ctx.Value("i", 0), workers))
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v
    with pool:
        for n in pool.imap_unordered(_render_shard, jobs):
            rendered += n
            print(f"rendered {rendered} new samples ({len(done) * shard_size + rendered}/{count})", flush=True)
    return rendered / max(time.perf_counter() - t0, 1e-9)
