"""Procedural skin detail as a displacement map (millimetres, + = outwards) over the face's UV tile [0, 1]^2.

Wrinkles are placed anatomically by UV position (the ICT face tile is symmetric about u = 0.5; landmark UVs:
brows v ~ 0.80, eye corners (0.315 / 0.40, 0.715), nose tip (0.5, 0.61), mouth corners (0.39 / 0.61, 0.44)).
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ...surface.raster import sample_bilinear
from .appearance import smooth_noise

TEXTURE_SIZE = 256  # texels across the face tile (the crop shows the tile at about one texel per pixel)
# the cheek's bulge beside a nasolabial fold: its offset to the cheek side and width (UV units), and its height as a
# share of the fold's depth
CHEEK_BULGE = (0.008, 0.008, (0.5, 1.0))
PORE_UV, RELIEF_UV = 0.8 / 512, 4.0 / 512  # correlation lengths of pores and micro-relief, in UV units


def _uv_to_px(points: np.ndarray) -> np.ndarray:
    """UV (v up) -> texture pixel coordinates (row 0 at v = 1), as int32 polyline points (4x sub-pixel shift)."""
    p = np.asarray(points, np.float64)
    xy = np.column_stack([p[:, 0] * (TEXTURE_SIZE - 1), (1 - p[:, 1]) * (TEXTURE_SIZE - 1)])
    return np.round(xy * 16).astype(np.int32)


def _curve(p0, p1, bend: float, n: int = 12) -> np.ndarray:
    """Quadratic curve from p0 to p1 bulging by `bend` (UV units) to the left of the direction of travel."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    mid = (p0 + p1) / 2 + bend * np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9)
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * t * (1 - t) * mid + t ** 2 * p1


def _side(curve: np.ndarray, offset: float) -> np.ndarray:
    """Per point of the curve, the shift of `offset` (UV units) to the left of its direction of travel."""
    d = np.gradient(curve, axis=0)
    left = np.column_stack([-d[:, 1], d[:, 0]])
    return offset * left / np.maximum(np.linalg.norm(left, axis=1, keepdims=True), 1e-12)


def _mirror(curve: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - curve[:, 0], curve[:, 1]])


def wrinkle_curves(rng: np.random.Generator) -> list[tuple[np.ndarray, float, float]]:
    """(curve in UV, depth in mm (negative: a bulge), width in UV units) for every wrinkle of one face."""
    j = lambda s=0.01: rng.normal(0, s, 2)  # noqa: E731 - small positional jitter
    out = []
    for i in range(rng.integers(2, 6)):  # forehead lines
        v = 0.86 + 0.028 * i + rng.normal(0, 0.006)
        half = rng.uniform(0.10, 0.2)
        out.append((_curve([0.5 - half, v] + j(0.005), [0.5 + half, v] + j(0.005), rng.normal(-0.01, 0.01)),
                    rng.uniform(0.15, 0.5), rng.uniform(0.003, 0.006)))
    for side in (-1, 1):  # glabella
        if rng.random() < 0.6:
            u = 0.5 + side * rng.uniform(0.015, 0.035)
            out.append((_curve([u, 0.77], [u + side * 0.01, 0.85] + j(0.005), 0.0), rng.uniform(0.15, 0.5), 0.0035))
    for mirror in (False, True):
        parts = []
        for k in range(rng.integers(2, 5)):  # crow's feet fanning out of the outer eye corner
            a = np.deg2rad(-35 + 25 * k + rng.normal(0, 6))
            start = np.array([0.285, 0.72]) + j(0.004)
            parts.append((_curve(start, start + 0.07 * np.array([-np.cos(a), np.sin(a)]), rng.normal(0, 0.01)),
                          rng.uniform(0.1, 0.35), 0.003))
        # under-eye
        parts.append((_curve([0.32, 0.69], [0.41, 0.685] + j(0.004), -0.015), rng.uniform(0.1, 0.35), 0.004))
        # nasolabial fold, and the cheek's bulge beside it: a real fold is a step up to a lit cheek more than a
        # groove with like sides (benchmarks/forehead_lines.py); negative depth = outwards
        fold = _curve([0.43, 0.565] + j(0.006), [0.37, 0.43] + j(0.006), 0.02)
        depth = rng.uniform(0.3, 1.0)
        offset, width, height = CHEEK_BULGE
        parts += [(fold, depth, 0.008), (fold + _side(fold, -offset), -depth * rng.uniform(*height), width)]
        # marionette
        parts.append((_curve([0.385, 0.425], [0.395, 0.33] + j(0.006), 0.0), rng.uniform(0.1, 0.5), 0.006))
        out += [(_mirror(c) if mirror else c, d, w) for c, d, w in parts]
    return out


def displacement_map(rng: np.random.Generator, footprint: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """TEXTURE_SIZE^2 float32 displacements in mm over the face UV tile: the whole relief, its wrinkles alone,
    and their parameters.

    The whole relief (wrinkles, pores, micro-relief) shades the photo; the detail label carries the wrinkles only.
    Pores and micro-relief are random speckle a few hundredths of a crop pixel deep: in one photo their shading
    cannot be told apart from the skin colour's own speckle (the portrait skin textures are photographed skin), so
    a label holding them asks for a guess that no photo supports.

    footprint: one crop pixel's size in texels. The maps are band-limited to it (a Gaussian of sigma footprint / 2
    stands in for the pixel's area), so a crop pixel's sample is the relief that pixel can show; pores far below a
    pixel average out instead of aliasing into noise. The filter is folded into each layer's own blur."""
    pixel = 0.5 * footprint
    age = float(rng.beta(1.6, 2.2))  # 0 = smooth young skin, 1 = deep wrinkles
    pore_mm = float(rng.uniform(0.01, 0.05))
    layers: dict[float, np.ndarray] = {}  # wrinkle width (texels, quantised) -> its strokes, blurred once
    for curve, depth, width in wrinkle_curves(rng):
        if rng.random() > 0.3 + 0.7 * age:
            continue
        w = max(0.5, round(width * TEXTURE_SIZE * 2) / 2)
        layer = layers.setdefault(w, np.zeros((TEXTURE_SIZE, TEXTURE_SIZE), np.float32))
        # a line of cross-section integral sqrt(2 pi) w D blurred by sigma w has peak D (a Gaussian groove)
        cv2.polylines(layer, [_uv_to_px(curve)], False, age * depth * w * np.sqrt(2 * np.pi), thickness=1,
                      lineType=cv2.LINE_AA, shift=4)
    wrinkles = np.zeros((TEXTURE_SIZE, TEXTURE_SIZE), np.float32)
    for w, layer in layers.items():
        wrinkles -= cv2.GaussianBlur(layer, (0, 0), float(np.hypot(w, pixel)))
    disp = wrinkles.copy()
    for sigma_uv, amplitude in ((PORE_UV, pore_mm), (RELIEF_UV, 0.5 * pore_mm)):
        # a random field of correlation length sigma and std A, seen through the pixel: std A sigma / hypot(...)
        sigma = sigma_uv * TEXTURE_SIZE
        seen = float(np.hypot(sigma, pixel))
        disp += amplitude * sigma / seen * smooth_noise(rng, disp.shape, seen)
    return disp, wrinkles, {"age": age, "pore_mm": pore_mm, "footprint_texels": float(footprint)}


def displaced_hits(points: np.ndarray, normals: np.ndarray, toward: np.ndarray, disp: np.ndarray,
                   project: Callable[[np.ndarray], np.ndarray], samples: int = 8,
                   refinements: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel's ray first meets the displaced surface: distance t from the base hit towards the camera.

    points, normals, toward: N x 3 base hits, unit normals and unit vectors to the camera (any one frame);
    disp: S x S displacement along the normal of the base point each crop pixel sees (units of points);
    project: N x 3 points -> N x 2 crop pixels. The displaced surface is p' + disp(p') n over the base's tangent
    plane at p (exact for a base that is flat at the scale of the displacement): the ray point p + t w lies on it
    where g(t) = t (w.n) - disp(p') = 0 with p' = p + t (w - (w.n) n). The first hit from the camera is the
    largest root: g is sampled from the largest possible t down (bounds from the displacement within reach,
    where another ridge could cut the ray), and the first bracket is refined by regula falsi.
    Returns t and its residual |g(t)| / (w.n) (inf where the relief lies outside the crop)."""
    wn = np.maximum((toward * normals).sum(1), 0.05)
    slide = toward - wn[:, None] * normals  # p' moves along the tangent plane by t * slide
    pixels = project(points)
    reach = np.ones((13, 13), np.uint8)  # 6 px: as far as p' moves for 1 px of relief seen at w.n = 0.3
    hi = sample_bilinear(cv2.dilate(disp, reach), pixels) / wn
    lo = sample_bilinear(cv2.erode(disp, reach), pixels) / wn
    g = lambda t: t * wn - sample_bilinear(disp, project(points + t[:, None] * slide))  # noqa: E731
    t_above, g_above = hi.copy(), g(hi)
    t_below, g_below = lo.copy(), np.zeros_like(hi)
    found = np.zeros(len(points), bool)
    for k in range(1, samples):
        t_k = hi + (lo - hi) * k / (samples - 1)
        g_k = g(t_k)
        first = ~found & ((g_k <= 0) | (k == samples - 1))  # g(lo) <= 0 up to rounding
        t_below[first], g_below[first] = t_k[first], g_k[first]
        found |= first
        above = ~found
        t_above[above], g_above[above] = t_k[above], g_k[above]
    for step in range(refinements + 1):
        t = t_above - g_above * (t_below - t_above) / np.where(g_below != g_above, g_below - g_above, 1)
        if step == refinements:
            break
        g_t = g(t)
        up = g_t > 0
        t_above, g_above = np.where(up, t, t_above), np.where(up, g_t, g_above)
        t_below, g_below = np.where(up, t_below, t), np.where(up, g_below, g_t)
    seen = project(points + t[:, None] * slide)
    residual = np.abs(t * wn - sample_bilinear(disp, seen)) / wn
    residual[~((seen >= 0) & (seen <= disp.shape[0] - 1)).all(1)] = np.inf  # the hit's relief lies outside the crop
    return t.astype(np.float32), residual.astype(np.float32)


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a texture over the UV tile [0, 1]^2 (v up) at N x 2 UVs -> N (x C)."""
    s = texture.shape[0] - 1
    return sample_bilinear(texture, np.column_stack([uv[:, 0] * s, (1 - uv[:, 1]) * s]), cv2.BORDER_REFLECT)
