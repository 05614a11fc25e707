"""Thin occluders: strands fall from the top of the face mask, in the colour of what lies above it. Drawn creases:
a darker line on the skin with its groove in the label, as deep as the renders' darkness-to-depth relation says."""
from __future__ import annotations

import numpy as np

from facerecon.data.augment import DARKENING_PER_PX, add_thin_occluders, draw_creases, draw_strands


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


def test_creases_darken_the_skin_where_the_label_gets_its_groove():
    image, mask = face_crop()
    skin = mask.copy()
    skin[60:100] = False  # the forehead has no detail label here (say, the hair's edge): nothing may be drawn there
    images, labels, skins = np.stack([image] * 8), np.zeros((8, 256, 256), np.float32), np.stack([skin] * 8)
    out, grooved = draw_creases(np.random.default_rng(0), images, labels, skins, 1.0)
    assert (images == image).all() and (labels == 0).all()  # the inputs are left alone
    for img, label in zip(out, grooved):
        darkening = 1 - img.mean(-1) / image.mean(-1)
        assert (np.abs(darkening[~skin]) < 1e-6).all() and (label[~skin] == 0).all()
        assert darkening.max() > 0.02 and (label <= 0).all()
        deepest = np.unravel_index(np.argmin(label), label.shape)
        assert darkening[deepest] > 0.5 * darkening.max()  # the groove is where the line is dark
        line = darkening > 0.5 * darkening.max()
        # a line c darker is a groove c / DARKENING_PER_PX deep, up to the drawn spread (20%) and the pixel rounding
        ratio = -label[line].sum() / (darkening[line].sum() / DARKENING_PER_PX)
        assert 0.4 < ratio < 2.0, ratio


def test_creases_take_their_darkness_from_the_range_given():
    image, mask = face_crop()
    images, labels, skins = np.stack([image] * 8), np.zeros((8, 256, 256), np.float32), np.stack([mask] * 8)
    out, _ = draw_creases(np.random.default_rng(0), images, labels, skins, 1.0, darkening=(0.1, 0.1))
    darkest = [1 - (img.mean(-1) / image.mean(-1)).min() for img in out]
    # 10% at a crease's middle, up to 19% where two cross (and the rounding to uint8)
    assert all(0.09 < d < 0.2 for d in darkest), darkest


def test_no_creases_without_a_labelled_skin_or_at_prob_zero():
    image, mask = face_crop()
    images, labels = np.stack([image] * 4), np.zeros((4, 256, 256), np.float32)
    rng = np.random.default_rng(0)
    out, grooved = draw_creases(rng, images, labels, np.zeros((4, 256, 256), bool), 1.0)
    assert (out == images).all() and (grooved == 0).all()  # a real photo: no detail label, no creases
    state = rng.bit_generator.state
    out, grooved = draw_creases(rng, images, labels, np.stack([mask] * 4), 0.0)
    assert (out == images).all() and (grooved == 0).all() and rng.bit_generator.state == state
