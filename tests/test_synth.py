"""The synthetic data engine with the real ICT face model (skipped without ../shared/data)."""
import os

import cv2
import numpy as np
import pytest

from facerecon.data.shards import list_shards, shard_framing, shard_source
from facerecon.preprocess.align import CANONICAL_LANDMARKS, FRAMING, SMILE_STEADY_FRAMING, crop_affine


@pytest.fixture(scope="module")
def renderer(shared_data):
    from facerecon.data.synth.face_model import FaceModel
    from facerecon.data.synth.render import Renderer

    return Renderer(FaceModel.load(shared_data / "ict_facekit" / "ict_facekit_head_f16.npz"))


def test_determinism(renderer):
    a, b, c = renderer.render(7), renderer.render(7), renderer.render(8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.coarse, b.coarse)
    assert not np.array_equal(a.image, c.image)


def test_framing_contract(renderer):
    """Samples are framed by align.crop_affine on the rendered landmarks (plus detector-like noise): aligning the
    landmarks as the renderer saw them, now in crop coordinates, must give the identity."""
    for seed in range(4):
        s = renderer.render(seed)
        np.testing.assert_allclose(crop_affine(np.array(s.params["detected_landmarks5"])), np.eye(2, 3), atol=1e-6)
        # the true landmarks sit near the template (face shape, expression and the detector noise move them)
        assert np.linalg.norm(s.landmarks5 - CANONICAL_LANDMARKS, axis=1).max() < 20


def test_maps_are_consistent(renderer):
    for seed in range(4):
        s = renderer.render(seed)
        assert s.mask.any() and s.image.shape == (256, 256, 3) and s.image.dtype == np.uint8
        assert abs(s.coarse[s.mask].mean()) < 1e-3  # zero mean over the face mask
        assert (s.coarse[~s.mask] == 0).all() and not s.valid_coarse[~s.mask].any()
        assert not s.valid_detail[~s.mask].any() and (s.detail[~s.valid_detail] == 0).all()
        assert 0 < np.abs(s.detail[s.valid_detail]).max() < 5.0  # wrinkles: up to a few crop pixels deep
        # grooves, and the cheek's bulge beside each nasolabial fold: a few smooth patches, not the pores' speckle
        bumps = cv2.connectedComponents((s.valid_detail & (s.detail > 1e-3)).astype(np.uint8))[0] - 1
        assert bumps <= 4
        assert np.ptp(s.coarse[s.mask]) > 30  # a face has tens of crop pixels of relief


def test_mask_is_the_visible_face(renderer):
    """Coarse depth is the ray-cast surface: nearest hit along -z, so the nose tip is the nearest face point."""
    s = renderer.render(3)
    ys, xs = np.nonzero(s.mask)
    nearest = np.argmax(s.coarse[s.mask])
    nose = s.landmarks5[2]
    assert np.hypot(xs[nearest] - nose[0], ys[nearest] - nose[1]) < 20


@pytest.mark.slow
def test_synth_command_writes_resumable_shards(tmp_path, shared_data):
    from facerecon.data.synth import engine

    rate = engine.synthesise(tmp_path, count=5, seed=0, workers=1, data_dir=shared_data, shard_size=3)
    shards = list_shards(tmp_path)
    assert len(shards) == 2 and rate > 0
    first = shards[0].read_bytes()
    shards[1].unlink()
    engine.synthesise(tmp_path, count=5, seed=0, workers=1, data_dir=shared_data, shard_size=3)  # redoes shard 1
    assert shards[0].read_bytes() == first and shards[1].exists()
    with np.load(shards[0]) as z:
        assert z["image"].shape == (3, 256, 256, 3) and z["coarse"].dtype == np.float16
    assert shard_source(shards[0]) == f"synth engine {engine.ENGINE_VERSION}"  # what made it, for the training log
    assert shard_framing(shards[0]) == FRAMING  # how its crops were framed, which the trained network is run with
    with pytest.raises(ValueError, match="another framing"):  # a resume may not mix two framings in one folder
        engine.synthesise(tmp_path, count=8, seed=0, workers=1, data_dir=shared_data, shard_size=3,
                          framing=SMILE_STEADY_FRAMING)


@pytest.mark.slow
def test_workers_on_their_own_cores_render_the_same_shards(tmp_path, shared_data, monkeypatch):
    """Workers pinned to their shares of the cores, thread pools sized to them, change nothing in the output: two
    write the shards one writes. The thread settings they start with are the caller's again afterwards."""
    from facerecon.data.synth import engine

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    engine.synthesise(tmp_path / "one", count=4, seed=3, workers=1, data_dir=shared_data, shard_size=2)
    engine.synthesise(tmp_path / "two", count=4, seed=3, workers=2, data_dir=shared_data, shard_size=2)
    for a, b in zip(list_shards(tmp_path / "one"), list_shards(tmp_path / "two"), strict=True):
        with np.load(a) as za, np.load(b) as zb:
            assert all(np.array_equal(za[k], zb[k]) for k in za.files)
    assert os.environ["OMP_NUM_THREADS"] == "7" and "OPENBLAS_NUM_THREADS" not in os.environ


def test_portrait_unwrap_round_trip(shared_data, detector):
    """A portrait unwrapped into canonical UV space gives back, at each vertex's UV, the photo's colour at that
    landmark (for the frontal, unforeshortened part of the face)."""
    from facerecon.data.synth.detail import sample_texture
    from facerecon.data.synth.textures import CanonicalMesh, unwrap_photo
    from facerecon.preprocess.image_io import load_image
    from facerecon.surface.raster import sample_bilinear

    mesh = CanonicalMesh.load(shared_data)
    rgb = load_image(sorted((shared_data / "frll" / "neutral_front").glob("*.jpg"))[0])
    face = detector.detect(rgb)[0]
    texture, covered = unwrap_photo(rgb, face.mesh[:, :2], mesh)
    assert covered.mean() > 0.3
    vertex_uv = np.zeros((468, 2))
    vertex_uv[mesh.triangles.ravel()] = mesh.tri_uv.reshape(-1, 2)
    smooth = cv2.GaussianBlur(rgb, (0, 0), 1.5)
    expected = sample_bilinear(smooth, face.mesh[:, :2]).astype(float)
    got = sample_texture(cv2.GaussianBlur(texture, (0, 0), 3), vertex_uv).astype(float)
    texel = np.clip(((vertex_uv * [1, -1] + [0, 1]) * texture.shape[0]).astype(int), 0, texture.shape[0] - 1)
    inner = covered[texel[:, 1], texel[:, 0]]
    assert inner.sum() > 200
    assert np.median(np.abs(got[inner] - expected[inner])) < 12


def test_ict_vertices_map_into_the_canonical_face(shared_data):
    from facerecon.data.synth.face_model import FaceModel
    from facerecon.data.synth.textures import CanonicalMesh, ict_uv_map

    model = FaceModel.load(shared_data / "ict_facekit" / "ict_facekit_head_f16.npz")
    uv = ict_uv_map(model.neutral, model.landmarks68, CanonicalMesh.load(shared_data))
    nose = uv[model.landmarks68[30]]
    assert np.isfinite(nose).all() and abs(nose[0] - 0.5) < 0.03  # the nose tip lands on the symmetry line
    left, right = uv[model.landmarks68[36]], uv[model.landmarks68[45]]
    assert left[0] < 0.5 < right[0]


def test_depth_is_the_ray_cast_of_the_sampled_head(renderer):
    """Rebuild the sampled head from its parameters, cast every crop pixel's ray at the whole mesh (no culling)
    independently of the renderer, and compare with the rendered coarse depth over the mask."""
    from facerecon.data.synth.render import rotation
    from facerecon.preprocess.align import apply_affine, invert_affine
    from facerecon.surface.raster import cast_rays, pixel_centres

    s = renderer.render(11)
    p, m = s.params, renderer.model
    head = m.vertices(np.array(p["identity"], np.float32), np.array(p["expression"], np.float32))
    world = head @ rotation(p["yaw"], p["pitch"], p["roll"]).T + np.array(p["head_centre_cm"], np.float32)
    photo = apply_affine(invert_affine(np.array(p["crop_affine"])), pixel_centres(256))
    dirs = np.column_stack([photo / p["focal_px"] * [1, -1], -np.ones(len(photo))])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    _, cast = cast_rays(world, m.triangles, np.column_stack([np.zeros_like(dirs), dirs]))
    sight = -dirs.reshape(256, 256, 3)[127:129, 127:129].mean((0, 1))  # the crop centre's line of sight
    depth = (cast["t"] * (dirs @ sight) / np.linalg.norm(sight) * p["crop_px_per_cm"]).reshape(256, 256)[s.mask]
    np.testing.assert_allclose(s.coarse[s.mask], depth - depth.mean(), atol=1e-3)
