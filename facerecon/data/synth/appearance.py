"""Procedural appearance: skin albedo over the face UV tile, eyes, hair, backgrounds, occluders."""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

# sRGB skin tones from very light to very dark (0..1).
SKIN_TONES = np.array([[0.94, 0.78, 0.69], [0.89, 0.70, 0.59], [0.80, 0.60, 0.47], [0.69, 0.49, 0.36],
                       [0.55, 0.37, 0.25], [0.40, 0.26, 0.18], [0.27, 0.18, 0.12]])
HAIR_COLOURS = np.array([[0.05, 0.04, 0.03], [0.18, 0.11, 0.06], [0.35, 0.22, 0.12], [0.65, 0.50, 0.30],
                         [0.55, 0.55, 0.55], [0.45, 0.18, 0.08]])
IRIS_COLOURS = np.array([[0.25, 0.14, 0.06], [0.12, 0.07, 0.03], [0.25, 0.40, 0.55], [0.30, 0.38, 0.22]])


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Unit-variance noise of correlation length sigma (uniform white noise: 3x faster to draw than normal, and
    as Gaussian as normal noise once blurred over a few pixels)."""
    n = cv2.GaussianBlur(rng.random(shape, dtype=np.float32) - np.float32(0.5), (0, 0), sigma)
    return n / max(float(n.std()), 1e-6)


@lru_cache(maxsize=2)
def _skin_regions(size: int) -> dict[str, np.ndarray]:
    """Soft masks (size x size x 1, float32) of the fixed places in the face UV tile: cheeks, lips, brows, chin."""
    u, v = np.meshgrid(np.linspace(0, 1, size), np.linspace(1, 0, size))
    blob = lambda cu, cv, su, sv: np.exp(-((u - cu) / su) ** 2 - ((v - cv) / sv) ** 2)  # noqa: E731
    brows = sum(blob(cu, 0.815 + 0.02 * (u - cu) ** 2, 0.085, 0.014) for cu in (0.36, 0.64))
    masks = {"cheeks": blob(0.34, 0.56, 0.07, 0.06) + blob(0.66, 0.56, 0.07, 0.06),
             "lips": np.clip(1.6 * blob(0.5, 0.445, 0.095, 0.03), 0, 1), "brows": brows,
             "beard": np.clip((0.47 - v) * 8, 0, 1)}
    return {k: m[..., None].astype(np.float32) for k, m in masks.items()}


def skin_albedo(rng: np.random.Generator, size: int = 256,
                base: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(size x size x 3 albedo over the face UV tile (row 0 at v = 1), base skin colour, parameters).

    base: the skin colour to build on (e.g. a portrait texture's mean); None = drawn from SKIN_TONES."""
    if base is None:
        t = rng.uniform(0, len(SKIN_TONES) - 1)
        i = int(t)
        base = SKIN_TONES[i] + (t - i) * (SKIN_TONES[min(i + 1, len(SKIN_TONES) - 1)] - SKIN_TONES[i])
    base = np.clip(base * rng.normal(1, 0.04, 3), 0, 1)
    region = _skin_regions(size)
    tex = np.ones((size, size, 3), np.float32) * base.astype(np.float32)
    tex *= 1 + 0.06 * smooth_noise(rng, (size, size), 12)[..., None]
    tex *= 1 + 0.03 * smooth_noise(rng, (size, size), 1.5)[..., None]
    redness = rng.uniform(0, 0.25) * region["cheeks"]
    tex = tex * (1 - redness) + redness * tex * np.float32([1.15, 0.8, 0.8])
    lips = region["lips"] * rng.uniform(0.4, 0.9)
    lip_colour = base * [0.85, 0.55, 0.55] * rng.uniform(0.8, 1.0)
    tex = tex * (1 - lips) + lips * lip_colour.astype(np.float32)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
    hair32 = hair.astype(np.float32)
    brow = region["brows"] * rng.uniform(0.5, 1.0)
    brow *= np.clip(0.7 + 0.5 * smooth_noise(rng, (size, size), 0.8)[..., None], 0, 1)
    tex = tex * (1 - brow) + brow * hair32
    if rng.random() < 0.2:  # stubble
        beard = region["beard"] * rng.uniform(0.2, 0.5)
        beard *= np.clip(0.6 + 0.6 * smooth_noise(rng, (size, size), 0.7)[..., None], 0, 1)
        tex = tex * (1 - beard) + beard * hair32
    return np.clip(tex, 0, 1).astype(np.float32), base, {"skin": base.tolist(), "hair": hair.tolist()}


def background(rng: np.random.Generator, size: int, photos: list[np.ndarray]) -> np.ndarray:
    """size x size x 3 float background: a zoomed patch of a real photo, or a lit gradient with texture."""
    if photos and rng.random() < 0.6:
        img = photos[rng.integers(len(photos))]
        h, w = img.shape[:2]
        side = int(rng.uniform(0.15, 0.6) * min(h, w))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        patch = cv2.resize(img[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_LINEAR)
        out = patch.astype(np.float32) / 255
        if rng.random() < 0.5:
            out = out[:, ::-1]
        return np.ascontiguousarray(cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 3)))
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size
    t = np.clip((np.cos(a) * xx + np.sin(a) * yy + 1) / 2, 0, 1)[..., None]
    out = c0 * (1 - t) + c1 * t
    out *= 1 + rng.uniform(0, 0.3) * smooth_noise(rng, (size, size), rng.uniform(1, 20))[..., None]
    return np.clip(out, 0, 1).astype(np.float32)


def draw_glasses(rng: np.random.Generator, canvas: np.ndarray, eyes: np.ndarray) -> np.ndarray:
    """Draw glasses rims around the two eye centres (crop pixels); returns the rim mask (bool)."""
    rim = np.zeros(canvas.shape[:2], np.uint8)
    iod = np.linalg.norm(eyes[1] - eyes[0])
    angle = np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1]))
    axes = (int(iod * rng.uniform(0.38, 0.5)), int(iod * rng.uniform(0.26, 0.38)))
    thick = int(rng.integers(1, 4))
    for e in eyes:
        cv2.ellipse(rim, (int(e[0]), int(e[1])), axes, angle, 0, 360, 1, thick, cv2.LINE_AA)
    inner = (eyes[0] + [axes[0], 0], eyes[1] - [axes[0], 0])
    cv2.line(rim, tuple(int(c) for c in inner[0]), tuple(int(c) for c in inner[1]), 1, thick)
    for e, s in ((eyes[0], -1), (eyes[1], 1)):
        p0 = e + [s * axes[0], 0]
        cv2.line(rim, tuple(int(c) for c in p0), tuple(int(c) for c in p0 + [s * iod * 0.4, -iod * 0.05]), 1, thick)
    colour = rng.uniform(0, 0.5, 3) if rng.random() < 0.7 else rng.uniform(0.5, 0.9, 3)
    m = rim.astype(bool)
    canvas[m] = colour
    return m


def draw_hand(rng: np.random.Generator, canvas: np.ndarray, skin: np.ndarray, size: int) -> np.ndarray:
    """A hand-like skin blob with finger stripes entering from the lower half; returns its mask (bool)."""
    m = np.zeros(canvas.shape[:2], np.uint8)
    cx, cy = rng.uniform(0.2, 0.8) * size, rng.uniform(0.75, 1.0) * size
    angle = rng.uniform(-60, 60)
    cv2.ellipse(m, (int(cx), int(cy)), (int(size * 0.16), int(size * 0.22)), angle, 0, 360, 1, -1)
    for k in range(4):
        a = np.radians(angle - 90 + (k - 1.5) * 12)
        tip = (cx + np.cos(a) * size * 0.38, cy + np.sin(a) * size * 0.38)
        cv2.line(m, (int(cx), int(cy)), (int(tip[0]), int(tip[1])), 1, int(size * 0.05))
    mask = m.astype(bool)
    shade = (1 + 0.1 * smooth_noise(rng, m.shape, 6))[..., None]
    canvas[mask] = np.clip(skin * rng.normal(1, 0.05, 3) * shade, 0, 1)[mask]
    return mask
