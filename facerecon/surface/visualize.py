"""Pictures of the maps, aligned with the face crop: mask overlay, depth colour map, detail, shaded normals."""
from __future__ import annotations

import cv2
import numpy as np

from ..preprocess.align import MM_PER_CROP_PIXEL
from ..result import FaceReconstruction


def normal_components(depth: np.ndarray, y_up: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The x, y and z components (H x W float32 each) of the unit normals of a depth map in crop pixels: x right, y
    down (the crop's frame) or up (y_up: the mesh frame, glTF's), z towards the viewer."""
    gy, gx = np.gradient(depth.astype(np.float32))
    length = 1 / np.sqrt(gx * gx + gy * gy + 1)  # of (-gx, -gy, 1), written out: a third of np.linalg.norm's time
    gx *= -length  # in place: the temporaries of -gx * length took a third of the time
    gy *= length if y_up else -length
    return gx, gy, length


def normals_from_depth(depth: np.ndarray, y_up: bool = False) -> np.ndarray:
    """H x W x 3 unit normals of a depth map in crop pixels (normal_components)."""
    return np.dstack(normal_components(depth, y_up))


def mask_overlay(face: FaceReconstruction) -> np.ndarray:
    inside = face.mask > 0.5
    out = face.crop_rgb.astype(np.float32)
    out[inside] = 0.6 * out[inside] + 0.4 * np.array([60, 220, 120])
    contours, _ = cv2.findContours(inside.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = out.astype(np.uint8)
    cv2.drawContours(out, contours, -1, (40, 255, 90), 1, cv2.LINE_AA)
    return out


def _on_dimmed_crop(face: FaceReconstruction, picture: np.ndarray) -> np.ndarray:
    inside = (face.mask > 0.5)[..., None]
    return np.where(inside, picture, (face.crop_rgb * 0.25).astype(np.uint8))


def depth_colour(face: FaceReconstruction, detail_strength: float = 1.0) -> np.ndarray:
    """Turbo colour map of the depth inside the mask (red = near)."""
    inside = face.mask > 0.5
    depth = face.coarse_depth + detail_strength * face.detail
    lo, hi = (np.percentile(depth[inside], [1, 99]) if inside.any() else (0.0, 1.0))
    norm = np.clip((depth - lo) / max(hi - lo, 1e-6), 0, 1)
    colour = cv2.cvtColor(cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    return _on_dimmed_crop(face, colour)


def detail_picture(face: FaceReconstruction) -> np.ndarray:
    """The detail map as grey relief (brighter = raised), contrast set by its own spread."""
    inside = face.mask > 0.5
    spread = np.percentile(np.abs(face.detail[inside]), 98) if inside.any() else 1.0
    grey = np.clip(128 + 120 * face.detail / max(spread, 1e-3), 0, 255).astype(np.uint8)
    return _on_dimmed_crop(face, np.repeat(grey[..., None], 3, axis=2))


def shaded_normals(face: FaceReconstruction, detail_strength: float = 1.0) -> np.ndarray:
    """The final surface lit from the upper left (Lambert + a little specular), like a clay render."""
    n = normals_from_depth(face.coarse_depth + detail_strength * face.detail)
    light = np.array([-0.4, -0.5, 0.77])
    light /= np.linalg.norm(light)
    half = light + [0, 0, 1]
    half /= np.linalg.norm(half)
    diffuse = np.clip(n @ light, 0, 1)
    shade = 0.15 + 0.75 * diffuse + 0.25 * np.clip(n @ half, 0, 1) ** 30
    grey = (np.clip(shade, 0, 1) * 255).astype(np.uint8)
    return _on_dimmed_crop(face, np.dstack([grey, grey, (grey * 0.97).astype(np.uint8)]))


def turned_view(face: FaceReconstruction, yaw_deg: float = 35.0, detail_strength: float = 1.0) -> np.ndarray:
    """The reconstructed mesh turned by yaw_deg about the vertical axis, ray cast and clay-shaded (S x S x 3)."""
    from .mesh import CENTRE, build_mesh, triangle_cross
    from .raster import cast_pixels

    mesh = build_mesh(face, detail_strength=detail_strength)
    v = mesh.vertices / MM_PER_CROP_PIXEL
    triangle_normals = np.column_stack(triangle_cross(v, mesh.triangles))
    triangle_normals /= np.maximum(np.linalg.norm(triangle_normals, axis=1, keepdims=True), 1e-12)
    a = np.radians(yaw_deg)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    centre = v.mean(0)
    v = (v - centre) @ rot.T + [0, centre[1], 0]
    crop = np.column_stack([v[:, 0] + CENTRE, CENTRE - v[:, 1], v[:, 2]])
    size = face.crop_rgb.shape[0]
    _, cast = cast_pixels(crop, mesh.triangles, size)
    n = triangle_normals[cast["triangle"]] @ rot.T
    n[:, 1] *= -1  # mesh frame (Y up) -> crop frame (y down)
    light = np.array([-0.4, -0.5, 0.77]) / np.linalg.norm([-0.4, -0.5, 0.77])
    shade = 0.15 + 0.8 * np.clip(n @ light, 0, 1)
    out = np.full((size * size, 3), 235, np.uint8)
    out[cast["hit"]] = (np.clip(shade, 0, 1)[:, None] * [255, 250, 245]).astype(np.uint8)
    return out.reshape(size, size, 3)


FIGURE_COLUMNS = {
    "maps": "crop | mask | depth | detail | mesh from the front | mesh turned 60 degrees",
    "detail": "crop | coarse shading | final shading | detail | mesh turned 60 degrees, detail 0 | the same, detail 1",
}


def figure_row(face: FaceReconstruction, layout: str = "maps") -> np.ndarray:
    """The columns of FIGURE_COLUMNS[layout] side by side, each S x S: "maps" shows the maps and the mesh,
    "detail" what the detail adds (the surface lit without and with it, and the mesh turned without and with it)."""
    if layout == "detail":
        pictures = [face.crop_rgb, shaded_normals(face, 0.0), shaded_normals(face, 1.0), detail_picture(face),
                    turned_view(face, 60.0, 0.0), turned_view(face, 60.0, 1.0)]
    else:
        pictures = [face.crop_rgb, mask_overlay(face), depth_colour(face), detail_picture(face),
                    turned_view(face, 0.0), turned_view(face, 60.0)]
    return np.concatenate(pictures, axis=1)
