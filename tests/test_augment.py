"""Thin occluders: strands fall from the top of the face mask, in the colour of what lies above it."""
from __future__ import annotations

import numpy as np

from facerecon.data.augment import add_thin_occluders, draw_strands


def face_crop() -> tuple[np.ndarray, np.ndarray]:
    image = np.full((256, 256, 3), 200, np.uint8)
    image[:60] = [30, 20, 10]  # dark hair above the face
    mask = np.zeros((256, 256), bool)
    mask[60:230, 60:196] = True
    return image, mask


def test_strands_cover_the_forehead_in_the_hair_colour():
    image, mask = face_crop()
    changed = np.zeros((256, 256), bool)
    for seed in range(20):
        out = image.copy()
        draw_strands(np.random.default_rng(seed), out, mask)
        diff = np.abs(out.astype(int) - image).sum(-1) > 0
        changed |= diff & mask
        darker = out[diff & mask].astype(int).sum(-1) < 600
        assert darker.all()  # blended towards the hair, never lighter than the skin
    rows = np.flatnonzero(changed.any(1))
    assert changed.sum() > 500 and rows[0] < 70  # they start at the top of the face
    assert changed[180:].sum() < changed[60:120].sum() / 10  # and mostly stay on the upper face


def test_prob_zero_leaves_images_alone_and_the_input_is_not_modified():
    image, mask = face_crop()
    images, masks = np.stack([image] * 4), np.stack([mask] * 4)
    before = images.copy()
    assert (add_thin_occluders(np.random.default_rng(0), images, masks, 0.0) == before).all()
    out = add_thin_occluders(np.random.default_rng(0), images, masks, 1.0)
    assert (images == before).all() and (out != before).any(axis=(1, 2, 3)).all()


def test_a_mask_in_pieces_gets_strands_too():
    image, mask = face_crop()
    mask[70:100] = False  # a band across the forehead (a hand, a hat brim) leaves the face in two pieces
    out = image.copy()
    draw_strands(np.random.default_rng(0), out, mask)
    assert (out != image).any()
