"""The synthetic photo's perspective camera, seen through the inference crop.

Camera frame: pinhole at the origin looking along -z; x right, y up, z towards the viewer (the face model's frame),
centimetres. The virtual photo has its principal point at pixel (0, 0) and y down: a point (x, y, z) lands on
(f x / -z, -f y / -z). The crop affine (align.crop_affine on the projected landmarks, as at inference) takes the
photo into the crop, so the crop pixel centre (u, v) sees the ray through A^-1 (u, v).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...preprocess.align import apply_affine, invert_affine
from ...surface.raster import pixel_centres


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

    def rays(self, crop_px: np.ndarray) -> np.ndarray:
        """N x 2 crop pixels -> N x 3 camera-frame ray directions (z = -1, not unit length)."""
        photo = apply_affine(invert_affine(self.affine), crop_px)
        return np.column_stack([photo[:, 0] / self.focal, -photo[:, 1] / self.focal, -np.ones(len(photo))])

    def pixel_rays(self) -> np.ndarray:
        """(size*size, 3) unit directions from the camera through every crop pixel centre, row-major."""
        d = self.rays(pixel_centres(self.size))
        return (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)

    def crop_frame(self) -> np.ndarray:
        """3x3 matrix whose rows are the crop's axes in the camera frame: x right and y down in the crop, z towards
        the viewer along the crop centre's line of sight. The crop sees the face from that line (the similarity
        crop cannot show where on the photo the face was), so depth and normals are measured in this frame."""
        c = (self.size - 1) / 2
        centre, right = self.rays(np.array([[c, c], [c + 1, c]]))
        z = -centre / np.linalg.norm(centre)
        x = right - centre - ((right - centre) @ z) * z
        x /= np.linalg.norm(x)
        return np.stack([x, np.cross(x, z), z])  # x cross z = the crop's y (down) for a similarity crop

    def crop_px_per_cm(self, point: np.ndarray) -> float:
        """Crop pixels per centimetre across the line of sight at a camera-frame point (the face): the geometric
        mean of the projection's gains along the crop frame's x and y there."""
        x, y, z = point
        w = -z
        photo_jacobian = self.focal / w * np.array([[1.0, 0.0, x / w], [0.0, -1.0, -y / w]])  # d photo / d point
        lateral = self.affine[:, :2] @ photo_jacobian @ self.crop_frame()[:2].T  # d crop / d (x, y) of the frame
        return float(np.sqrt(abs(np.linalg.det(lateral))))
