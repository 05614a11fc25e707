"""The predictor on real photos (examples/astronaut.png: NASA, public domain), with the bundled weights."""
import numpy as np
import pytest

from facerecon.data.pseudo_labels import canonical_triangles, label_face
from facerecon.errors import ImageReadError, NoFaceFound
from facerecon.preprocess.align import CANONICAL_LANDMARKS, MAP_FRAMING, apply_affine, crop_affine

from .conftest import EXAMPLES


def test_one_face_with_all_maps(reconstructor, astronaut):
    faces = reconstructor(astronaut)
    assert len(faces) == 1
    f = faces[0]
    for name in ("mask", "coarse_depth", "detail", "depth"):
        arr = getattr(f, name)
        assert arr.shape == (256, 256) and arr.dtype == np.float32 and np.isfinite(arr).all()
    assert f.crop_rgb.shape == (256, 256, 3) and f.texture_rgb.shape == (512, 512, 3)
    np.testing.assert_allclose(f.depth, f.coarse_depth + f.detail)
    inside = f.mask > 0.5
    assert abs(f.coarse_depth[inside].mean()) < 1e-3  # zero mean over the face mask
    # the affine takes the detected landmarks near the canonical spots (least squares over 5 points, the maps' frame
    # weighing the mouth corners a quarter: the astronaut's broad smile holds them 18 px off the template)
    residual = np.linalg.norm(apply_affine(f.crop_affine, f.landmarks5) - CANONICAL_LANDMARKS, axis=1)
    assert residual[:2].max() < 8 and residual.max() < 24
    x0, y0, x1, y1 = f.box
    assert (x0 < f.landmarks5[:, 0]).all() and (f.landmarks5[:, 0] < x1).all()
    assert set(f.timings) >= {"decode", "detect", "align", "network"}
    np.testing.assert_allclose(f.crop_affine, crop_affine(f.landmarks5, MAP_FRAMING))  # the maps' frame


def test_the_maps_are_warped_into_the_maps_frame():
    """A surface known in the photo, as the network's crop and the maps' crop each hold it (depth in their own
    pixels): the network crop's maps warped by to_map_frame are the maps' crop's own."""
    from facerecon.predictor import to_map_frame
    from facerecon.preprocess.align import TEMPLATE_FRAMING, affine_scale

    landmarks = CANONICAL_LANDMARKS * 2.3 + [40, 25] + [[0, 0], [0, 0], [0, 0], [-9, -6], [9, -5]]  # a smile
    centre = landmarks[2]

    def maps(affine):  # mask: a disc; depth: a dome with fine ripples (the "detail"), both in image pixels
        v, u = np.mgrid[0:256, 0:256].astype(np.float64)
        inverse = np.linalg.inv(np.vstack([affine, [0, 0, 1]]))[:2]
        x, y = (inverse[0, 0] * u + inverse[0, 1] * v + inverse[0, 2], inverse[1, 0] * u + inverse[1, 1] * v
                + inverse[1, 2])
        r2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2
        k = affine_scale(affine)
        return ((r2 < 200 ** 2).astype(np.float32), (-r2 / 800 * k).astype(np.float32),
                (np.sin(x / 9) * np.cos(y / 11) * k).astype(np.float32))

    network, target = crop_affine(landmarks, TEMPLATE_FRAMING), crop_affine(landmarks, MAP_FRAMING)
    assert np.abs(network - target).max() > 0.01  # the two frames differ
    mask, coarse, detail = to_map_frame(*maps(network), network, target)
    want_mask, want_coarse, want_detail = maps(target)
    inside = (mask > 0.5) & (want_mask > 0.5)
    assert inside.sum() / np.logical_or(mask > 0.5, want_mask > 0.5).sum() > 0.99
    assert abs(coarse[mask > 0.5].mean()) < 1e-3  # zero mean over the mask, as every coarse map
    np.testing.assert_allclose(coarse[inside], want_coarse[inside] - want_coarse[inside].mean(), atol=0.05)
    np.testing.assert_allclose(detail[inside], want_detail[inside], atol=0.02)


def test_coarse_smoothing_removes_the_upsampling_grid():
    import cv2
    import torch
    from torch.nn import functional as F

    from facerecon.predictor import postprocess

    low = cv2.GaussianBlur(np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32), (0, 0), 2) * 10
    coarse = F.interpolate(torch.from_numpy(low)[None, None], size=(256, 256), mode="bilinear",
                           align_corners=False)[0].numpy()  # like the coarse head's output: a kink every 4 px
    logits = np.full((1, 256, 256), -10.0, np.float32)
    logits[0, 40:200, 30:220] = 10
    raw = postprocess(logits, coarse, None, 0.0)[1][0]
    smooth = postprocess(logits, coarse, None, 1.0)[1][0]
    inside = logits[0] > 0
    assert abs(smooth[inside].mean()) < 1e-3
    assert np.abs(smooth - raw - (smooth - raw).mean()).max() < 0.5  # the surface stays, only its grid goes

    def grid(depth: np.ndarray) -> float:
        """Curvature across columns at the busiest of the 4 phases mod 4 over the quietest one."""
        curvature = np.abs(np.diff(depth[60:180, 48:202], 2, axis=1))  # centred on columns 49 to 200
        phase = curvature.reshape(len(curvature), -1, 4).mean((0, 1))
        return phase.max() / phase.min()

    assert grid(raw) > 100 and grid(smooth) < 3


def test_trained_model_agrees_with_mediapipe_on_a_real_photo(reconstructor, detector, astronaut):
    """Not a random network: mask and depth match MediaPipe Face Mesh's face region and relief."""
    shared = EXAMPLES.parent.parent / "shared" / "data" / "mediapipe_canonical"
    if not shared.is_dir():
        pytest.skip("../shared/data/mediapipe_canonical is needed for the reference mesh topology")
    det = detector.detect(astronaut)[0]
    f = reconstructor(astronaut, faces=[det])[0]
    ref = label_face(astronaut, det.mesh, f.crop_affine, canonical_triangles(shared.parent))
    pred, gt = f.mask > 0.5, ref["mediapipe_region"]
    iou = (pred & gt).sum() / (pred | gt).sum()
    both = pred & gt
    r = np.corrcoef(f.coarse_depth[both], ref["coarse"][both])[0, 1]
    assert iou > 0.75, iou
    assert r > 0.75, r


def test_several_faces_go_through_the_network_as_one_batch(reconstructor, astronaut):
    two = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    batches = []
    backend = reconstructor.backend
    real_run = backend.run

    def spy(batch):
        batches.append(batch.shape[0])
        return real_run(batch)

    backend.run = spy
    try:
        faces = reconstructor(two)
    finally:
        del backend.run
    assert len(faces) == 2 and batches == [4]  # both faces and their mirror images (flip averaging)
    centres = sorted((f.box[0] + f.box[2]) / 2 for f in faces)
    assert centres[0] < 512 < centres[1]


def test_flip_averaging_mirrors_the_output_with_the_input(reconstructor, astronaut):
    """With flip averaging a mirrored crop gives the mirrored maps (to float rounding); the network alone does not."""
    crop = reconstructor.crop(astronaut, reconstructor.detect(astronaut)).rgb[0]  # the network's own crop
    both = np.stack([crop, crop[:, ::-1]])
    mirrored = [float(np.abs(a[0][:, ::-1] - a[1]).max()) for a in reconstructor.predict(both)]
    reconstructor.flip_average = False
    try:
        plain = [float(np.abs(a[0][:, ::-1] - a[1]).max()) for a in reconstructor.predict(both)]
    finally:
        reconstructor.flip_average = True
    assert max(mirrored) < 1e-4, mirrored
    assert plain[1] > 0.1 and plain[2] > 0.001, plain  # coarse and detail (crop px) of the plain network


def test_many_crops_go_through_in_batches_the_onnx_export_takes(reconstructor, astronaut, monkeypatch):
    import facerecon.predictor as predictor

    crops = np.repeat(reconstructor.crop(astronaut, reconstructor.detect(astronaut)).rgb[:1], 3, axis=0)
    whole = reconstructor.predict(crops)
    monkeypatch.setattr(predictor, "MAX_BATCH", 4)  # 6 network inputs with the mirrors
    for a, b in zip(whole, reconstructor.predict(crops)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_no_face(reconstructor):
    with pytest.raises(NoFaceFound):
        reconstructor(EXAMPLES / "cat_no_face.png")
    with pytest.raises(NoFaceFound):
        reconstructor(np.full((300, 400, 3), 127, np.uint8))


def test_unreadable_input(reconstructor, tmp_path):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"GIF89a broken")
    with pytest.raises(ImageReadError):
        reconstructor(bad)


def test_tiny_and_huge_aspect_images_do_not_crash(reconstructor):
    for shape in [(1, 1, 3), (20, 2000, 3), (3000, 16, 3)]:
        with pytest.raises(NoFaceFound):
            reconstructor(np.zeros(shape, np.uint8))


def test_noise_textures_and_patterns_are_no_face(reconstructor):
    """Images that the detector alone took for faces (uniform noise and smooth blobs, at scores 0.52-0.58) are no
    face once Face Mesh must find the face again (benchmarks/false_faces.py measures the rate)."""
    from false_faces import NON_FACE_KINDS, non_face_image

    rng = np.random.default_rng(0)
    for kind in NON_FACE_KINDS:
        for _ in range(3):
            with pytest.raises(NoFaceFound):
                reconstructor(non_face_image(kind, rng))


@pytest.mark.parametrize("quarters", [1, 2, 3])
def test_a_turned_photo_or_an_upside_down_face_is_reconstructed_upright(reconstructor, astronaut, quarters):
    """No EXIF tag says the photo is turned: Face Mesh runs on the face's window turned upright, so the crop is the
    upright one (r 0-0.4 before), and the result says what was done."""
    upright = reconstructor(astronaut)[0].crop_rgb.astype(np.float32).ravel()
    turned = np.ascontiguousarray(np.rot90(astronaut, quarters))
    face = reconstructor(turned)[0]
    assert np.corrcoef(face.crop_rgb.astype(np.float32).ravel(), upright)[0, 1] > 0.9
    assert face.turn in (90, 180, 270) and "it was put upright" in face.warnings[0]
    if quarters == 2:  # an upside-down face in an upright photo: a person hanging upside down
        canvas = np.full((900, 1200, 3), 90, np.uint8)
        canvas[200:200 + turned.shape[0], 400:400 + turned.shape[1]] = turned
        face = reconstructor(canvas)[0]
        assert face.turn == 180 and np.corrcoef(face.crop_rgb.astype(np.float32).ravel(), upright)[0, 1] > 0.9


def test_a_small_face_in_a_large_photo_is_found(detector, astronaut):
    """A 60 px face in a 4000x3000 photo: 15 px in the detector's copy (a quarter: 1000 px), too small for it; the
    second pass over tiles of the photo finds it (benchmarks/small_faces.py measures time and memory per megapixel)."""
    import cv2

    width = detector.detect(astronaut)[0].box
    small = cv2.resize(astronaut, None, fx=60 / (width[2] - width[0]), fy=60 / (width[2] - width[0]),
                       interpolation=cv2.INTER_AREA)
    photo = np.full((3000, 4000, 3), 120, np.uint8)
    photo[1000:1000 + small.shape[0], 2000:2000 + small.shape[1]] = small
    faces = detector.detect(photo)
    assert len(faces) == 1 and 50 < faces[0].box[2] - faces[0].box[0] < 75
    assert 2000 <= faces[0].box[0] and faces[0].box[2] <= 2000 + small.shape[1]


def test_the_masks_outline_is_sharpened_at_the_crops_edge_and_left_alone_elsewhere():
    """The mask head's outline, a bilinear ramp 8 px wide beside the face's edge, steepens where the photo has its
    edge and moves towards it; where the photo is flat the mask stays as it was."""
    from facerecon.predictor import guided_mask

    crop = np.full((256, 256, 3), 60, np.uint8)
    crop[:, 128:] = 190  # the face's edge: between x = 127 and 128
    x = np.arange(256, dtype=np.float32)
    mask = np.tile(np.clip((x - 130) / 8 + 0.5, 0, 1), (256, 1)).astype(np.float32)  # 0.5 at x = 130
    guided = guided_mask(mask, crop)
    assert guided.dtype == np.float32 and guided.min() >= 0 and guided.max() <= 1
    steps = np.diff(guided[128])
    assert steps.argmax() == 127 and steps.max() > 2 * 0.125  # the ramp rises 0.125 a pixel
    assert (guided[128] > 0.5).argmax() < (mask[128] > 0.5).argmax()
    far = (x < 120) | (x > 140)
    np.testing.assert_allclose(guided[:, far], mask[:, far], atol=0.01)
