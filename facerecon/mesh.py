"""Maps -> open3d TriangleMesh: one vertex per crop pixel inside the face mask, cut at depth discontinuities.

Mesh frame (glTF's): X right, Y up, Z towards the viewer, in millimetres (align.MM_PER_CROP_PIXEL), origin at the
crop centre. Vertex (X, Y) comes from crop pixel (x, y) so UVs are a function of position (texture_uv).
"""
from __future__ import annotations

import cv2
import numpy as np
import open3d as o3d

from .align import CROP_SIZE, MM_PER_CROP_PIXEL
from .predictor import FaceReconstruction

CENTRE = (CROP_SIZE - 1) / 2


def crop_to_mesh_frame(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.column_stack([x - CENTRE, CENTRE - y, z]) * MM_PER_CROP_PIXEL


def texture_uv(vertices: np.ndarray) -> np.ndarray:
    """UV (v up, OBJ convention) of mesh-frame vertices on the crop texture; pixel x covers [x-0.5, x+0.5]."""
    x = vertices[:, 0] / MM_PER_CROP_PIXEL + CENTRE
    y = CENTRE - vertices[:, 1] / MM_PER_CROP_PIXEL
    return np.column_stack([(x + 0.5) / CROP_SIZE, 1 - (y + 0.5) / CROP_SIZE])


def face_region(mask: np.ndarray, threshold: float = 0.5, min_share: float = 0.05,
                max_hole_share: float = 0.03) -> np.ndarray:
    """mask > threshold, cleaned for meshing: islands smaller than min_share of the largest part are dropped and
    holes smaller than max_hole_share of the face (the eyes, a closed mouth) are filled, since depth is predicted
    there too and a face surface with eye holes looks broken."""
    inside = (mask > threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=4)
    if n > 2:
        areas = stats[1:, cv2.CC_STAT_AREA]
        inside = np.isin(labels, np.flatnonzero(areas >= min_share * areas.max()) + 1).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - inside, connectivity=8)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    small = [k for k in range(1, n) if k not in border and stats[k, cv2.CC_STAT_AREA] < max_hole_share * inside.sum()]
    return inside.astype(bool) | np.isin(labels, small)


def build_mesh(face: FaceReconstruction, detail_strength: float = 1.0, step: int = 1, mask_threshold: float = 0.5,
               max_slope: float = 8.0, target_triangles: int | None = None) -> o3d.geometry.TriangleMesh:
    """Triangulate the depth map (coarse + detail_strength * detail) over the face region (face_region).

    A triangle is dropped when its depth range exceeds max_slope times its edge length in pixels: that is a
    jump (face edge against hair, an occluder), not a surface. Real surfaces get steep too: the underside of the
    nose falls ~4 crop px per px, and cutting it left a hole below the nose in turned views.
    target_triangles decimates (quadric error).
    """
    if step < 1:
        raise ValueError("step must be >= 1")
    depth = (face.coarse_depth + detail_strength * face.detail)[::step, ::step]
    inside = face_region(face.mask, mask_threshold)[::step, ::step]
    h, w = depth.shape
    index = np.full((h, w), -1, np.int64)
    index[inside] = np.arange(inside.sum())
    ys, xs = np.nonzero(inside)
    vertices = crop_to_mesh_frame(xs * step, ys * step, depth[inside])
    colours = face.crop_rgb[::step, ::step][inside].astype(np.float64) / 255

    # two triangles per 2x2 block of pixels, wound counter-clockwise seen from +Z (Y up)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    tris = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    tris = tris[(tris >= 0).all(1)]
    z = np.append(depth[inside], 0)[tris]
    tris = tris[np.ptp(z, axis=1) <= max_slope * step]

    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(tris))
    mesh.vertex_colors = o3d.utility.Vector3dVector(colours)
    mesh.remove_unreferenced_vertices()
    if target_triangles and len(mesh.triangles) > target_triangles:
        mesh = mesh.simplify_quadric_decimation(int(target_triangles))
        mesh.remove_degenerate_triangles()
        mesh.remove_unreferenced_vertices()
    mesh.compute_vertex_normals()
    return mesh
