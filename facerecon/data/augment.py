"""Drawn over training crops: thin occluders with the labels left alone, and creases with their grooves.

In the rendered data the only thin dark lines on the skin are wrinkles, so a network trained on it alone reads
every such line in a photo (a strand of hair over the forehead, a glasses frame) as a groove. Drawn over the skin
while the detail label keeps saying "no groove here", loose hair strands and glasses rims teach it otherwise; the
mask keeps the skin beneath too, as the real photos' face-region labels do.

Creases (draw_creases) are the other way round: a narrow line of darker skin, as photographed creases are (less
light reaches into them), drawn anywhere on the skin, with the groove that the renders pair with that darkness
added to the depth label. The renders' own grooves deeper than 0.3 crop px are 0.07% of their skin and sit where
wrinkles usually are; fine-tuned on them the network reads a dark line as an ever shallower groove (docs/quality.md,
"Creases drawn with their grooves").
"""
from __future__ import annotations

import cv2
import numpy as np

from ..preprocess.align import CANONICAL_LANDMARKS, CROP_SIZE
from .synth.appearance import HAIR_COLOURS, draw_glasses

_SUBPIXEL_BITS = 4  # cv2.polylines takes fixed-point coordinates: anti-aliased strands at sub-pixel positions
# How much darker than its surroundings a rendered groove is per crop px of its depth (engine 7; both against their
# blur of sigma 3 px): `python benchmarks/crease_response.py` prints 13.2% at 0.3-0.5 px, 22.3% at 0.5-1 px
DARKENING_PER_PX = 0.3
CREASE_DARKENING = (0.03, 0.25)  # share of the skin's brightness taken at a crease's middle
CREASE_SIGMA_PX = (0.6, 1.5)  # Gaussian half-width of its profile (crop px at 256)
CREASE_LENGTH_PX = (10.0, 60.0)


def draw_strands(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray) -> None:
    """Locks of loose hair falling from the top of the face mask over the forehead, in place.

    image: S x S x 3 uint8; mask: S x S bool (the face region). The strands take the colour of what lies just
    above the mask (the hair, in most crops) or a random hair colour.
    """
    s = image.shape[0]
    rows = np.flatnonzero(mask.any(1))
    if len(rows) < s // 8:
        return
    top, bottom = int(rows[0]), int(rows[-1])
    cols = np.flatnonzero(mask[top:top + (bottom - top) // 4].any(0))  # the forehead's width
    band = image[max(top - s // 32, 0):top, cols[0]:cols[-1] + 1].reshape(-1, 3)
    if len(band) and rng.random() < 0.7:
        colour = np.median(band, axis=0)
    else:
        colour = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * 255
    coverage = np.zeros((s, s), np.uint8)
    centre, spread = rng.uniform(cols[0], cols[-1]), rng.uniform(0.03, 0.2) * s
    heading, bend = np.radians(rng.uniform(40, 140)), np.radians(rng.normal(0, 4))  # 90 degrees = straight down
    thickness = 1 if rng.random() < 0.8 else 2
    for _ in range(int(rng.integers(3, 30))):
        point = np.array([centre + rng.normal(0, spread), top + rng.uniform(-0.02, 0.08) * s])
        angle, step = heading + rng.normal(0, np.radians(10)), rng.uniform(0.08, 0.3) * s / 12
        points = [point]
        for _ in range(12):
            angle += bend + rng.normal(0, np.radians(5))
            points.append(points[-1] + step * np.array([np.cos(angle), np.sin(angle)]))
        fixed = np.round(np.array(points) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
        cv2.polylines(coverage, [fixed], False, 255, thickness, cv2.LINE_AA, _SUBPIXEL_BITS)
    alpha = coverage[..., None] / 255.0 * rng.uniform(0.5, 1.0)
    tint = colour * rng.uniform(0.7, 1.2)
    image[:] = np.clip(image * (1 - alpha) + tint * alpha, 0, 255).round().astype(np.uint8)


def add_thin_occluders(rng: np.random.Generator, images: np.ndarray, masks: np.ndarray, prob: float) -> np.ndarray:
    """A copy of images (N x S x S x 3 uint8) with strands on a share prob of them and glasses on half as many."""
    images = images.copy()
    s = images.shape[1]
    eyes = CANONICAL_LANDMARKS[:2] * s / CROP_SIZE  # the crop is aligned to them, up to the detector's noise
    for image, mask in zip(images, masks):
        if rng.random() < prob:
            draw_strands(rng, image, mask.astype(bool))
        if rng.random() < prob / 2:
            canvas = image.astype(np.float32) / 255
            draw_glasses(rng, canvas, eyes + rng.normal(0, 0.015 * s, 2))
            image[:] = (canvas * 255).round().astype(np.uint8)
    return images


def draw_creases(rng: np.random.Generator, images: np.ndarray, detail: np.ndarray, skin: np.ndarray,
                 prob: float, darkening: tuple[float, float] = CREASE_DARKENING) -> tuple[np.ndarray, np.ndarray]:
    """Copies of images (N x S x S x 3 uint8) and of their depth labels detail (N x S x S, crop px at 256) with
    1-4 creases on a share prob of the crops: a gentle arc at any angle with its middle inside skin (N x S x S bool:
    the pixels whose detail is labelled; a crop with too little has none), the skin under it darkened by a share c
    (uniform in the range darkening) times a Gaussian profile across it, and a groove of the same profile,
    c / DARKENING_PER_PX crop px deep (times a spread of 20%), subtracted from the label. Both stay inside skin."""
    if prob <= 0:  # no draw from rng: a run without creases gets the batches it got before they existed
        return images, detail
    images, detail = images.copy(), detail.copy()
    s = images.shape[1]
    scale = s / 256
    for image, label, region in zip(images, detail, skin):
        if rng.random() >= prob:
            continue
        inner = cv2.erode(region.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        ys, xs = np.nonzero(inner)
        if len(ys) < 500 * scale ** 2:
            continue
        for _ in range(int(rng.integers(1, 5))):
            k = int(rng.integers(len(ys)))
            angle, length = rng.uniform(0, np.pi), rng.uniform(*CREASE_LENGTH_PX) * scale
            along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
            t = np.linspace(-0.5, 0.5, 16)[:, None]
            points = np.array([xs[k], ys[k]]) + t * length * along + rng.normal(0, 0.3) * length * (t ** 2) * across
            coverage = np.zeros((s, s), np.uint8)
            fixed = np.round(points * (1 << _SUBPIXEL_BITS)).astype(np.int32)
            cv2.polylines(coverage, [fixed], False, 255, 1, cv2.LINE_AA, _SUBPIXEL_BITS)
            profile = cv2.GaussianBlur(coverage.astype(np.float32), (0, 0), rng.uniform(*CREASE_SIGMA_PX) * scale)
            profile = np.where(region, profile / max(float(profile.max()), 1e-6), 0)
            c = rng.uniform(*darkening)
            depth = c / DARKENING_PER_PX * np.exp(rng.normal(0, 0.2)) * scale
            image[:] = np.clip(image * (1 - c * profile[..., None]), 0, 255).round().astype(np.uint8)
            label -= (depth * profile).astype(label.dtype)
    return images, detail
