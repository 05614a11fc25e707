"""Maps -> FaceMesh: one vertex per crop pixel inside the face mask, joined across depth steps.

Mesh frame (glTF's): X right, Y up, Z towards the viewer, in millimetres (align.MM_PER_CROP_PIXEL), origin at the
crop centre. Vertex (X, Y) comes from crop pixel (x, y) so UVs are a function of position (texture_uv).

The mesh is plain numpy arrays, built without open3d (slow to import, on every launch: docs/speed.md): open3d is
imported for decimation (FaceMesh.to_open3d) and ray casting (raster) only.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import EmptyFaceError
from ..preprocess.align import CROP_SIZE, MM_PER_CROP_PIXEL
from ..result import FaceReconstruction
from .raster import sample_bilinear

if TYPE_CHECKING:
    import open3d as o3d

CENTRE = (CROP_SIZE - 1) / 2
DETAIL_STRENGTH_MAX = 5.0  # beyond it the detail dwarfs the face's own relief
MIN_TRIANGLES = 100  # the fewest triangles a decimated face keeps


@dataclass
class FaceMesh:
    """A triangle mesh in the mesh frame: vertices N x 3 float64 (mm), triangles M x 3 int32 (counter-clockwise seen
    from +Z), over crop_rgb (S x S x 3 uint8, the crop the vertices lie on). Computed when first asked for, as the GLB
    needs neither (its normals come from the coarse depth, its colours from the texture): vertex_normals N x 3 unit,
    vertex_colors N x 3 float64 in [0, 1] (the crop's colour under each vertex, for PLY and STL)."""

    vertices: np.ndarray
    triangles: np.ndarray
    crop_rgb: np.ndarray

    @cached_property
    def vertex_normals(self) -> np.ndarray:
        return vertex_normals(self.vertices, self.triangles)

    @cached_property
    def vertex_colors(self) -> np.ndarray:
        colours = sample_bilinear(self.crop_rgb.astype(np.float32), mesh_frame_to_crop(self.vertices))
        return colours.astype(np.float64) / 255

    def to_open3d(self) -> o3d.geometry.TriangleMesh:
        import open3d as o3d

        mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(self.vertices),
                                         o3d.utility.Vector3iVector(self.triangles))  # int32: copied at once
        mesh.vertex_normals = o3d.utility.Vector3dVector(self.vertex_normals)
        return mesh

    @classmethod
    def from_open3d(cls, mesh: o3d.geometry.TriangleMesh, crop_rgb: np.ndarray) -> FaceMesh:
        vertices, triangles = np.asarray(mesh.vertices), np.asarray(mesh.triangles).astype(np.int32)
        return cls(vertices, triangles, crop_rgb)


def triangle_cross(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cross product (b - a) x (c - a) of each triangle (a, b, c), as its x, y and z components (M each): twice
    the area along the triangle's normal."""
    x, y, z = (np.ascontiguousarray(vertices[:, i]) for i in range(3))  # column by column: gathers of rows of 3
    t0, t1, t2 = (np.ascontiguousarray(triangles[:, k]) for k in range(3))  # took half again as long
    ux, uy, uz = x[t1] - x[t0], y[t1] - y[t0], z[t1] - z[t0]
    vx, vy, vz = x[t2] - x[t0], y[t2] - y[t0], z[t2] - z[t0]
    return uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """N x 3 unit normals: the sum of the cross products of the triangles around each vertex (so weighted by their
    area), normalised; what open3d's compute_vertex_normals gives, in numpy so that meshing needs no open3d."""
    n = len(vertices)
    # each triangle's cross product goes to its three corners (bincount: np.add.at is 10x slower)
    normals = np.column_stack([sum(np.bincount(triangles[:, k], w, n) for k in range(3))
                               for w in triangle_cross(vertices, triangles)])
    length = np.sqrt((normals * normals).sum(1, keepdims=True))
    return normals / np.where(length > 0, length, 1)


def check_detail_strength(value) -> float:
    """value as a float from 0 to DETAIL_STRENGTH_MAX; ValueError naming it and the range otherwise (NaN, text,
    None, out of range)."""
    try:
        strength = float(value)
    except (TypeError, ValueError):
        strength = float("nan")
    if not 0 <= strength <= DETAIL_STRENGTH_MAX:  # also False for NaN
        raise ValueError(f"detail strength must be a number from 0 to {DETAIL_STRENGTH_MAX:g}, not {value!r}")
    return strength


def check_triangle_count(value) -> int | None:
    """None (no decimation) or a whole number of triangles of at least MIN_TRIANGLES; ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < MIN_TRIANGLES:
        raise ValueError(f"the triangle count to decimate to must be a whole number >= {MIN_TRIANGLES}, not {value!r}")
    return int(value)


def crop_to_mesh_frame(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.column_stack([x - CENTRE, CENTRE - y, z]) * MM_PER_CROP_PIXEL


def mesh_frame_to_crop(vertices: np.ndarray) -> np.ndarray:
    """N x 2 crop pixel (x, y) of mesh-frame vertices (N x 3): crop_to_mesh_frame undone."""
    return np.column_stack([vertices[:, 0] / MM_PER_CROP_PIXEL + CENTRE, CENTRE - vertices[:, 1] / MM_PER_CROP_PIXEL])


def texture_uv(vertices: np.ndarray) -> np.ndarray:
    """UV (v up, OBJ convention) of mesh-frame vertices on the crop texture; pixel x covers [x-0.5, x+0.5]."""
    xy = mesh_frame_to_crop(vertices)
    return np.column_stack([(xy[:, 0] + 0.5) / CROP_SIZE, 1 - (xy[:, 1] + 0.5) / CROP_SIZE])


# of the crop: a portrait's face region holds 0.35-0.40 of it (checks.MIN_FACE_SHARE warns under 0.15), a blurred
# photo's 0-0.05; under this it is no face surface, and a mesh of it would be a crumb
MIN_REGION_SHARE = 0.05


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


def face_region_meshable(inside: np.ndarray) -> bool:
    """Whether a region is a surface to mesh: MIN_REGION_SHARE of the crop or more, and a triangle in it (three
    pixels of one 2x2 block; a few scattered pixels hold none)."""
    blocks = inside[:-1, :-1].astype(np.uint8) + inside[:-1, 1:] + inside[1:, :-1] + inside[1:, 1:]
    return bool(inside.mean() >= MIN_REGION_SHARE and (blocks >= 3).any())


def contour_offsets(inside: np.ndarray, mask: np.ndarray, threshold: float) -> np.ndarray:
    """H x W x 2 sub-pixel (dx, dy) that move the edge pixels of `inside` onto the mask's threshold contour.

    An edge pixel has 4-neighbours outside where the mask is below the threshold; on each such edge the crossing
    is linearly interpolated, and the pixel moves to the mean of its crossings (at most 1 px; on a straight
    contour the mean lies on it). The mesh outline then follows the contour, not the pixel staircase. Zero
    elsewhere, also towards outside pixels the mask calls face (dropped islands) and beyond the map's border."""
    # only the pixels with a 4-neighbour outside can have a crossing: gathered once (a few thousand of 65,536)
    edge = inside & ~cv2.erode(inside.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)),
                               borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    ys, xs = np.nonzero(edge)
    padded_inside, padded_mask = np.pad(inside, 1), np.pad(mask, 1, mode="edge")
    here = mask[ys, xs]
    total, count = np.zeros((len(ys), 2), np.float32), np.zeros(len(ys), np.float32)
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        nb_mask = padded_mask[ys + 1 + dy, xs + 1 + dx]
        crossing = ~padded_inside[ys + 1 + dy, xs + 1 + dx] & (nb_mask < threshold)
        t = np.clip((here - threshold) / np.maximum(here - nb_mask, 1e-6), 0, 1) * crossing
        total += t[:, None] * np.array([dx, dy], np.float32)
        count += crossing
    offsets = np.zeros(inside.shape + (2,), np.float32)
    offsets[ys, xs] = total / np.maximum(count, 1)[:, None]
    return offsets


def inside_slopes(depth: np.ndarray, inside: np.ndarray, max_jump: float, ys: np.ndarray,
                  xs: np.ndarray) -> np.ndarray:
    """N x 2 depth slope (d/dx, d/dy per grid step) at pixels (ys, xs) from their neighbours in `inside` that are
    not across a jump (a difference over max_jump): the mean of the forward and backward differences that qualify.
    Gathered at the given pixels (the outline's: only they move) rather than computed over the whole map."""
    padded_depth, padded_inside = np.pad(depth, 1, mode="edge"), np.pad(inside, 1)
    here = depth[ys, xs]
    slopes = np.zeros((len(ys), 2), np.float32)
    for k, (dx, dy) in enumerate(((1, 0), (0, 1))):
        total, count = np.zeros_like(here), np.zeros_like(here)
        for sign in (1, -1):  # the neighbour after, then before
            diff = (padded_depth[ys + 1 + sign * dy, xs + 1 + sign * dx] - here) * sign
            ok = padded_inside[ys + 1 + sign * dy, xs + 1 + sign * dx] & (np.abs(diff) <= max_jump)
            total += diff * ok
            count += ok
        slopes[:, k] = total / np.maximum(count, 1)
    return slopes


def build_mesh(face: FaceReconstruction, detail_strength: float = 1.0, step: int = 1, mask_threshold: float = 0.5,
               max_slope: float = 8.0, target_triangles: int | None = None) -> FaceMesh:
    """Triangulate the depth map (coarse + detail_strength * detail) over the face region (face_region), its
    outline moved onto the mask's contour (contour_offsets).

    Every pixel block of the region is triangulated, also across a depth step: inside the face a step is the face
    hiding part of itself (the nose before the far cheek of a turned face; hair, hands and glasses are outside the
    mask), and the triangles across it join the near surface to the far one along the silhouette. Seen from the
    camera they are edge-on, so no hole shows there; from the side they close what the photo could not see with a
    wall instead of leaving a hole or a comb of strips where the step is near a cut-off. (Dropping the triangles
    steeper than max_slope did both: benchmarks/turned_faces.py.) max_slope still tells a step from a slope where
    the outline continues the surface (inside_slopes). target_triangles decimates (open3d's quadric error).
    """
    if step < 1:
        raise ValueError("step must be >= 1")
    detail_strength = check_detail_strength(detail_strength)
    target_triangles = check_triangle_count(target_triangles)
    depth = (face.coarse_depth + detail_strength * face.detail)[::step, ::step]
    inside = face_region(face.mask, mask_threshold)[::step, ::step]
    if not face_region_meshable(inside):
        raise EmptyFaceError(f"too little of the face's crop was recognised as face (under {MIN_REGION_SHARE:.0%}), so "
                             "there is no surface to mesh (the photo may be blurred or the face covered)")
    h, w = depth.shape
    index = np.full((h, w), -1, np.int32)
    index[inside] = np.arange(inside.sum(), dtype=np.int32)
    ys, xs = np.nonzero(inside)
    offsets = contour_offsets(inside, face.mask[::step, ::step], mask_threshold)[inside] * step
    xy = np.column_stack([xs, ys]) * step + offsets
    # an outline vertex carries its depth along the face's own slope: the prediction outside the mask is not
    # the face (sampling it there pulled outline vertices back and cracked the rim)
    z = depth[inside]
    moved = np.flatnonzero(offsets.any(1))
    z[moved] += (inside_slopes(depth, inside, max_slope * step, ys[moved], xs[moved]) * offsets[moved]).sum(1) / step
    vertices = crop_to_mesh_frame(xy[:, 0], xy[:, 1], z)

    # two triangles per 2x2 block of pixels (a b / c d), wound counter-clockwise seen from +Z (Y up); a block
    # with one corner outside gets the triangle of the other three (otherwise the outline would be notched
    # wherever b or c is the missing corner)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    no = np.full_like(a, -1)
    tris = []
    for p, q, r in ((a, c, b), (b, c, d), (a, c, np.where(b < 0, d, no)), (a, np.where(c < 0, d, no), b)):
        ok = (p >= 0) & (q >= 0) & (r >= 0)
        tris.append(np.column_stack([p[ok], q[ok], r[ok]]))
    tris = np.concatenate(tris)

    used = np.zeros(len(vertices), bool)  # pixels of the region in no triangle (a one-pixel spur) are dropped
    used[tris.ravel()] = True
    if not used.all():  # rare (0.8 ms of copies otherwise)
        renumber = np.cumsum(used, dtype=np.int32) - 1
        vertices, tris = vertices[used], renumber[tris]
    mesh = FaceMesh(vertices, tris, face.crop_rgb)
    if target_triangles and len(tris) > target_triangles:
        decimated = mesh.to_open3d().simplify_quadric_decimation(int(target_triangles))
        decimated.remove_degenerate_triangles()
        decimated.remove_unreferenced_vertices()
        mesh = FaceMesh.from_open3d(decimated, face.crop_rgb)
    return mesh
