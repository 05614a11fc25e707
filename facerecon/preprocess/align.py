"""The crop contract: a similarity transform puts five landmarks at fixed canonical spots of a 256x256 crop.

Pixel convention (OpenCV's): integer coordinates are pixel centres; pixel (0, 0) covers [-0.5, 0.5]^2.
The 2x3 affine A maps image coordinates to crop coordinates: [u, v] = A @ [x, y, 1].
Both inference (facerecon.preprocess.detect) and the synthetic data engine call these functions, so training sees
exactly the framing that inference produces.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROP_SIZE = 256

# Order: left eye centre, right eye centre, nose tip, left mouth corner, right mouth corner ("left" = image left).
# The ArcFace 112x112 template scaled by 64 / 35.24 (inter-ocular distance 64 crop pixels) and moved so the nose tip
# sits at (127.5, 136): the crop keeps the forehead and the chin with a margin.
_ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]])
CANONICAL_LANDMARKS: np.ndarray = ((_ARCFACE_112 - _ARCFACE_112[2]) * (64.0 / 35.2372) + [127.5, 136.0]).astype(
    np.float64)

# Adults' eye centres are ~63 mm apart: with 64 crop pixels between canonical eyes, one crop pixel ~ 0.98 mm.
# Used only to give exported meshes plausible millimetre units.
MM_PER_CROP_PIXEL = 63.0 / 64.0


@dataclass(frozen=True)
class Framing:
    """How a crop is fitted to the five landmarks: each landmark's weight in the least-squares similarity, then a
    scale about the template's weighted centre (the crop's zoom). A model is trained and run with one framing
    (NetworkConfig.crop_framing); the shards of the data say which one framed them (facerecon.data.shards)."""

    weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
    scale: float = 1.0

    @classmethod
    def from_list(cls, values: list[float]) -> Framing:
        """From [w_1 .. w_5, scale], as config.json and the shards store it."""
        return cls(tuple(float(v) for v in values[:5]), float(values[5]))

    def to_list(self) -> list[float]:
        return [*self.weights, self.scale]


# Every landmark alike: the framing of the weights up to stage 16 (and of any config.json that does not say).
TEMPLATE_FRAMING = Framing()
# A smile moves the mouth corners, and with them every landmark's spot in a template-framed crop: the upper face of
# a person's neutral and smiling crops lay 2.05 px apart, which decorrelates relief finer than that. Fitted with
# the corners weighted 0.25 it moves 1.19 px; that fit holds faces 1.9% smaller in the crop (crop px per cm of the
# evaluation faces 10.63 against 10.83), which the scale gives back (docs/quality.md, "Framing that a smile does
# not move").
SMILE_STEADY_FRAMING = Framing((1.0, 1.0, 1.0, 0.25, 0.25), 1.019)
FRAMINGS = {"template": TEMPLATE_FRAMING, "smile-steady": SMILE_STEADY_FRAMING}  # by name, for the command line
# The bundled weights' framing: what new data (the synthetic engine, the pseudo-labels) is framed with unless told
# otherwise, so that it fine-tunes them.
FRAMING = TEMPLATE_FRAMING
# The frame of the maps facerecon returns, whatever framing its network runs on: the network's maps are warped into
# it (predictor.to_map_frame), so that the maps of a person's neutral and smiling photos hold the upper face in the
# same place (docs/quality.md, "Maps in the smile-steady frame").
MAP_FRAMING = SMILE_STEADY_FRAMING


def similarity_lstsq(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991) taking src (N x d) onto dst (N x d), each point's squared error
    weighted by `weights` (N; alike when None); returns d x (d+1).

    Written out because cv2.estimateAffinePartial2D is a robust (RANSAC/LMedS) estimator: with five exact
    landmarks we want the plain, deterministic least-squares fit.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s, d = src - mu_s, dst - mu_d
    cov = (d * w[:, None]).T @ s
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(src.shape[1])
    sign[-1, -1] = np.sign(np.linalg.det(u @ vt))
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / (w @ (s ** 2).sum(1))
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def crop_affine(landmarks5: np.ndarray, framing: Framing = FRAMING) -> np.ndarray:
    """2x3 image->crop affine for five landmarks (pixel-centre coordinates, order as CANONICAL_LANDMARKS)."""
    weights = np.asarray(framing.weights)
    affine = similarity_lstsq(landmarks5, CANONICAL_LANDMARKS, weights)
    centre = weights @ CANONICAL_LANDMARKS / weights.sum()
    affine *= framing.scale
    affine[:, 2] += (1 - framing.scale) * centre
    return affine


def crop_to_crop(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2x3 affine from one crop of a photo to another (each given by its image -> crop affine)."""
    return (np.vstack([target, [0, 0, 1]]) @ np.linalg.inv(np.vstack([source, [0, 0, 1]])))[:2]


def affine_scale(affine: np.ndarray) -> float:
    """Crop pixels per image pixel."""
    return float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))


def rescale_affine(affine: np.ndarray, k: float) -> np.ndarray:
    """The same crop at k times the resolution: pixel centres map as u' = k * (u + 0.5) - 0.5."""
    out = affine * k
    out[:, 2] += (k - 1) / 2
    return out


def warp_to_crop(image: np.ndarray, affine: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Resample image (H x W x C) through `affine` into a size x size crop; strong downscales are pre-filtered."""
    scale = affine_scale(affine)
    if scale < 0.5:  # warpAffine's bilinear sampling would alias: shrink with area averaging first
        image, affine = _area_shrunk(image, affine, int(np.ceil(0.5 / scale)), size)
    return cv2.warpAffine(image, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def shrink_by(image: np.ndarray, k: int) -> np.ndarray:
    """image averaged over k x k blocks (its last h % k rows and w % k columns left out). A whole factor: OpenCV's
    INTER_AREA has a fast path for whole factors only (any other took 5-15 ms on a 1280-px photo)."""
    h, w = image.shape[:2]
    if k == 1:
        return image
    return cv2.resize(image[:max(h - h % k, 1), :max(w - w % k, 1)], (max(1, w // k), max(1, h // k)),
                      interpolation=cv2.INTER_AREA)


def _area_shrunk(image: np.ndarray, affine: np.ndarray, k: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of image that a size x size crop reads, averaged over k x k blocks (so the warp that follows
    shrinks by 1-2x), and the affine from the shrunk pixels to the crop. Blocks on the image's k-pixel grid (shrink_by),
    so the blocks, hence the crop, do not depend on how much of the image is cut out around it."""
    h, w = image.shape[:2]
    k = min(k, h, w)
    corners = apply_affine(cv2.invertAffineTransform(affine), np.array([[-0.5, -0.5], [size, -0.5], [-0.5, size],
                                                                          [size, size]]))
    margin = 2 * k  # the warp's bilinear taps past the crop's edge
    # whole blocks of the image's k-pixel grid
    bx0, by0 = np.clip(np.floor((corners.min(0) - margin) / k), 0, [w // k - 1, h // k - 1]).astype(int)
    bx1, by1 = np.clip(np.ceil((corners.max(0) + margin) / k), [bx0 + 1, by0 + 1], [w // k, h // k]).astype(int)
    x0, y0, x1, y1 = bx0 * k, by0 * k, bx1 * k, by1 * k
    shrunk = shrink_by(image[y0:y1, x0:x1], k)
    # pixel centres: x_shrunk = (x - x0 + 0.5) / k - 0.5
    to_shrunk = np.array([[1 / k, 0, (0.5 - x0) / k - 0.5], [0, 1 / k, (0.5 - y0) / k - 0.5], [0, 0, 1]])
    return shrunk, affine @ np.linalg.inv(to_shrunk)


def invert_affine(affine: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(affine)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]
