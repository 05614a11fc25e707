import numpy as np
import pytest

from facerecon.preprocess.align import (
    CANONICAL_LANDMARKS,
    SMILE_STEADY_FRAMING,
    TEMPLATE_FRAMING,
    Framing,
    affine_scale,
    apply_affine,
    crop_affine,
    rescale_affine,
    warp_to_crop,
)


def test_crop_affine_recovers_a_similarity_exactly():
    angle, scale, shift = np.radians(20), 2.5, np.array([300.0, 120.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    image_points = (CANONICAL_LANDMARKS @ rot.T) * scale + shift
    for weights in (TEMPLATE_FRAMING.weights, SMILE_STEADY_FRAMING.weights, (1, 2, 3, 4, 5)):
        affine = crop_affine(image_points, Framing(weights))  # exact points: any weights give the one similarity
        np.testing.assert_allclose(apply_affine(affine, image_points), CANONICAL_LANDMARKS, atol=1e-9)
        assert affine_scale(affine) == pytest.approx(1 / scale)


def test_the_framings_scale_zooms_about_the_weighted_centre_of_the_template():
    framing = SMILE_STEADY_FRAMING
    affine = crop_affine(CANONICAL_LANDMARKS, framing)
    centre = np.average(CANONICAL_LANDMARKS, axis=0, weights=framing.weights)
    np.testing.assert_allclose(apply_affine(affine, CANONICAL_LANDMARKS),
                               centre + framing.scale * (CANONICAL_LANDMARKS - centre), atol=1e-9)
    assert Framing.from_list(framing.to_list()) == framing


def test_a_smile_moves_the_smile_steady_framing_less():
    """Mouth corners pulled out and up (a smile): the eyes and nose move less in the crop when the corners weigh
    less in the fit."""
    smiling = CANONICAL_LANDMARKS.copy()
    smiling[3] += [-8.0, -5.0]
    smiling[4] += [8.0, -5.0]
    upper = slice(0, 3)
    moved = {f: np.linalg.norm(apply_affine(crop_affine(smiling, f), smiling[upper])
                               - apply_affine(crop_affine(CANONICAL_LANDMARKS, f), CANONICAL_LANDMARKS[upper]),
                               axis=1).mean() for f in (TEMPLATE_FRAMING, SMILE_STEADY_FRAMING)}
    assert moved[SMILE_STEADY_FRAMING] < 0.5 * moved[TEMPLATE_FRAMING]


def test_warp_follows_the_pixel_centre_convention():
    image = np.zeros((100, 120), np.float32)
    image[40, 30] = 1.0  # pixel centre (x=30, y=40)
    affine = np.array([[1.0, 0, 50.0], [0, 1.0, 60.0]])  # pure shift: lands on (80, 100)
    crop = warp_to_crop(image, affine)
    assert np.unravel_index(crop.argmax(), crop.shape) == (100, 80)
    # twice the resolution: pixel u maps to 2u + 0.5; a 2x2 block of the finer grid straddles the point
    fine = warp_to_crop(image, rescale_affine(affine, 2.0), size=512)
    ys, xs = np.nonzero(fine > 0.2)
    assert (xs.mean(), ys.mean()) == pytest.approx((160.5, 200.5), abs=1e-6)


def test_strong_downscale_is_prefiltered():
    rng = np.random.default_rng(0)
    image = (rng.random((2000, 2000, 3)) * 255).astype(np.uint8)
    crop = warp_to_crop(image, np.array([[0.1, 0, 0], [0, 0.1, 0]]), size=64)
    assert crop.std() < 20  # area-averaged noise is smooth; point sampling would keep std ~ 74


@pytest.mark.parametrize("scale, angle", [(0.1, 0.0), (0.23, 30.0), (0.45, -75.0)])
def test_prefiltered_crop_keeps_the_pixel_centre_convention(scale, angle):
    # a bright disc whose centre is known to a fraction of a pixel: the pre-filter's whole-block shrink of only the
    # part the crop reads must not move it
    h, w = 1501, 1999  # not multiples of the shrink factor
    centre = np.array([1234.3, 777.8])
    yy, xx = np.mgrid[:h, :w]
    image = (((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 < 40.0 ** 2) * 255).astype(np.uint8)
    c, s = scale * np.cos(np.radians(angle)), scale * np.sin(np.radians(angle))
    affine = np.array([[c, -s, 0.0], [s, c, 0.0]])
    affine[:, 2] = [40.0, 50.0] - affine[:, :2] @ centre  # the disc's centre lands on crop pixel (40, 50)
    crop = warp_to_crop(image, affine, size=96).astype(np.float64)
    ys, xs = np.mgrid[:96, :96]
    assert crop.sum() > 0
    assert (xs * crop).sum() / crop.sum() == pytest.approx(40.0, abs=0.05)
    assert (ys * crop).sum() / crop.sum() == pytest.approx(50.0, abs=0.05)


def test_prefiltered_crop_past_the_image_or_of_a_tiny_image_repeats_its_edge():
    image = np.full((300, 400, 3), 7, np.uint8)
    image[:, -20:] = 200  # a band at the right edge, wider than the shrink factor
    outside = np.array([[0.2, 0, -200.0], [0, 0.2, 0.0]])  # the crop starts 1000 px right of the image
    assert (warp_to_crop(image, outside, size=32) == 200).all()
    tiny = np.full((3, 5, 3), 9, np.uint8)
    assert (warp_to_crop(tiny, np.array([[0.05, 0, 0], [0, 0.05, 0]]), size=16) == 9).all()
