"""Pseudo-labels for real photos: MediaPipe Face Mesh rasterised into a face mask and a coarse depth map.

The 468 landmarks (x, y in image pixels, z scaled like x) are moved into the inference crop with the same
similarity transform as the photo, and the canonical mesh's 898 triangles are ray cast at every crop pixel.
No detail label: the detail loss is off for these samples (valid bit 1 is never set). Instead bit 2 marks the skin
where the photo's fine shading can tell relief (shading_region): the training's shading loss reads it there.

Face Mesh ends mid-forehead, below the hairline that bounds the face region of the synthetic labels: the mask label
grows the forehead up from its top edge through skin of the forehead's colour and smoothness (grow_forehead), and
leaves the hairline's few pixels unlabelled (shards.MASK_UNLABELLED: no mask loss there). Without it the network
learnt to cut real faces across the forehead; merely leaving the band above Face Mesh unlabelled did not unlearn
that.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import FaceReconError
from ..preprocess.align import CROP_SIZE, FRAMING, Framing, affine_scale, apply_affine, crop_affine, warp_to_crop
from ..preprocess.detect import FaceDetector
from ..preprocess.image_io import load_image
from ..surface.raster import cast_pixels
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


# The labels' version, written into every shard (shards.write_shard); the history is in docs/training.md, "Data":
# 5 = real_v5, the forehead grown through pixels of the forehead's and the cheeks' colour as smooth as skin.
# 6 = real_v6, as 5 plus the shading region (valid bit 2).
LABEL_VERSION = 6
FOREHEAD_REACH = 0.2  # height of the band searched for the forehead's top, in units of the mask's height
SKIN_DISTANCE = 3.5  # Mahalanobis distance (YCrCb) from a reference skin colour beyond which a pixel is not skin
SKIN_TEXTURE = 1.4  # fine luminance texture, in units of the face region's median, above which a pixel is hair
HAIRLINE_OPENING = 15  # columns: narrower peaks of the grown forehead (strands of a fringe) are cut off
HAIRLINE_MARGIN = 3  # crop px left unlabelled above the grown forehead: a hairline is soft
# Face Mesh landmark ids of the parts whose dark and bright lines are not the skin's relief: eyes with their lashes,
# brows, lips, the nostrils (the lower nose), each grown by some crop px (shading_region). Eyes, brows and lips are
# MediaPipe's FACEMESH_RIGHT_EYE, ... FACEMESH_LIPS (outer contour) sets, written out: its solutions API is not
# imported for a list of ids; MediaPipe has no set for the nostrils.
NOT_SKIN_PARTS = {  # ids: (landmarks, px grown)
    "right_eye": ((33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246), 5),
    "left_eye": ((263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466), 5),
    "right_brow": ((46, 53, 52, 65, 55, 70, 63, 105, 66, 107), 5),
    "left_brow": ((276, 283, 282, 295, 285, 300, 293, 334, 296, 336), 5),
    "lips": ((61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146), 3),
    "nostrils": ((48, 64, 98, 97, 2, 326, 327, 294, 278, 4), 2),
}
SHADING_RIM = 6  # crop px of the face region's rim left out: the outline's own shading and the background's


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


def skin_like(ycc: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """S x S bool: the pixels of ycc (S x S x 3, YCrCb) within SKIN_DISTANCE of reference's (N x 3) colours."""
    centred = ycc - reference.mean(0)
    precision = np.linalg.inv(np.cov(reference.T) + 4 * np.eye(3))  # + 2 levels of noise in each channel
    return np.einsum("...i,ij,...j->...", centred, precision, centred) < SKIN_DISTANCE ** 2


def rough_texture(luminance: np.ndarray, region: np.ndarray) -> np.ndarray:
    """S x S bool: where the fine luminance texture is SKIN_TEXTURE times the region's median or more: hair, beard,
    stubble. luminance: S x S float32 (0-255); region: S x S bool, mostly skin."""
    texture = cv2.medianBlur(np.abs(luminance - cv2.GaussianBlur(luminance, (0, 0), 1.0)), 5)
    return texture > SKIN_TEXTURE * (np.median(texture[region]) + 0.5)  # + 0.5: a level of noise on smooth crops


def shading_region(image: np.ndarray, region: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """S x S bool: the skin of the face region (Face Mesh's and the grown forehead, where forehead lines are) whose
    fine shading is the relief's: without the eyes, brows, lips and nostrils (NOT_SKIN_PARTS), hair and beard
    (areas of rough_texture, grown by 2 px) and a rim of SHADING_RIM px. image: S x S x 3 uint8 RGB crop; region:
    S x S bool; verts: (468, 2+) Face Mesh in crop pixels."""
    keep = cv2.erode(region.astype(np.uint8), np.ones((2 * SHADING_RIM + 1,) * 2, np.uint8))
    for ids, grow in NOT_SKIN_PARTS.values():
        part = np.zeros_like(keep)
        cv2.fillConvexPoly(part, cv2.convexHull(np.round(verts[list(ids), :2]).astype(np.int32)), 1)
        keep &= 1 - cv2.dilate(part, np.ones((2 * grow + 1,) * 2, np.uint8))
    luminance = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)[..., 0].astype(np.float32)
    # strands and stubble fill areas; a crease is a line of rough texture up to ~6 px wide, which the erosion drops
    hair = cv2.dilate(cv2.erode(rough_texture(luminance, region).astype(np.uint8), np.ones((7, 7), np.uint8)),
                      np.ones((11, 11), np.uint8))
    return (keep & (1 - hair)).astype(bool)


def grow_forehead(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(forehead, unlabelled), S x S bool each: the skin above Face Mesh's region, which ends mid-forehead, up to
    the hairline; and a margin of HAIRLINE_MARGIN px above it. image: S x S x 3 uint8 RGB; mask: Face Mesh's region.

    In each column of forehead_band the forehead grows up from the region's top edge while the pixels keep the
    colour of the region's upper forehead and of its cheeks and are as smooth as skin (hair of the skin's colour, a
    blond fringe, has strands); the columns' heights are median-filtered across the forehead and lose peaks
    narrower than HAIRLINE_OPENING columns."""
    band = forehead_band(mask)
    forehead, unlabelled = np.zeros_like(band), np.zeros_like(band)
    cols = np.flatnonzero(band.any(0))
    if not len(cols):
        return forehead, unlabelled
    rows = np.flatnonzero(mask.any(1))
    top, height = rows[0], rows[-1] - rows[0]
    r = np.arange(mask.shape[0])[:, None]
    ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    # the upper forehead's colour, and the cheeks' too: a fringe can cover the top of Face Mesh's region
    skin = (skin_like(ycc, ycc[mask & (r < top + 0.12 * height)])
            & skin_like(ycc, ycc[mask & (r >= top + 0.45 * height) & (r < top + 0.65 * height)]))
    rough = rough_texture(ycc[..., 0], mask)
    # strands fill whole areas; a lone edge (the hairline itself) leaves a line of 1-2 px, which the erosion drops
    skin &= ~cv2.erode(rough.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    skin = cv2.medianBlur(skin.astype(np.uint8), 5).astype(bool) & band
    first = mask[:, cols].argmax(0)
    grown = np.array([np.cumprod(skin[:f, c][::-1]).sum() for c, f in zip(cols, first)]).astype(np.uint8)[None]
    if len(cols) >= 9:
        grown = cv2.medianBlur(grown, 9)
    grown = cv2.morphologyEx(grown, cv2.MORPH_OPEN, np.ones((1, HAIRLINE_OPENING), np.uint8),
                             borderType=cv2.BORDER_REPLICATE)[0]
    forehead[:, cols] = (r < first) & (r >= first - grown)
    unlabelled[:, cols] = (r < first - grown) & (r >= first - grown - HAIRLINE_MARGIN)
    return forehead, unlabelled & band


def label_face(rgb: np.ndarray, mesh: np.ndarray, affine: np.ndarray, triangles: np.ndarray,
               size: int = CROP_SIZE) -> dict:
    """The crop of `affine` (image -> crop, align.crop_affine) and its labels. "mask" is the face region to learn:
    Face Mesh's region with the forehead grown up to the hairline ("mask_unlabelled" says where the hairline is
    unsure); "mediapipe_region" is Face Mesh's alone, where the coarse depth is labelled; "valid_shading" the skin
    that the shading loss reads (shading_region)."""
    verts = np.column_stack([apply_affine(affine, mesh[:, :2]), mesh[:, 2] * affine_scale(affine)])
    region, coarse = rasterise_mesh(verts, triangles, size)
    image = warp_to_crop(rgb, affine, size)
    forehead, unlabelled = grow_forehead(image, region)
    return {"image": image, "mask": region | forehead, "mask_unlabelled": unlabelled, "mediapipe_region": region,
            "coarse": coarse, "detail": np.zeros((size, size), np.float32), "valid_coarse": region,
            "valid_detail": np.zeros((size, size), bool),
            "valid_shading": shading_region(image, region | forehead, verts)}


def pseudo_label_photos(photos: list[Path], out_dir: Path, split: str = "all", shard_size: int = 200,
                        framing: Framing = FRAMING) -> int:
    """Label the largest face of every photo (folders are expanded to their .jpg/.png files), its crop framed by
    `framing` (align.Framing).

    split: "train" skips the held-out photos, "heldout" keeps only them, "all" takes everything.
    """
    files = photo_files(photos, split)
    detector, triangles = FaceDetector(), canonical_triangles()
    out_dir.mkdir(parents=True, exist_ok=True)
    samples, n_shard, n = [], 0, 0
    for f in files:
        try:
            rgb = load_image(f)
            faces = detector.detect(rgb)
        except FaceReconError as e:
            print(f"skip {f}: {e}")
            continue
        if not faces:
            print(f"skip {f}: no face mesh")
            continue
        sample = label_face(rgb, faces[0].mesh, crop_affine(faces[0].landmarks5, framing), triangles)
        sample["params"] = {"source": f.name}
        samples.append(sample)
        n += 1
        if len(samples) == shard_size:
            write_shard(shard_path(out_dir, n_shard), samples, f"pseudo-labels {LABEL_VERSION}", framing)
            samples, n_shard = [], n_shard + 1
    if samples:
        write_shard(shard_path(out_dir, n_shard), samples, f"pseudo-labels {LABEL_VERSION}", framing)
    return n
