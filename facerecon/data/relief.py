"""The split of a face's depth into coarse depth and detail by frequency (NetworkConfig.detail_band_px > 0).

The renders' labels are the undisplaced face model's depth (coarse) and the wrinkles' displacement (detail); the
median render's wrinkle label averages 0.005 crop px inside the face (benchmarks/detail_diagnosis.py), so a
network trained on it predicts almost nothing as detail, and the face model's own fine relief (eyelids, lip
contours, nostril wings) goes to the coarse head, which predicts at 1/4 resolution and is blurred. Split by
frequency, the coarse label is the total depth blurred by a Gaussian of sigma `band_px` and the detail label the
rest: each head gets the relief its resolution can carry, and the sum is the true depth either way.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

# A depth change of more than this between neighbouring face pixels (crop px per px, a slope of 72 degrees) is a
# step, where the nose hides the cheek of a turned face, not relief: the detail label is left out there and within
# 2 sigma of it, where the blur spreads the step.
MAX_SLOPE = 3.0
# The surroundings a crease's depth is measured against (crop px), about a wrinkle's width: the renderer darkens a
# crease by how far it lies below them (engine 6 on), and the shading loss expects that darkening in photos.
CAVITY_PX = 2.0


def blur_within(depth: np.ndarray, inside: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of depth (H x W) normalised over `inside` (H x W bool): pixels outside do not pull it."""
    w = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), sigma_px)
    blurred = cv2.GaussianBlur(np.where(inside, depth, 0).astype(np.float32), (0, 0), sigma_px)
    return np.where(inside, blurred / np.maximum(w, 1e-6), 0).astype(np.float32)


def cavity(relief: np.ndarray, inside: np.ndarray, sigma_px: float = CAVITY_PX) -> np.ndarray:
    """How far each pixel of relief (H x W, crop px, larger = nearer) lies below its surroundings (its blur within
    `inside`), 0 where it does not: how enclosed a crease is, so how much ambient light it loses."""
    return np.clip(blur_within(relief, inside, sigma_px) - relief, 0, None)


def split_relief(coarse: np.ndarray, detail: np.ndarray, valid_coarse: np.ndarray, valid_detail: np.ndarray,
                 band_px: float, wrinkles_whole: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coarse, detail, valid_detail) labels of one crop (H x W; depths in crop px at 256, valid masks bool) split
    at band_px: coarse = the total depth blurred within valid_coarse, detail = total - coarse, valid where the
    total is known and not beside a step (MAX_SLOPE). A crop without a detail label (a pseudo-labelled photo)
    keeps none: its coarse label is blurred alone. wrinkles_whole: only the face model's relief (coarse) is split,
    the wrinkle label (detail) goes into the detail whole."""
    inside = valid_coarse.astype(bool)
    labelled = valid_detail.astype(bool).any()
    total = (coarse + np.where(valid_detail, detail, 0)).astype(np.float32)
    smooth = blur_within(coarse if wrinkles_whole else total, inside, band_px)
    fine = np.where(inside, total - smooth, 0).astype(np.float32)
    if labelled:
        step = np.zeros(inside.shape, np.uint8)
        first, second = slice(None, -1), slice(1, None)
        for p, q in (((first, slice(None)), (second, slice(None))), ((slice(None), first), (slice(None), second))):
            step[p] |= (np.abs(total[p] - total[q]) > MAX_SLOPE) & inside[p] & inside[q]  # down, then right
        reach = 2 * int(np.ceil(2 * band_px)) + 2
        valid = inside & (cv2.dilate(step, np.ones((reach, reach), np.uint8)) == 0)
    else:
        valid = np.zeros_like(inside)
    return smooth, np.where(valid, fine, 0).astype(np.float32), valid


def relabelled(sample, band_px: float, wrinkles_whole: bool = False):
    """A rendered Sample (facerecon.data.synth.render) with its depth labels split at band_px as split_relief
    splits them (a network's NetworkConfig.detail_band_px and detail_wrinkles_whole); band_px 0 = as rendered."""
    if band_px <= 0:
        return sample
    coarse, detail, valid = split_relief(sample.coarse, sample.detail, sample.valid_coarse, sample.valid_detail,
                                         band_px, wrinkles_whole)
    return dataclasses.replace(sample, coarse=coarse, detail=detail, valid_detail=valid)
