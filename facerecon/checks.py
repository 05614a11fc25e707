"""What will make a reconstruction poor, said in plain words: one set of warnings for the CLI (stderr), the Python
result (FaceReconstruction.warnings) and the web demo. Each is a sentence; a face's own begin with "The face" (the
demo names the face there when a photo has several). numpy only."""
from __future__ import annotations

import numpy as np

from .preprocess.align import CANONICAL_LANDMARKS, apply_affine
from .preprocess.detect import DetectedFace

SMALL_FACE_PX = 60  # faces narrower than this (in the photo): little detail to recover
LARGE_PHOTO_PX = 16_000_000
TURN_LIMIT = 0.35  # nose offset from the eye midpoint, in inter-ocular distances: beyond ~40 degrees of yaw
MIN_FACE_SHARE = 0.15  # of the crop: frontal portraits' masks hold 0.35-0.40 of it, a blurred photo's 0-0.05


def head_turn(crop_affine: np.ndarray, landmarks5: np.ndarray) -> float:
    """Signed nose offset from the eye midpoint along the eye line, in inter-ocular distances (0 = frontal)."""
    lm = apply_affine(crop_affine, landmarks5)
    eye_axis = lm[1] - lm[0]
    iod = np.linalg.norm(eye_axis)
    canonical = (CANONICAL_LANDMARKS[2] - CANONICAL_LANDMARKS[:2].mean(0)) @ eye_axis / iod
    return float(((lm[2] - lm[:2].mean(0)) @ eye_axis / iod - canonical) / iod)


def face_warnings(face: DetectedFace, crop_affine: np.ndarray, mask: np.ndarray) -> list[str]:
    """This face's problems: upside down or on its side in the photo (put upright), small in the photo, turned far,
    little of the crop (mask: S x S probability) recognised as face."""
    warnings = []
    if face.turn:
        how = "upside down" if face.turn == 180 else "on its side"
        warnings.append(f"The face was {how} in the photo (turned {face.turn} degrees): it was put upright.")
    width = float(face.box[2] - face.box[0])
    if width < SMALL_FACE_PX:
        warnings.append(f"The face is small in the photo ({width:.0f} pixels wide): expect little detail.")
    if abs(head_turn(crop_affine, face.landmarks5)) > TURN_LIMIT:
        warnings.append("The face is turned far to the side: the mesh shows the visible side only.")
    share = float((mask > 0.5).mean())
    if share < MIN_FACE_SHARE:
        warnings.append(f"The face is hardly recognised ({share:.0%} of its crop): the photo may be blurred or the "
                        "face covered, and the mesh will be small.")
    return warnings


def photo_warnings(shape: tuple[int, ...], left_out: int, max_faces: int) -> list[str]:
    """The photo's problems, which concern each of its faces: very large, faces left out."""
    warnings = []
    if shape[0] * shape[1] > LARGE_PHOTO_PX:
        warnings.append(f"The photo is very large ({shape[1]}x{shape[0]}): a smaller copy would run faster.")
    if left_out:
        warnings.append(f"{left_out} more face{'s' if left_out > 1 else ''} in the photo "
                        f"{'were' if left_out > 1 else 'was'} left out (at most {max_faces} "
                        f"face{'s' if max_faces > 1 else ''} a photo: FACERECON_MAX_FACES).")
    return warnings
