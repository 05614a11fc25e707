"""FaceReconstructor: a photo -> list[FaceReconstruction], in named stages: detect -> crop -> predict.

Meshes and files follow from each result (FaceReconstruction.mesh / .export, or facerecon.build_mesh /
facerecon.export_face). torch is imported only when the torch backend is built.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .checks import face_warnings, photo_warnings
from .errors import NoFaceFound
from .model.backends import Backend, load_backend
from .preprocess.align import (
    CROP_SIZE,
    FRAMING,
    MAP_FRAMING,
    Framing,
    affine_scale,
    crop_affine,
    crop_to_crop,
    rescale_affine,
    warp_to_crop,
)
from .preprocess.detect import DetectedFace, Detections, FaceDetector
from .preprocess.image_io import ImageInput, load_image
from .result import FaceReconstruction

TEXTURE_SCALE = 2  # textures are sampled from the photo at twice the crop resolution
MAX_BATCH = 64  # crops per network call: the ONNX export's largest batch
# The coarse head predicts at 1/4 of the crop and is upsampled bilinearly: its slope changes every 4 px, which
# shaded meshes show as a grid. A Gaussian of this sigma (crop px) removes it; chosen on the selection set
# (render seed 9; docs/quality.md, "Coarse depth smoothing").
COARSE_SMOOTHING_PX = 1.0
# The mask head predicts at 1/8 of the crop and its logits are upsampled bilinearly: the face's outline is a ramp
# 8 px wide that follows no edge of the photo. A guided filter (He et al. 2010, opencv-contrib's ximgproc) of the
# mask probability with the crop's luminance as its guide steepens that ramp where the crop has an edge within its
# radius (jaw, hairline) and leaves it where the crop is flat. Radius and regularisation chosen on the selection set
# (render seed 9; docs/quality.md, "The mask's edges"); the crop's colour as the guide added 0.0003 IoU there for
# seven times the time (4 ms a crop).
MASK_GUIDE_RADIUS_PX = 2
MASK_GUIDE_EPS = 0.005


def to_batch(crops: np.ndarray) -> np.ndarray:
    """N x S x S x 3 uint8 -> N x 3 x S x S float32 in [0, 1]."""
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def guided_mask(mask: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """S x S mask probability -> the same, its outline steepened where the S x S x 3 uint8 crop has an edge
    (MASK_GUIDE_RADIUS_PX)."""
    guide = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    return np.clip(cv2.ximgproc.guidedFilter(guide, mask, MASK_GUIDE_RADIUS_PX, MASK_GUIDE_EPS), 0, 1)


def postprocess(logits: np.ndarray, coarse: np.ndarray, crops: np.ndarray | None,
                smoothing_px: float = COARSE_SMOOTHING_PX) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid the mask, its edges guided by the N x S x S x 3 uint8 crops (guided_mask; None = as the network
    gives them); smooth each coarse map (a Gaussian of sigma smoothing_px, 0 = none) and shift it to zero
    mean over its face mask. The whole map is smoothed: the prediction around the face continues the face's (at
    1/4 resolution it has mixed in already), and a blur that kept to the mask raised the rims of the face and
    the depth error (selection set: coarse MAE 1.957 mm vs 1.952, normal error 12.17 vs 12.07 deg)."""
    mask = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    coarse = coarse.astype(np.float32)
    for i in range(len(coarse)):
        if crops is not None:
            mask[i] = guided_mask(mask[i], crops[i])
        if smoothing_px > 0:
            coarse[i] = cv2.GaussianBlur(coarse[i], (0, 0), smoothing_px)
        inside = mask[i] > 0.5
        if inside.any():
            coarse[i] -= coarse[i][inside].mean()
    return mask, coarse


def to_map_frame(mask: np.ndarray, coarse: np.ndarray, detail: np.ndarray, network_affine: np.ndarray,
                 map_affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One face's maps (S x S each) from the network's crop into the maps' crop (both image -> crop affines): warped
    by the similarity between the two crops (near the identity: a small turn, zoom and shift), the depths scaled
    with it (they are in crop pixels) and the coarse depth's mean over the mask zero again. Bilinear, as bicubic did
    no better (docs/quality.md, "Maps in the smile-steady frame")."""
    between = crop_to_crop(network_affine, map_affine)
    size = mask.shape[::-1]

    def warp(a: np.ndarray, border: int) -> np.ndarray:
        return cv2.warpAffine(a, between, size, flags=cv2.INTER_LINEAR, borderMode=border)

    k = np.float32(affine_scale(between))
    mask = warp(mask, cv2.BORDER_CONSTANT)  # beyond the network's crop: no face
    coarse, detail = warp(coarse, cv2.BORDER_REPLICATE) * k, warp(detail, cv2.BORDER_REPLICATE) * k
    inside = mask > 0.5
    if inside.any():
        coarse -= coarse[inside].mean()
    return mask, coarse, detail


@dataclass
class Crops:
    """The aligned crops of N faces of one photo (docs/representation.md): the network's, and the maps' (the same
    when the network runs on the maps' framing)."""

    rgb: np.ndarray  # N x S x S x 3 uint8: the network's input
    affines: np.ndarray  # N x 2 x 3: image -> the network's crop
    map_rgb: np.ndarray  # N x S x S x 3 uint8: the photo in the maps' crop
    map_affines: np.ndarray  # N x 2 x 3: image -> the maps' crop
    textures: np.ndarray  # N x (TEXTURE_SCALE*S) x (TEXTURE_SCALE*S) x 3 uint8: the maps' crops sampled finer


class FaceReconstructor:
    """Photo -> list[FaceReconstruction], largest face first; raises ImageReadError / NoFaceFound.

    The stages, each a method: detect (faces and landmarks), crop (align each face to the crop template), predict
    (the network on the crops: mask, coarse depth, detail), and reconstruct, which runs them in turn;
    `reconstructor(image)` is short for `reconstructor.reconstruct(image)`.

    flip_average: the network also sees every crop mirrored, and its outputs, mirrored back, are averaged with the
    plain ones (the crop template is left-right symmetric and training flips crops, so the mirror is a crop like
    any other). Twice the network time; no evaluation metric got worse and most improved (docs/quality.md).
    coarse_smoothing_px: see COARSE_SMOOTHING_PX; 0 gives the network's coarse depth unsmoothed.
    mask_edges_guided: see MASK_GUIDE_RADIUS_PX; False gives the network's mask as upsampled.
    framing: how the network's crops are fitted to the landmarks; the one it was trained with (from_pretrained reads
    it from the model's config). map_framing: the frame of the maps returned (align.MAP_FRAMING); where it is
    not the network's, its maps are warped into it (to_map_frame)."""

    def __init__(self, backend: Backend, detector: FaceDetector | None = None, flip_average: bool = True,
                 coarse_smoothing_px: float = COARSE_SMOOTHING_PX, framing: Framing = FRAMING,
                 map_framing: Framing = MAP_FRAMING, mask_edges_guided: bool = True):
        self.backend = backend
        self.detector = detector or FaceDetector()
        self.flip_average = flip_average
        self.coarse_smoothing_px = coarse_smoothing_px
        self.mask_edges_guided = mask_edges_guided
        self.framing, self.map_framing = framing, map_framing

    @classmethod
    def from_pretrained(cls, source: str | Path | None = None, revision: str | None = None, backend: str = "auto",
                        device: str = "auto", detector: FaceDetector | None = None,
                        flip_average: bool = True, coarse_smoothing_px: float = COARSE_SMOOTHING_PX,
                        mask_edges_guided: bool = True) -> FaceReconstructor:
        """source: a local model folder or a Hugging Face repo id (None: $FACERECON_MODEL or the published model,
        falling back to the bundled weights; facerecon.model.hub.resolve_weights). backend: auto (the int8 network on
        a CPU, torch on a CUDA GPU), torch, onnx or onnx-int8 (facerecon.model.backends.load_backend)."""
        from .model.hub import read_config, resolve_weights

        folder = resolve_weights(source, revision)
        framing = Framing.from_list(read_config(folder)[0].crop_framing)
        return cls(load_backend(folder, backend, device), detector, flip_average, coarse_smoothing_px, framing,
                   mask_edges_guided=mask_edges_guided)

    @property
    def device(self) -> str:
        return self.backend.device

    def detect(self, rgb: np.ndarray) -> Detections:
        """H x W x 3 uint8 photo -> its faces with landmarks, largest first (and how many the cap left out);
        NoFaceFound when there is none."""
        faces = self.detector.detect(rgb)
        if not faces:
            raise NoFaceFound("no face was found in the image")
        return faces

    def crop(self, rgb: np.ndarray, faces: list[DetectedFace]) -> Crops:
        """Align each face to the crop template (facerecon.preprocess.align) as the network was trained, and as the
        maps are returned; sample the maps' crop finer for the texture."""
        affines = np.stack([crop_affine(f.landmarks5, self.framing) for f in faces])
        crops = np.stack([warp_to_crop(rgb, a) for a in affines])
        map_affines, map_crops = affines, crops
        if self.map_framing != self.framing:
            map_affines = np.stack([crop_affine(f.landmarks5, self.map_framing) for f in faces])
            map_crops = np.stack([warp_to_crop(rgb, a) for a in map_affines])
        return Crops(rgb=crops, affines=affines, map_rgb=map_crops, map_affines=map_affines,
                     textures=np.stack([warp_to_crop(rgb, rescale_affine(a, TEXTURE_SCALE), CROP_SIZE * TEXTURE_SCALE)
                                        for a in map_affines]))

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """N x S x S x 3 uint8 aligned crops -> (mask probability, coarse depth, detail), each N x S x S float32."""
        batch = to_batch(crops)
        if self.flip_average:
            batch = np.concatenate([batch, np.ascontiguousarray(batch[..., ::-1])])
        chunks = [self.backend.run(batch[i:i + MAX_BATCH]) for i in range(0, len(batch), MAX_BATCH)]
        logits, coarse, detail = (np.concatenate(outs) for outs in zip(*chunks))
        if self.flip_average:
            n = len(crops)
            logits, coarse, detail = ((o[:n] + o[n:, :, ::-1]) / 2 for o in (logits, coarse, detail))
        mask, coarse = postprocess(logits, coarse, crops if self.mask_edges_guided else None,
                                   self.coarse_smoothing_px)
        return mask, coarse, detail

    def reconstruct(self, image: ImageInput, faces: list[DetectedFace] | None = None) -> list[FaceReconstruction]:
        """A photo (path, bytes, PIL image or H x W x 3 array) -> one FaceReconstruction per face, largest first.
        faces: detections to use instead of running the detector."""
        t0 = time.perf_counter()
        rgb = load_image(image)
        t1 = time.perf_counter()
        faces = self.detect(rgb) if faces is None else faces
        if not faces:
            raise NoFaceFound("no face was found in the image")
        t2 = time.perf_counter()
        crops = self.crop(rgb, faces)
        t3 = time.perf_counter()
        mask, coarse, detail = self.predict(crops.rgb)
        t4 = time.perf_counter()
        maps = [to_map_frame(mask[i], coarse[i], detail[i], crops.affines[i], crops.map_affines[i])
                if self.map_framing != self.framing else (mask[i], coarse[i], detail[i]) for i in range(len(faces))]
        t5 = time.perf_counter()
        timings = {"decode": (t1 - t0) * 1e3, "detect": (t2 - t1) * 1e3, "align": (t3 - t2 + t5 - t4) * 1e3,
                   "network": (t4 - t3) * 1e3}  # align: the crops, and the maps into the maps' crop
        photo = photo_warnings(rgb.shape, getattr(faces, "left_out", 0), self.detector.max_faces)
        return [FaceReconstruction(mask=m, coarse_depth=c, detail=d, crop_affine=crops.map_affines[i],
                                   crop_rgb=crops.map_rgb[i], texture_rgb=crops.textures[i], box=f.box,
                                   landmarks5=f.landmarks5, score=f.score, turn=f.turn, timings=dict(timings),
                                   warnings=face_warnings(f, crops.map_affines[i], m) + photo)
                for i, (f, (m, c, d)) in enumerate(zip(faces, maps))]

    __call__ = reconstruct
