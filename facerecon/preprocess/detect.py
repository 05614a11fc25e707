"""Face detection and landmarks with MediaPipe's face models (0.10.21: the last release that bundles them), run in
OpenVINO (face_models.py).

Every face in the photo is found with BlazeFace (full- and short-range models, merged), then Face Mesh's landmark
model runs on a square window around each one for 468 landmarks; a detection where the window shows no face is
dropped. Coordinates returned here are image pixels with integer values at pixel centres (MediaPipe's normalised
coordinates put 0 and 1 at the image edges).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from .align import apply_affine, invert_affine, shrink_by, warp_to_crop
from .face_models import FULL_RANGE, SHORT_RANGE, BlazeFace, FaceLandmarker

MAX_FACES = int(os.environ.get("FACERECON_MAX_FACES", 8))
DETECT_MAX_SIDE = 1280  # the first detection pass runs on a copy no larger than this, shrunk by a whole factor
# The detector scales what it sees to 192 px: it finds faces of about 6% of its input's width (40 px in 640), so in a
# 1280-px copy of a large photo faces under ~80 px are lost. When the copy was smaller than the photo and found
# nothing, or a face under SMALL_IN_COPY of the copy's longer side (others of its size may have been missed), a
# second pass looks at the photo itself in tiles of TILE px, overlapping by a quarter: a 60 px face is 8% of a tile.
SMALL_IN_COPY = 96 / 1280
TILE = 768
MESH_WINDOW = 384  # Face Mesh sees each face in a window of this many pixels
# The short-range detector's score of a face's window at or above which the face is taken to be the right way up
# without looking at the window turned: 41 upright portraits of the data scored 0.886 or more (median 0.921), the
# same portraits turned a quarter, a half or three quarters at most 0.853; benchmarks/orientation.py checks that
# turned photos still come out upright (docs/speed.md)
SURELY_UPRIGHT = 0.9
WINDOW_MIN_SCORE = 0.3  # Face Mesh's own detection in a window (its min_detection_confidence, as MediaPipe ran it)

# Face Mesh landmark ids of the alignment points (subject's right eye is on the image left).
_EYE_CORNERS_LEFT, _EYE_CORNERS_RIGHT = (33, 133), (362, 263)
_NOSE_TIP, _MOUTH_LEFT, _MOUTH_RIGHT = 1, 61, 291
# np.rot90(window, k) for k = 1, 2, 3 as cv2.rotate codes
_QUARTER_TURNS = (cv2.ROTATE_90_COUNTERCLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_CLOCKWISE)


@dataclass
class DetectedFace:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in image pixels
    score: float
    landmarks5: np.ndarray  # (5, 2) eye centres, nose tip, mouth corners (order of align.CANONICAL_LANDMARKS)
    mesh: np.ndarray  # (468, 3) Face Mesh: x, y in image pixels, z in image pixels, larger = nearer
    turn: int = 0  # degrees (0, 90, 180, 270) the face was turned in the photo; its crop is upright anyway


class Detections(list):
    """list[DetectedFace], largest first, and how many more faces the max_faces cap left out."""

    def __init__(self, faces: list[DetectedFace] = (), left_out: int = 0):
        super().__init__(faces)
        self.left_out = left_out


class FaceDetector:
    """detector.detect(rgb: H x W x 3 uint8) -> Detections (a list of DetectedFace, largest face first, that also
    says how many faces the max_faces cap left out). Thread-safe."""

    def __init__(self, max_faces: int = MAX_FACES, min_score: float = 0.5):
        self._full, self._short = BlazeFace(FULL_RANGE), BlazeFace(SHORT_RANGE)
        self._landmarker = FaceLandmarker()
        self.max_faces, self.min_score = max_faces, min_score
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> Detections:
        h, w = rgb.shape[:2]
        k = -(-max(h, w) // DETECT_MAX_SIDE)  # a whole factor (shrink_by's fast path)
        f = 1.0 / k
        small = shrink_by(rgb, k)
        with self._lock:
            confirmed = self._confirmed(rgb, *self._detect_boxes(small), f)
            small_face = SMALL_IN_COPY * max(small.shape[:2])
            if f < 1 and (not confirmed or min(d.box[2] - d.box[0] for d in confirmed) * f < small_face):
                boxes, scores = self._tile_boxes(rgb)
                new = [i for i in range(len(boxes)) if all(_iou(boxes[i], d.box) < 0.3 for d in confirmed)]
                confirmed = sorted(confirmed + self._confirmed(rgb, boxes[new], scores[new], 1.0),
                                   key=lambda d: -d.score)
            # the detector finds few faces upside down or on their side: when it finds none, the photo is looked at
            # turned too (only then: each turn costs another detection pass)
            for quarter in (2, 1, 3) if not confirmed else ():
                boxes, scores = self._detect_boxes(cv2.rotate(small, _QUARTER_TURNS[quarter - 1]))
                corners = [_unturned(boxes[:, c], quarter, small.shape) for c in ([0, 1], [2, 1], [0, 3], [2, 3])]
                boxes = np.column_stack([np.min(corners, axis=0), np.max(corners, axis=0)])
                confirmed = self._confirmed(rgb, boxes, scores, f)
                if confirmed:
                    break
        faces = Detections(confirmed[: self.max_faces], left_out=max(0, len(confirmed) - self.max_faces))
        faces.sort(key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        return faces

    def _confirmed(self, rgb: np.ndarray, boxes: np.ndarray, scores: np.ndarray, f: float) -> list[DetectedFace]:
        """The detections (boxes in the detector's copy, scaled by f) that Face Mesh finds again in a window around
        them, the most confident first (the cap keeps those). Noise, textures and blobs that the detector scores
        0.5-0.8 are not found again (benchmarks/false_faces.py); every portrait of the data, and every face of
        40 px or more that the detector finds, is."""
        confirmed = []
        for i in _nms(boxes, scores):
            found = self._face_mesh(rgb, boxes[i] / f)
            if found is not None:
                mesh, turn = found
                confirmed.append(DetectedFace(box=boxes[i] / f, score=float(scores[i]),
                                              landmarks5=_landmarks5_from_mesh(mesh), mesh=mesh, turn=turn))
        return confirmed

    def _tile_boxes(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The full-range detector over TILE-px tiles of the photo, overlapping by a quarter: boxes in the photo."""
        h, w = rgb.shape[:2]
        step = TILE * 3 // 4
        starts = lambda n: sorted({*range(0, max(n - TILE, 0) + 1, step), max(n - TILE, 0)})  # noqa: E731
        boxes, scores = [np.zeros((0, 4))], [np.zeros(0)]
        for y in starts(h):
            for x in starts(w):
                b, s = self._detect_boxes(np.ascontiguousarray(rgb[y:y + TILE, x:x + TILE]), (self._full,))
                boxes.append(b + [x, y, x, y])
                scores.append(s)
        return np.concatenate(boxes), np.concatenate(scores)

    def _detect_boxes(self, rgb: np.ndarray, detectors=None) -> tuple[np.ndarray, np.ndarray]:
        """Both detectors' (or the given ones') boxes in pixels (x0, y0, x1, y1) and their scores."""
        h, w = rgb.shape[:2]
        found = [det.detect(rgb, self.min_score) for det in detectors or (self._full, self._short)]
        boxes = np.concatenate([b for b, _, _ in found]) * [w, h, w, h] - 0.5
        return boxes, np.concatenate([s for _, _, s in found])

    def _window_score(self, found: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
        """The short-range detector's best score in a Face Mesh window, from min_score (0 below it)."""
        scores = found[2]
        return float(scores[0]) if len(scores) and scores[0] >= self.min_score else 0.0

    def _face_mesh(self, rgb: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, int] | None:
        """Run Face Mesh in a square window twice the box size around it, turned upright first: (landmarks, the
        turn in degrees, 0/90/180/270), or None when it finds no face there.

        Face Mesh reads a face the right way up only: on an upside-down or sideways face it returns landmarks in the
        wrong places, and the crop they frame comes out upside down (r 0-0.4 with the upright crop). The turn is
        the quarter turn of the window in which the short-range detector scores the face highest: over 54 portraits
        turned all four ways, the upright one scored highest every time (margin 0.03 to 0.2). A window that scores
        SURELY_UPRIGHT or more the way the photo holds it is taken as it is."""
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = 2.0 * max(box[2] - box[0], box[3] - box[1])
        s = MESH_WINDOW / side  # window pixels per image pixel
        c = (MESH_WINDOW - 1) / 2

        def to_window(quarter: int) -> np.ndarray:  # window pixel = s * R(quarter) * (image pixel - centre) + c
            affine = np.hstack([cv2.getRotationMatrix2D((c, c), 90.0 * quarter, 1.0)[:, :2] * s, np.zeros((2, 1))])
            affine[:, 2] = c - affine[:, :2] @ [cx, cy]
            return affine

        # the window is resampled once: turning it by quarter turns about its centre is np.rot90 of it (within one
        # grey level of resampling it turned), which cv2.rotate copies 7 times faster (0.3 against 2 ms)
        upright = warp_to_crop(rgb, to_window(0), size=MESH_WINDOW)
        windows = [upright]
        # the short-range detector in the window, once: its best score (counted from min_score) says which way is
        # up, and its best detection (from WINDOW_MIN_SCORE) places the landmark model, as in Face Mesh's graph
        found = [self._short.detect(upright, WINDOW_MIN_SCORE)]
        if self._window_score(found[0]) < SURELY_UPRIGHT:  # else the three turned windows need not be looked at
            windows += [cv2.rotate(upright, code) for code in _QUARTER_TURNS]
            found += [self._short.detect(w, WINDOW_MIN_SCORE) for w in windows[1:]]
        quarter = int(np.argmax([self._window_score(d) for d in found]))  # the first of equal scores: the least turn
        boxes, keypoints, _ = found[quarter]
        lm = self._landmarker.landmarks(windows[quarter], boxes[0], keypoints[0]) if len(boxes) else None
        if lm is None:
            return None
        xy = apply_affine(invert_affine(to_window(quarter)), lm[:, :2] * MESH_WINDOW - 0.5)
        depth = -lm[:, 2] * MESH_WINDOW / s  # MediaPipe z: scaled like x, smaller = nearer
        return np.column_stack([xy, depth]), 90 * quarter


def _unturned(points: np.ndarray, quarter: int, shape: tuple[int, ...]) -> np.ndarray:
    """Points (N x 2, x y) in np.rot90(image, quarter) -> the same points in the image of `shape`."""
    h, w = shape[:2]
    x, y = points[:, 0], points[:, 1]
    return {1: np.column_stack([w - 1 - y, x]), 2: np.column_stack([w - 1 - x, h - 1 - y]),
            3: np.column_stack([y, h - 1 - x])}[quarter]


def _landmarks5_from_mesh(mesh: np.ndarray) -> np.ndarray:
    return np.array([mesh[list(_EYE_CORNERS_LEFT), :2].mean(0), mesh[list(_EYE_CORNERS_RIGHT), :2].mean(0),
                     mesh[_NOSE_TIP, :2], mesh[_MOUTH_LEFT, :2], mesh[_MOUTH_RIGHT, :2]])


def _nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3) -> list[int]:
    order, keep = list(np.argsort(-scores)), []
    for i in order:
        if all(_iou(boxes[i], boxes[j]) < iou_threshold for j in keep):
            keep.append(int(i))
    return keep


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
