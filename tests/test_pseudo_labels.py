"""The real photos' mask label: Face Mesh's region with the forehead grown up to the hairline."""
from __future__ import annotations

import numpy as np

from facerecon.data.pseudo_labels import HAIRLINE_MARGIN, forehead_band, grow_forehead

yy, xx = np.mgrid[:128, :128]
head = ((xx - 64) / 36) ** 2 + ((yy - 70) / 50) ** 2 <= 1  # rows 20-120
region = head & (yy >= 45)  # Face Mesh's region stops mid-forehead


def portrait(hair: np.ndarray | None = None) -> np.ndarray:
    """128 x 128 x 3 float RGB: background, skin over the head, dark hair where the head and `hair` meet."""
    image = np.full((128, 128, 3), (90, 110, 140), np.float32)
    image[head] = (200, 150, 125)
    if hair is not None:
        image[head & hair] = (60, 40, 30)
    return image


def photographed(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)


def test_the_forehead_grows_through_skin_up_to_the_hairline():
    hairline = 38 + np.round(3 * np.sin(xx / 9)).astype(int)  # within the band searched: rows 30-44
    image = photographed(portrait(hair=yy < hairline), np.random.default_rng(0))

    forehead, unlabelled = grow_forehead(image, region)

    assert not (forehead & region).any() and not (unlabelled & (forehead | region)).any()
    for c in range(50, 79):  # columns well inside the forehead: one run of rows from near the hairline down to 45
        grown, margin = np.flatnonzero(forehead[:, c]), np.flatnonzero(unlabelled[:, c])
        assert grown[-1] == 44 and len(grown) == 45 - grown[0]
        assert 0 <= grown[0] - hairline[0, c] <= 1  # a sine's crest is a little narrower than HAIRLINE_OPENING
        assert margin.tolist() == list(range(grown[0] - HAIRLINE_MARGIN, grown[0]))
    assert not forehead[:, :20].any()  # beside the head: background, not grown into


def test_a_face_without_a_region_gets_no_forehead():
    forehead, unlabelled = grow_forehead(np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), bool))
    assert not forehead.any() and not unlabelled.any()


def test_hair_of_the_skins_colour_stops_the_forehead_by_its_strands():
    """A blond fringe: within the skin's colour range (the colour rule lets it through), but with strands (fine
    texture) where skin is smooth."""
    rng = np.random.default_rng(1)
    skin = portrait()
    fringe = head & (yy < 38)
    strands = skin.copy()
    strands[fringe] += np.where(xx[fringe] % 4 < 2, 8.0, -8.0)[:, None]
    centre = slice(50, 79)

    band_top = np.flatnonzero(forehead_band(region)[:, 64])[0]
    assert band_top < 38

    for image, top in ((skin, band_top), (strands, 38)):  # without strands the forehead grows through the fringe
        forehead, _ = grow_forehead(photographed(image, rng), region)
        tops = np.array([np.flatnonzero(forehead[:, c])[0] for c in range(centre.start, centre.stop)])
        assert np.abs(tops - top).max() <= 2, tops


def test_a_fringe_over_the_top_of_face_meshs_region_is_not_grown_into():
    """Face Mesh's region reaches under the fringe, so its upper forehead holds hair: the cheeks' colour stops it."""
    image = photographed(portrait(hair=yy < 50), np.random.default_rng(2))  # a smooth dark fringe down to row 50

    forehead, _ = grow_forehead(image, region)

    assert not forehead[:, 50:79].any()
