"""Procedural skin detail as a displacement map (millimetres, + = outwards) over the face's UV tile [0, 1]^2.

Wrinkles are placed anatomically by UV position (the ICT face tile is symmetric about u = 0.5; landmark UVs:
brows v ~ 0.80, eye corners (0.315 / 0.40, 0.715), nose tip (0.5, 0.61), mouth corners (0.39 / 0.61, 0.44)).
"""
from __future__ import annotations

import cv2
import numpy as np

from ..raster import sample_bilinear

TEXTURE_SIZE = 512


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


def _mirror(curve: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - curve[:, 0], curve[:, 1]])


def wrinkle_curves(rng: np.random.Generator) -> list[tuple[np.ndarray, float, float]]:
    """(curve in UV, depth in mm, width in texture pixels) for every wrinkle of one face."""
    j = lambda s=0.01: rng.normal(0, s, 2)  # noqa: E731 - small positional jitter
    out = []
    for i in range(rng.integers(2, 6)):  # forehead lines
        v = 0.86 + 0.028 * i + rng.normal(0, 0.006)
        half = rng.uniform(0.10, 0.2)
        out.append((_curve([0.5 - half, v] + j(0.005), [0.5 + half, v] + j(0.005), rng.normal(-0.01, 0.01)),
                    rng.uniform(0.15, 0.5), rng.uniform(1.5, 3.0)))
    for side in (-1, 1):  # glabella
        if rng.random() < 0.6:
            u = 0.5 + side * rng.uniform(0.015, 0.035)
            out.append((_curve([u, 0.77], [u + side * 0.01, 0.85] + j(0.005), 0.0), rng.uniform(0.15, 0.5), 1.8))
    for mirror in (False, True):
        parts = []
        for k in range(rng.integers(2, 5)):  # crow's feet fanning out of the outer eye corner
            a = np.deg2rad(-35 + 25 * k + rng.normal(0, 6))
            start = np.array([0.285, 0.72]) + j(0.004)
            parts.append((_curve(start, start + 0.07 * np.array([-np.cos(a), np.sin(a)]), rng.normal(0, 0.01)),
                          rng.uniform(0.1, 0.35), 1.5))
        parts.append((_curve([0.32, 0.69], [0.41, 0.685] + j(0.004), -0.015), rng.uniform(0.1, 0.35), 2.0))  # under-eye
        parts.append((_curve([0.43, 0.565] + j(0.006), [0.37, 0.43] + j(0.006), 0.02), rng.uniform(0.3, 1.0), 4.0))
        parts.append((_curve([0.385, 0.425], [0.395, 0.33] + j(0.006), 0.0), rng.uniform(0.1, 0.5), 3.0))  # marionette
        out += [(_mirror(c) if mirror else c, d, w) for c, d, w in parts]
    return out


def displacement_map(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """TEXTURE_SIZE^2 float32 displacement in mm over the face UV tile, and its parameters."""
    age = float(rng.beta(1.6, 2.2))  # 0 = smooth young skin, 1 = deep wrinkles
    pore_mm = float(rng.uniform(0.01, 0.05))
    disp = np.zeros((TEXTURE_SIZE, TEXTURE_SIZE), np.float32)
    for curve, depth, width in wrinkle_curves(rng):
        if rng.random() > 0.3 + 0.7 * age:
            continue
        stroke = np.zeros_like(disp)
        cv2.polylines(stroke, [_uv_to_px(curve)], False, 1.0, thickness=1, lineType=cv2.LINE_AA, shift=4)
        stroke = cv2.GaussianBlur(stroke, (0, 0), width)
        disp -= age * depth * stroke / max(stroke.max(), 1e-6)
    pores = cv2.GaussianBlur(rng.standard_normal(disp.shape, dtype=np.float32), (0, 0), 0.8)
    relief = cv2.GaussianBlur(rng.standard_normal(disp.shape, dtype=np.float32), (0, 0), 4.0)
    disp += pore_mm * pores / pores.std() + 0.5 * pore_mm * relief / relief.std()
    return disp, {"age": age, "pore_mm": pore_mm}


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a texture over the UV tile [0, 1]^2 (v up) at N x 2 UVs -> N (x C)."""
    s = texture.shape[0] - 1
    return sample_bilinear(texture, np.column_stack([uv[:, 0] * s, (1 - uv[:, 1]) * s]), cv2.BORDER_REFLECT)
