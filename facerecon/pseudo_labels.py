"""Pseudo-labels for real photos: MediaPipe Face Mesh rasterised into a face mask and a coarse depth map.

The 468 landmarks (x, y in image pixels, z scaled like x) are moved into the inference crop with the same
similarity transform as the photo, and the canonical mesh's 898 triangles are ray cast at every crop pixel.
No detail label: the detail loss is off for these samples (valid bit 1 is never set).

Face Mesh ends mid-forehead, below the hairline that bounds the face region of the synthetic labels. A band above
its top edge is stored as unlabelled (shards.MASK_UNLABELLED): no mask loss there, so the renders alone teach how far
up the face goes, and on real photos the mask and mesh are not cut across the forehead.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .align import CROP_SIZE, affine_scale, apply_affine, crop_affine, warp_to_crop
from .detect import FaceDetector
from .errors import FaceReconError
from .image_io import load_image
from .raster import cast_pixels
from .shards import shard_path, write_shard
from .splits import photo_files
from .synth.face_model import default_data_dir


def canonical_triangles(data_dir: Path | None = None) -> np.ndarray:
    """(898, 3) vertex ids of MediaPipe's canonical face mesh (0-based)."""
    path = Path(data_dir or default_data_dir()) / "mediapipe_canonical" / "canonical_face_model.obj"
    faces = [[int(t.split("/")[0]) - 1 for t in line.split()[1:4]]
             for line in path.read_text().splitlines() if line.startswith("f ")]
    return np.array(faces, np.int64)


def rasterise_mesh(verts: np.ndarray, triangles: np.ndarray, size: int = CROP_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Face Mesh vertices in crop pixels (x, y, depth) -> (mask: size x size bool, coarse depth: zero mean over
    the mask, 0 outside)."""
    _, cast = cast_pixels(verts, triangles, size)
    mask = cast["hit"].reshape(size, size)
    depth = np.nan_to_num(cast["depth"].reshape(size, size))
    coarse = np.where(mask, depth - depth[mask].mean(), 0) if mask.any() else depth
    return mask, coarse.astype(np.float32)


FOREHEAD_REACH = 0.2  # height of the unlabelled band, in units of the mask's height (chin to top)


def forehead_band(mask: np.ndarray, reach: float = FOREHEAD_REACH) -> np.ndarray:
    """S x S bool: the pixels up to reach x the mask's height above its top edge, over the forehead's width (the
    columns the top quarter of the mask spans). Rows grow downwards (crop pixels, the face upright)."""
    rows = np.flatnonzero(mask.any(1))
    band = np.zeros_like(mask, dtype=bool)
    if not len(rows):
        return band
    top, height = rows[0], rows[-1] - rows[0] + 1
    cols = np.flatnonzero(mask[top:top + height // 4].any(0))
    first = mask[:, cols].argmax(0)  # each column's top edge
    r = np.arange(mask.shape[0])[:, None]
    band[:, cols] = (r < first) & (r >= first - reach * height)
    return band


def label_face(rgb: np.ndarray, mesh: np.ndarray, landmarks5: np.ndarray, triangles: np.ndarray,
               size: int = CROP_SIZE) -> dict:
    affine = crop_affine(landmarks5)
    verts = np.column_stack([apply_affine(affine, mesh[:, :2]), mesh[:, 2] * affine_scale(affine)])
    mask, coarse = rasterise_mesh(verts, triangles, size)
    return {"image": warp_to_crop(rgb, affine, size), "mask": mask, "coarse": coarse,
            "mask_unlabelled": forehead_band(mask),
            "detail": np.zeros((size, size), np.float32), "valid_coarse": mask,
            "valid_detail": np.zeros((size, size), bool), "crop_affine": affine}


def pseudo_label_photos(photos: list[Path], out_dir: Path, split: str = "all", shard_size: int = 200) -> int:
    """Label the largest face of every photo (folders are expanded to their .jpg/.png files).

    split: "train" skips the held-out photos, "heldout" keeps only them, "all" takes everything.
    """
    files = photo_files(photos, split)
    detector, triangles = FaceDetector(), canonical_triangles()
    out_dir.mkdir(parents=True, exist_ok=True)
    samples, n_shard, n = [], 0, 0
    for f in files:
        try:
            rgb = load_image(f)
            faces = [d for d in detector(rgb) if d.mesh is not None]
        except FaceReconError as e:
            print(f"skip {f}: {e}")
            continue
        if not faces:
            print(f"skip {f}: no face mesh")
            continue
        sample = label_face(rgb, faces[0].mesh, faces[0].landmarks5, triangles)
        sample["params"] = {"source": f.name}
        del sample["crop_affine"]
        samples.append(sample)
        n += 1
        if len(samples) == shard_size:
            write_shard(shard_path(out_dir, n_shard), samples)
            samples, n_shard = [], n_shard + 1
    if samples:
        write_shard(shard_path(out_dir, n_shard), samples)
    return n
