"""Training shards on disk: one .npz per shard, written atomically, so an interrupted run resumes shard by shard.

Arrays per shard of N samples at S x S: image (N,S,S,3) uint8, mask (N,S,S) uint8 (1 face, 0 not, MASK_UNLABELLED
where a pseudo-label does not say: no mask loss there), coarse and detail (N,S,S)
float16 (crop pixels, docs/representation.md), valid (N,S,S) uint8 with bit 0 = coarse valid, bit 1 = detail valid,
bit 2 = skin whose fine shading is the relief's (pseudo-labels 6 and later: the shading loss reads the photo there),
params (N,) JSON strings, and source: what made the shard and its version (e.g. "synth engine 5"), so that a run
can say what it trained on. Shards written before the source existed have none (shard_source gives "unknown").
framing: how the crops were fitted to their landmarks (align.Framing as [w_1 .. w_5, scale]); shards without one
were framed by the template (every landmark alike), as all were before it was written.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..preprocess.align import TEMPLATE_FRAMING, Framing

VALID_COARSE, VALID_DETAIL, VALID_SHADING = 1, 2, 4
MASK_UNLABELLED = 2


def shard_path(out_dir: Path, index: int) -> Path:
    return Path(out_dir) / f"shard_{index:05d}.npz"


def write_shard(path: Path, samples: list[dict], source: str, framing: Framing = TEMPLATE_FRAMING) -> None:
    arrays = {
        "source": np.array(source),
        "framing": np.array(framing.to_list()),
        "image": np.stack([s["image"] for s in samples]).astype(np.uint8),
        "mask": np.stack([np.where(s.get("mask_unlabelled", False), MASK_UNLABELLED, s["mask"])
                          for s in samples]).astype(np.uint8),
        "coarse": np.stack([s["coarse"] for s in samples]).astype(np.float16),
        "detail": np.stack([s["detail"] for s in samples]).astype(np.float16),
        "valid": np.stack([s["valid_coarse"] * VALID_COARSE + s["valid_detail"] * VALID_DETAIL
                           + s.get("valid_shading", False) * VALID_SHADING for s in samples]).astype(np.uint8),
        "params": np.array([json.dumps(s["params"]) for s in samples]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def list_shards(data_dir: Path) -> list[Path]:
    return sorted(Path(data_dir).glob("shard_*.npz"))


def shard_source(path: Path) -> str:
    with np.load(path) as z:
        return str(z["source"]) if "source" in z.files else "unknown"


def shard_framing(path: Path) -> Framing:
    with np.load(path) as z:
        return Framing.from_list(z["framing"].tolist()) if "framing" in z.files else TEMPLATE_FRAMING
