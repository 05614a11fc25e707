import numpy as np
import pytest

from facerecon.preprocess.align import (
    CANONICAL_LANDMARKS,
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
    affine = crop_affine(image_points)
    np.testing.assert_allclose(apply_affine(affine, image_points), CANONICAL_LANDMARKS, atol=1e-9)
    assert affine_scale(affine) == pytest.approx(1 / scale)


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
