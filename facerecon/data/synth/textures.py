"""Real skin for the synthetic faces: portraits unwrapped into MediaPipe's face UV space, and a map from the ICT
face model's vertices into that space.

1. unwrap_photo: MediaPipe Face Mesh on a portrait gives the image position of each of the 468 canonical vertices;
   every canonical triangle is resampled from the photo into its place in the canonical UV layout (ray casting the
   UV-space mesh gives each texel its triangle and barycentrics). Back-facing triangles are left unseen, and the
   unseen texels are filled from the mirrored side, then by the portrait's mean skin colour.
2. ict_uv_map: the canonical mesh is aligned to the ICT neutral head by a 3D similarity on nine landmarks; a ray
   along -z from each ICT vertex finds the canonical surface in front, whose UV the vertex takes (NaN where none).
The renderer interpolates these UVs per pixel and samples a portrait's texture there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d

from ...preprocess.align import similarity_lstsq
from ...surface.raster import cast_pixels, sample_bilinear

TEXTURE_SIZE = 512
SHADING_SIGMA = 12.0  # texels (the face spans about 400): coarser than creases and pores, finer than the light
MIN_AREA_RATIO = 0.4  # triangles shrunk below this share of the typical image/UV area ratio count as unseen
# (ICT 68-point landmark, MediaPipe canonical vertex): eye corners, nose bridge and tip, mouth corners, chin
_CORRESPONDENCES = [(36, 33), (39, 133), (42, 362), (45, 263), (27, 168), (30, 1), (48, 61), (54, 291), (8, 152)]


@dataclass
class SkinTextures:
    """Portrait textures in canonical UV space (N x S x S x 4 uint8, alpha = photo skin) and the canonical UV of
    every ICT vertex (V x 2, NaN where the canonical surface does not reach)."""

    images: np.ndarray
    ict_uv: np.ndarray

    def save(self, path: Path) -> None:
        np.savez_compressed(path, images=self.images, ict_uv=self.ict_uv)

    @classmethod
    def load(cls, path: Path) -> SkinTextures:
        with np.load(path) as z:
            return cls(z["images"], z["ict_uv"])


@dataclass
class CanonicalMesh:
    vertices: np.ndarray  # 468 x 3 (cm, y up, z towards the viewer)
    triangles: np.ndarray  # T x 3 vertex ids
    tri_uv: np.ndarray  # T x 3 x 2 UVs (v up)

    @classmethod
    def load(cls, data_dir: Path) -> CanonicalMesh:
        verts, uvs, tris, tri_uv = [], [], [], []
        for line in (Path(data_dir) / "mediapipe_canonical" / "canonical_face_model.obj").read_text().splitlines():
            kind, *rest = line.split() or [""]
            if kind == "v":
                verts.append([float(x) for x in rest[:3]])
            elif kind == "vt":
                uvs.append([float(x) for x in rest[:2]])
            elif kind == "f":
                corners = [c.split("/") for c in rest[:3]]
                tris.append([int(c[0]) - 1 for c in corners])
                tri_uv.append([int(c[1]) - 1 for c in corners])
        return cls(np.array(verts), np.array(tris), np.array(uvs)[np.array(tri_uv)])


def _uv_to_texel(uv: np.ndarray, size: int) -> np.ndarray:
    """UV (v up) -> texel coordinates (x right, y down, pixel centres at integers)."""
    return np.stack([uv[..., 0] * size - 0.5, (1 - uv[..., 1]) * size - 0.5], axis=-1)


def unwrap_photo(rgb: np.ndarray, landmarks_xy: np.ndarray, mesh: CanonicalMesh,
                 size: int = TEXTURE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(size x size x 3 uint8 texture in canonical UV space, size x size bool: texels seen in the photo)."""
    tri_xy = landmarks_xy[mesh.triangles]  # T x 3 x 2 image positions
    d1, d2 = tri_xy[:, 1] - tri_xy[:, 0], tri_xy[:, 2] - tri_xy[:, 0]
    uv_px = _uv_to_texel(mesh.tri_uv, size)
    u1, u2 = uv_px[:, 1] - uv_px[:, 0], uv_px[:, 2] - uv_px[:, 0]
    # seen = keeps its winding from UV space to the image (y down in both) and is not foreshortened to a sliver
    # (the triangles along the face contour, whose texels would mix in hair and background)
    area_img, area_uv = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0], u1[:, 0] * u2[:, 1] - u1[:, 1] * u2[:, 0]
    ratio = area_img / np.where(area_uv == 0, 1e-9, area_uv)
    visible = ratio > MIN_AREA_RATIO * np.median(ratio)
    flat = np.column_stack([uv_px.reshape(-1, 2), np.zeros(len(uv_px) * 3)])
    _, cast = cast_pixels(flat, np.arange(len(flat)).reshape(-1, 3), size)
    seen = np.zeros(size * size, bool)
    keep = visible[cast["triangle"]]
    seen[np.flatnonzero(cast["hit"])[keep]] = True
    xy = np.einsum("nk,nkc->nc", cast["bary"][keep], tri_xy[cast["triangle"][keep]]).astype(np.float32)
    texture = np.zeros((size * size, 3), np.uint8)
    texture[seen] = sample_bilinear(rgb, xy)
    return _fill_unseen(texture.reshape(size, size, 3), seen.reshape(size, size))


def _fill_unseen(texture: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unseen texels take the mirrored texel when that was seen (the layout is left-right symmetric); the rest is
    inpainted from the surrounding skin. Returns the texture and the texels that hold photo (or mirrored) skin."""
    mirrored_seen = seen[:, ::-1]
    out = np.where((~seen & mirrored_seen)[..., None], texture[:, ::-1], texture)
    covered = seen | mirrored_seen
    out = cv2.inpaint(out, (~covered).astype(np.uint8), 5, cv2.INPAINT_TELEA)
    return out, covered


def flatten_shading(images: np.ndarray, sigma: float = SHADING_SIGMA) -> np.ndarray:
    """N x S x S x 4 portrait textures with the studio light's shading divided out of their skin.

    Each texture's luminance is divided by its own Gaussian low-pass over the photo skin (alpha-weighted, so the
    inpainted fill does not leak in) and multiplied by its mean: what is left is the skin's colour and its fine
    texture. Kept as photographed, the baked shading meets the procedural fill's flat colour in a step along the
    portrait's edge, which runs across the upper forehead (the top of MediaPipe's mesh), and the renderer lights
    the face a second time."""
    out = images.copy()
    for img, flat in zip(images, out):
        rgb, alpha = img[..., :3].astype(np.float32), img[..., 3].astype(np.float32) / 255
        lum = rgb.mean(2)
        low = cv2.GaussianBlur(lum * alpha, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(alpha, (0, 0), sigma), 1e-3)
        gain = np.where(alpha > 0, (lum * alpha).sum() / max(alpha.sum(), 1e-3) / np.maximum(low, 1.0), 1.0)
        flat[..., :3] = np.clip(rgb * gain[..., None], 0, 255).round().astype(np.uint8)
    return out


def ict_uv_map(ict_neutral: np.ndarray, ict_landmarks68: np.ndarray, mesh: CanonicalMesh) -> np.ndarray:
    """(V x 2) canonical UV of every ICT vertex seen by the canonical surface along -z; NaN elsewhere."""
    src = mesh.vertices[[m for _, m in _CORRESPONDENCES]]
    dst = ict_neutral[ict_landmarks68[[i for i, _ in _CORRESPONDENCES]]]
    t = similarity_lstsq(src, dst)
    canon = mesh.vertices @ t[:, :3].T + t[:, 3]
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(canon.astype(np.float32)), o3d.core.Tensor(mesh.triangles.astype(np.uint32)))
    top = canon[:, 2].max() + 10
    rays = np.column_stack([ict_neutral[:, :2], np.full(len(ict_neutral), top), np.zeros((len(ict_neutral), 2)),
                            -np.ones(len(ict_neutral))]).astype(np.float32)
    ans = scene.cast_rays(o3d.core.Tensor(rays))
    hit = np.isfinite(ans["t_hit"].numpy())
    tri = ans["primitive_ids"].numpy()[hit].astype(np.int64)
    b = ans["primitive_uvs"].numpy()[hit]
    w = np.column_stack([1 - b.sum(1), b])
    out = np.full((len(ict_neutral), 2), np.nan)
    out[hit] = np.einsum("nk,nkc->nc", w, mesh.tri_uv[tri])
    return out


def build_skin_textures(photos: list[Path], data_dir: Path, split: str = "train") -> SkinTextures:
    """Unwrap the largest face of every photo (folders expand to .jpg/.png; split as in pseudo_labels)."""
    from ...errors import FaceReconError
    from ...preprocess.detect import FaceDetector
    from ...preprocess.image_io import load_image
    from ..splits import photo_files
    from .face_model import FaceModel

    files = photo_files(photos, split)
    mesh, detector, images = CanonicalMesh.load(data_dir), FaceDetector(), []
    for f in files:
        try:
            rgb = load_image(f)
            faces = detector.detect(rgb)
        except FaceReconError:
            continue
        if faces:
            texture, covered = unwrap_photo(rgb, faces[0].mesh[:, :2], mesh)
            alpha = cv2.GaussianBlur(covered.astype(np.float32), (0, 0), 4) * covered  # feathered edge
            images.append(np.dstack([texture, (alpha * 255).astype(np.uint8)]))
    model = FaceModel.load(Path(data_dir) / "ict_facekit" / "ict_facekit_head_f16.npz")
    return SkinTextures(np.stack(images), ict_uv_map(model.neutral, model.landmarks68, mesh))
