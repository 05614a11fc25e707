"""The synthetic photo's perspective camera, seen through the inference crop.

Camera frame: pinhole at the origin looking along -z; x right, y up, z towards the viewer (the face model's frame),
centimetres. The virtual photo has its principal point at pixel (0, 0) and y down: a point (x, y, z) lands on
(f x / -z, -f y / -z). The crop affine (align.crop_affine on the projected landmarks, as at inference) takes the
photo into the crop, so the crop pixel centre (u, v) sees the ray through A^-1 (u, v).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..align import affine_scale, apply_affine, invert_affine
from ..raster import pixel_centres


@dataclass
class CropCamera:
    focal: float  # photo pixels per unit of x / -z
    affine: np.ndarray  # 2x3, photo -> crop pixels
    size: int  # crop side in pixels

    def photo_points(self, points: np.ndarray) -> np.ndarray:
        """N x 3 camera-frame points -> N x 2 photo pixels."""
        return self.focal * np.column_stack([points[:, 0], -points[:, 1]]) / -points[:, 2:3]

    def project(self, points: np.ndarray) -> np.ndarray:
        """N x 3 camera-frame points -> N x 2 crop pixels."""
        return apply_affine(self.affine, self.photo_points(points))

    def pixel_rays(self) -> np.ndarray:
        """(size*size, 3) unit directions from the camera through every crop pixel centre, row-major."""
        photo = apply_affine(invert_affine(self.affine), pixel_centres(self.size))
        d = np.column_stack([photo[:, 0] / self.focal, -photo[:, 1] / self.focal, -np.ones(len(photo))])
        return (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)

    def crop_px_per_cm(self, distance: float) -> float:
        """Crop pixels per centimetre across the view at `distance` cm from the camera."""
        return affine_scale(self.affine) * self.focal / distance

    def to_crop_frame(self) -> np.ndarray:
        """3x3 rotation taking camera-frame directions into the crop frame (x right, y down in the crop, z towards
        the viewer): y flips, then x and y turn with the crop's in-plane rotation. Exact for directions at the
        optical axis; off axis the crop frame is the local weak-perspective approximation."""
        lin = self.affine[:, :2] / affine_scale(self.affine)
        m = np.eye(3)
        m[:2, :2] = lin @ np.diag([1.0, -1.0])
        return m.astype(np.float32)
