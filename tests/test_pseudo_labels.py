"""The real photos' mask label: Face Mesh's region with the forehead grown up to the hairline."""
from __future__ import annotations

import numpy as np

from facerecon.pseudo_labels import HAIRLINE_MARGIN, grow_forehead


def test_the_forehead_grows_through_skin_up_to_the_hairline():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    head = ((xx - 64) / 36) ** 2 + ((yy - 70) / 50) ** 2 <= 1  # rows 20-120
    image = np.full((128, 128, 3), (90, 110, 140), np.float32)  # background
    image[head] = (200, 150, 125)  # skin
    hairline = 38 + np.round(3 * np.sin(xx / 9)).astype(int)  # within the band searched: rows 30-44
    image[head & (yy < hairline)] = (60, 40, 30)  # hair
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    region = head & (yy >= 45)  # Face Mesh's region stops mid-forehead

    forehead, unlabelled = grow_forehead(image, region)

    assert not (forehead & region).any() and not (unlabelled & (forehead | region)).any()
    centre = slice(50, 79)  # columns well inside the forehead
    assert np.array_equal(forehead[:, centre], ((yy >= hairline) & (yy < 45))[:, centre])
    assert np.array_equal(unlabelled[:, centre], ((yy < hairline) & (yy >= hairline - HAIRLINE_MARGIN))[:, centre])
    assert not forehead[:, :20].any()  # beside the head: background, not grown into


def test_a_face_without_a_region_gets_no_forehead():
    forehead, unlabelled = grow_forehead(np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), bool))
    assert not forehead.any() and not unlabelled.any()
