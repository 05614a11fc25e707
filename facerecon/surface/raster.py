"""Ray casting of triangle meshes (open3d, imported by the functions that cast) and bilinear lookups on pixel
grids."""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import open3d as o3d


def pixel_centres(size: int) -> np.ndarray:
    """(size*size, 2) float32 x, y of every pixel centre, row-major."""
    j, i = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    return np.column_stack([j.ravel(), i.ravel()])


def cast_rays(vertices: np.ndarray, triangles: np.ndarray,
              rays: np.ndarray) -> tuple[o3d.t.geometry.RaycastingScene, dict]:
    """Cast N rays (N x 6: origin, unit direction) at a triangle mesh. Returns the scene and 'hit' (N bool),
    't' (float32 distance along the ray, NaN where missed), 'triangle' and 'bary' (N_hit x 3 corner weights)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(vertices, np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(triangles, np.uint32)))
    ans = scene.cast_rays(o3d.core.Tensor(np.ascontiguousarray(rays, np.float32)))
    t_hit = ans["t_hit"].numpy()
    hit = np.isfinite(t_hit)
    uv = ans["primitive_uvs"].numpy()[hit]
    return scene, {"hit": hit, "t": np.where(hit, t_hit, np.nan).astype(np.float32),
                   "triangle": ans["primitive_ids"].numpy()[hit].astype(np.int64),
                   "bary": np.column_stack([1 - uv.sum(1), uv])}


def cast_pixels(vertices: np.ndarray, triangles: np.ndarray, size: int) -> tuple[o3d.t.geometry.RaycastingScene, dict]:
    """Orthographic: one ray per crop pixel centre along -z, for a mesh in crop coordinates. As cast_rays, with
    'depth' (float32 z of the hit, NaN where missed) for the S*S rays."""
    z0 = float(vertices[:, 2].max() + 1)
    rays = np.zeros((size * size, 6), np.float32)
    rays[:, :2], rays[:, 2], rays[:, 5] = pixel_centres(size), z0, -1
    scene, cast = cast_rays(vertices, triangles, rays)
    cast["depth"] = z0 - cast["t"]
    return scene, cast


def sample_bilinear(image: np.ndarray, xy: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Bilinear lookup of image (H x W or H x W x C) at N x 2 pixel coordinates (x, y; centres at integers).

    The N lookups are laid out in rows of 256 because cv2.remap wants maps narrower than 32767 either way."""
    n, cols = len(xy), 256
    pad = (-n) % cols
    maps = [np.pad(np.asarray(xy[:, i], np.float32), (0, pad)).reshape(-1, cols) for i in (0, 1)]
    out = cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=border)
    return out.reshape(-1, *image.shape[2:3])[:n]
