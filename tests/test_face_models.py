"""MediaPipe's face models run in OpenVINO (facerecon.preprocess.face_models) give what MediaPipe's own graphs give."""
import numpy as np
import pytest

from facerecon.preprocess.face_models import (
    FULL_RANGE,
    SHORT_RANGE,
    BlazeFace,
    FaceLandmarker,
    ssd_anchors,
    weighted_nms,
)
from facerecon.preprocess.image_io import load_image

from .conftest import ROOT


@pytest.fixture(scope="module")
def mediapipe():
    import mediapipe

    return mediapipe


def graph_detections(mp, rgb, selection):
    graph = mp.solutions.face_detection.FaceDetection(model_selection=selection, min_detection_confidence=0.5)
    found = graph.process(rgb).detections or []
    boxes = [[b.xmin, b.ymin, b.xmin + b.width, b.ymin + b.height]
             for b in (d.location_data.relative_bounding_box for d in found)]
    return np.array(boxes).reshape(-1, 4), np.array([d.score[0] for d in found])


def test_anchor_counts_are_the_models_outputs():
    assert len(ssd_anchors(128, (8, 16, 16, 16), True)) == 896
    assert len(ssd_anchors(192, (4,), False)) == 2304


def test_weighted_nms_merges_overlaps_by_score_and_keeps_the_rest():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    keypoints = np.zeros((3, 6, 2))
    out, _, scores = weighted_nms(boxes, keypoints, np.array([0.9, 0.6, 0.7]))
    np.testing.assert_allclose(out[0], [0.4, 0, 10.4, 10])  # (0.9 * 0 + 0.6 * 1) / 1.5
    np.testing.assert_allclose(out[1], boxes[2])
    np.testing.assert_allclose(scores, [0.9, 0.7])


@pytest.mark.parametrize("photo", ["astronaut.png", "two_faces.jpg"])
@pytest.mark.parametrize("spec,selection", [(SHORT_RANGE, 0), (FULL_RANGE, 1)])
def test_detections_match_mediapipes_graph(mediapipe, photo, spec, selection):
    rgb = load_image(ROOT / "examples" / photo)
    boxes, _, scores = BlazeFace(spec).detect(rgb, 0.5)
    theirs, their_scores = graph_detections(mediapipe, rgb, selection)
    assert len(boxes) == len(theirs)
    h, w = rgb.shape[:2]
    # each of theirs has one of ours within 2 px (the full-range model on a photo that is not square differs by up
    # to 1.5 px here, 3 px on Congress portraits, for a cause not found; on a square one by 0.01 px)
    for box, score in zip(theirs, their_scores):
        i = np.argmin(np.abs(boxes - box).sum(1))
        assert np.abs((boxes[i] - box) * [w, h, w, h]).max() < 2.0 and abs(scores[i] - score) < 0.01


def test_landmarks_match_face_mesh(mediapipe):
    rgb = load_image(ROOT / "examples" / "astronaut.png")
    mesh = mediapipe.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                                  min_detection_confidence=0.3)
    theirs = np.array([[p.x, p.y, p.z] for p in mesh.process(rgb).multi_face_landmarks[0].landmark[:468]])
    boxes, keypoints, _ = BlazeFace(SHORT_RANGE).detect(rgb, 0.3)
    ours = FaceLandmarker().landmarks(rgb, boxes[0], keypoints[0])
    h, w = rgb.shape[:2]
    assert np.abs((ours[:, :2] - theirs[:, :2]) * [w, h]).mean() < 0.1  # pixels of the 512-px photo
    assert np.abs((ours[:, 2] - theirs[:, 2]) * w).mean() < 0.1


def test_no_landmarks_where_the_model_sees_no_face():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (256, 256, 3), np.uint8)
    assert FaceLandmarker().landmarks(noise, np.array([0.3, 0.3, 0.7, 0.7]), np.full((6, 2), 0.5)) is None
