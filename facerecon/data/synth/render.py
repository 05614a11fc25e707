"""Render one training sample straight into the inference crop, with exact mask, coarse depth and detail.

Camera: perspective (facerecon.data.synth.camera). A longer lens further away frames a face the same way once
cropped, so what is sampled is the distance (30 cm selfie to 2.5 m telephoto) and the position off the optical axis.
The rendered landmarks go through facerecon.preprocess.align exactly as detected landmarks do at inference, so the
framing is the inference framing. Every crop pixel centre's ray is cast; depth is the hit's distance along the crop's
line of sight (the ray through the crop centre: all the crop can show) in crop pixels at the face (larger = nearer),
detail the change of that depth where the displaced skin meets the same ray.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import open3d as o3d

from ...preprocess.align import CROP_SIZE, apply_affine, crop_affine, rescale_affine
from ...surface.raster import cast_rays
from . import appearance
from .camera import CropCamera
from .detail import TEXTURE_SIZE, displaced_hits, displacement_map, sample_texture
from .face_model import EYE_SOCKET, EYEBALL, FACE, HEAD, MOUTH, FaceModel, vertex_normals
from .textures import SkinTextures, flatten_shading

FOCAL = 1000.0  # photo pixels per unit of x / -z (any value: the crop rescales)


@dataclass
class Sample:
    image: np.ndarray  # S x S x 3 uint8
    mask: np.ndarray  # S x S bool: visible face (hair, hands and glasses excluded)
    coarse: np.ndarray  # S x S float32: depth without detail, zero mean over the mask
    detail: np.ndarray  # S x S float32: depth change caused by the skin displacement
    valid_coarse: np.ndarray  # S x S bool
    valid_detail: np.ndarray  # S x S bool
    landmarks5: np.ndarray  # 5 x 2, crop pixels (true, before the simulated detector noise)
    params: dict = field(default_factory=dict)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return (rz @ ry @ rx).astype(np.float32)


def _texels_per_pixel(tex_uv: np.ndarray, hit: np.ndarray, skin: np.ndarray, size: int) -> float:
    """Median size of a crop pixel on the skin, in displacement-texture texels (from the UV gradient)."""
    uv = np.full((size, size, 2), np.nan, np.float32)
    uv.reshape(-1, 2)[np.flatnonzero(hit)[skin]] = tex_uv[skin]
    du, dv = np.diff(uv, axis=1)[:-1], np.diff(uv, axis=0)[:, :-1]
    area = np.abs(du[..., 0] * dv[..., 1] - du[..., 1] * dv[..., 0])
    area = area[np.isfinite(area)]
    return float(np.sqrt(np.median(area)) * TEXTURE_SIZE) if len(area) else 1.0


class Renderer:
    def __init__(self, model: FaceModel, photos: list[np.ndarray] | None = None, size: int = CROP_SIZE,
                 skin: SkinTextures | None = None):
        """photos: background sources; skin: portrait textures (facerecon.data.synth.textures), else procedural skin."""
        self.model, self.photos, self.size = model, photos or [], size
        self.skin = None if skin is None else SkinTextures(flatten_shading(skin.images), skin.ict_uv)

    def render(self, seed: int) -> Sample:
        rng = np.random.default_rng(seed)
        m, s = self.model, self.size
        identity = rng.standard_normal(m.id_basis.shape[0]).astype(np.float32)
        expression = m.sample_expression(rng)
        head = m.vertices(identity, expression)
        head_normals = vertex_normals(head, m.triangles)
        yaw = float(np.clip(rng.normal(0, 25), -70, 70))
        pitch, roll = float(np.clip(rng.normal(0, 12), -35, 35)), float(np.clip(rng.normal(0, 8), -25, 25))
        rot = rotation(yaw, pitch, roll)
        # camera: the face 30 cm (selfie) to 2.5 m (telephoto) away, off the optical axis by up to a third of that
        distance = float(np.exp(rng.uniform(np.log(30), np.log(250))))
        off_axis = np.clip(rng.normal(0, 0.12, 2), -0.35, 0.35)
        turned = head @ rot.T
        centre = np.array([off_axis[0] * distance, off_axis[1] * distance,
                           -distance - m.landmarks5(turned)[:, 2].mean()], np.float32)
        world, world_n = turned + centre, head_normals @ rot.T

        # photo -> detected landmarks (with detector-like noise) -> the inference crop
        photo = CropCamera(FOCAL, np.eye(2, 3), s)
        lm_world = m.landmarks5(world)
        lm_photo = photo.photo_points(lm_world)
        iod = np.linalg.norm(lm_photo[1] - lm_photo[0])
        detected = lm_photo + rng.normal(0, 0.015 * max(iod, 1e-3), lm_photo.shape)  # what a detector would report
        cam = CropCamera(FOCAL, rescale_affine(crop_affine(detected), s / CROP_SIZE), s)
        face_point = lm_world.mean(0)  # depth 0 and the crop's scale are taken here
        scale = cam.crop_px_per_cm(face_point)  # crop pixels per cm across the line of sight at the face
        to_crop = cam.crop_frame()

        # triangles facing away from the camera cannot be the first hit on the closed skin and eyeballs (the
        # mouth and eye sockets are cavities seen through openings: kept whole); leaving them out of the ray
        # casting scene makes it 40% faster to build. Cast shadows use the same scene.
        a, b, c = (world[m.triangles[:, i]] for i in range(3))
        facing = (np.cross(b - a, c - a) * a).sum(1) < 0
        kept = np.flatnonzero(facing | np.isin(m.tri_region, [MOUTH, EYE_SOCKET]))
        rays = cam.pixel_rays()
        scene, cast = cast_rays(world, m.triangles[kept], np.column_stack([np.zeros_like(rays), rays]))
        hit, tri, w = cast["hit"], kept[cast["triangle"]], cast["bary"]
        corners = m.triangles[tri]
        interp = lambda a: np.einsum("nk,nkc->nc", w, a[corners])  # noqa: E731
        region = m.tri_region[tri]
        points = rays[hit] * cast["t"][hit, None]  # camera frame, cm
        depth = np.full(s * s, np.nan, np.float32)
        depth[hit] = (points - face_point) @ to_crop[2] * scale  # along the line of sight: larger = nearer
        n_cam = interp(world_n)
        n_cam /= np.maximum(np.linalg.norm(n_cam, axis=1, keepdims=True), 1e-9)
        toward = -rays[hit]  # unit vectors from the hits to the camera
        n, view = n_cam @ to_crop.T, toward @ to_crop.T  # the same in the crop frame
        tex_uv = np.einsum("nk,nkc->nc", w, m.tri_uv[tri])
        head_pos, head_n = interp(head), interp(head_normals)

        # fine detail: the skin displaced along the normal; detail = depth change of each pixel's ray hit. The
        # whole relief shades the photo, the label carries the wrinkles only (see displacement_map).
        skin = region == FACE
        relief_tex, wrinkle_tex, detail_params = displacement_map(rng, _texels_per_pixel(tex_uv, hit, skin, s))

        def detail_depth(texture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Per-pixel depth change (crop px, S x S) of the ray hits on the skin displaced by `texture`, and
            the hits' residuals (cm, per hit)."""
            disp_cm = np.zeros(s * s, np.float32)
            disp_cm[np.flatnonzero(hit)[skin]] = 0.1 * sample_texture(texture, np.clip(tex_uv[skin], 0, 1))
            t, residual = np.zeros(len(points), np.float32), np.full(len(points), np.inf, np.float32)
            t[skin], residual[skin] = displaced_hits(points[skin], n_cam[skin], toward[skin],
                                                     disp_cm.reshape(s, s), cam.project)
            out = np.zeros(s * s, np.float32)
            out[hit] = t * view[:, 2] * scale
            return out.reshape(s, s), residual

        dmap, _ = detail_depth(relief_tex)
        label, residual = detail_depth(wrinkle_tex)
        nz = n[:, 2]
        ddx, ddy = np.gradient(dmap, axis=1)[hit.reshape(s, s)], np.gradient(dmap, axis=0)[hit.reshape(s, s)]
        shade_n = np.column_stack([n[:, 0] - nz * ddx, n[:, 1] - nz * ddy, nz])
        shade_n /= np.maximum(np.linalg.norm(shade_n, axis=1, keepdims=True), 1e-9)

        # albedo per region
        portrait = int(rng.integers(len(self.skin.images))) if self.skin is not None and rng.random() < 0.85 else None
        photo_base = None
        if portrait is not None:
            rgba = self.skin.images[portrait]
            tone = rng.normal(1, 0.05, 3)
            photo_base = rgba[..., :3][rgba[..., 3] > 128].mean(0) / 255 * tone
        skin_tex, skin_base, look = appearance.skin_albedo(rng, base=photo_base)
        albedo = np.tile(skin_base, (len(tri), 1)).astype(np.float32)
        albedo[skin] = sample_texture(skin_tex, np.clip(tex_uv[skin], 0, 1))
        if portrait is not None:  # real skin where the portrait covers the face, feathered into the procedural
            canon_uv = interp(self.skin.ict_uv)  # NaN where a corner has no canonical UV
            use = np.isfinite(canon_uv[:, 0]) & np.isin(region, [FACE, HEAD])
            photo = sample_texture(rgba, canon_uv[use]).astype(np.float32) / 255
            a = photo[:, 3:4]
            albedo[use] = a * np.clip(photo[:, :3] * tone, 0, 1) + (1 - a) * albedo[use]
            look["portrait"] = portrait
        albedo[region == MOUTH] = [0.3, 0.09, 0.08]
        eye = region == EYEBALL
        gaze = head_n[eye, 2]
        iris = appearance.IRIS_COLOURS[rng.integers(len(appearance.IRIS_COLOURS))]
        pupil_or_iris = np.where((gaze > 0.985)[:, None], 0.02, iris)
        albedo[eye] = np.where((gaze > 0.93)[:, None], pupil_or_iris, [0.82, 0.78, 0.74])

        # hair covers the scalp above a random hairline (head frame, cm) and spills over the silhouette
        hair_mask = np.zeros(s * s, bool)
        has_hair = bool(rng.random() > 0.12)
        if has_hair:
            # the brows lie at y ~ 6 cm: a hairline 4-7 cm above them, or a fringe (one face in five) lower
            hairline = rng.uniform(6.5, 9.5) if rng.random() < 0.2 else rng.uniform(10.0, 13.0)
            wave = 0.6 * np.sin(head_pos[:, 0] * rng.uniform(0.3, 0.8) + rng.uniform(0, 6))
            sides = (np.abs(head_pos[:, 0]) > rng.uniform(5.5, 7.5)) & (head_pos[:, 1] > rng.uniform(-2, 3))
            on_hit = ((head_pos[:, 1] > hairline + wave) | sides) & np.isin(region, [FACE, HEAD])
            hair_mask[np.flatnonzero(hit)[on_hit]] = True
            grow = int(rng.integers(0, max(2, s // 12)))
            if grow:
                grown = cv2.dilate(hair_mask.reshape(s, s).astype(np.uint8), np.ones((grow, grow), np.uint8))
                hair_mask |= grown.ravel().astype(bool) & ~hit

        # lighting: first-order ambient term, a key light with cast shadows, Blinn-Phong highlights
        key = np.array([rng.normal(0, 0.6), rng.normal(-0.3, 0.5), rng.uniform(0.3, 1.0)], np.float32)
        key /= np.linalg.norm(key)
        ambient = rng.uniform(0.15, 0.5) * rng.normal(1, 0.05, 3)
        amb_dir = rng.normal(0, 0.15, 3)
        key_colour = rng.uniform(0.6, 1.1) * rng.normal(1, 0.06, 3)
        shadow_rays = np.column_stack([points + 0.05 * n_cam, np.tile(to_crop.T @ key, (len(points), 1))])
        lit = ~scene.test_occlusions(o3d.core.Tensor(shadow_rays.astype(np.float32))).numpy().astype(bool)
        ndl = np.clip(shade_n @ key, 0, None) * lit
        half = key + view
        half /= np.linalg.norm(half, axis=1, keepdims=True)
        spec = rng.uniform(0.03, 0.25) * np.clip((shade_n * half).sum(1), 0, None) ** rng.uniform(15, 60) * lit
        spec *= np.isin(region, [FACE, HEAD, EYEBALL])
        shaded = albedo * (ambient + (shade_n @ amb_dir)[:, None] + ndl[:, None] * key_colour) + spec[:, None]

        # compose: background, shoulders, head, hair, occluders
        canvas = appearance.background(rng, s, self.photos)
        c = cam.project(np.array([[0.0, -24.0, -4.0]], np.float32) @ rot.T + centre)[0]  # below the chin
        shirt = np.clip(rng.uniform(0, 1, 3) * (1 + 0.1 * appearance.smooth_noise(rng, (s, s), 3))[..., None], 0, 1)
        shoulder = np.zeros((s, s), np.uint8)
        cv2.ellipse(shoulder, (int(c[0]), int(c[1])), (int(scale * 22), int(scale * 10)), roll, 0, 360, 1, -1)
        canvas[shoulder.astype(bool)] = shirt[shoulder.astype(bool)]
        flat = canvas.reshape(-1, 3)
        flat[hit] = np.clip(shaded, 0, 1)
        if has_hair:
            hair_colour = np.array(look["hair"]) * rng.uniform(0.8, 1.3)
            strands = 1 + 0.35 * cv2.GaussianBlur(rng.standard_normal((s, s), dtype=np.float32), (1, 9), 0).ravel()
            flat[hair_mask] = np.clip(hair_colour * strands[hair_mask, None] * (0.6 + 0.5 * ndl.mean()), 0, 1)
        canvas = flat.reshape(s, s, 3)
        lm_crop = cam.project(lm_world)
        occluded = hair_mask.reshape(s, s).copy()
        glasses = bool(rng.random() < 0.15)
        if glasses:
            occluded |= appearance.draw_glasses(rng, canvas, lm_crop[:2])
        hand = bool(rng.random() < 0.12)
        if hand:
            occluded |= appearance.draw_hand(rng, canvas, skin_base, s)

        image = self._camera_effects(rng, canvas)
        face = np.zeros(s * s, bool)
        face[hit] = np.isin(region, [FACE, EYEBALL])
        mask = face.reshape(s, s) & ~occluded
        base = depth.reshape(s, s)  # the undisplaced mesh
        coarse = np.where(mask, base - base[mask].mean() if mask.any() else base, 0).astype(np.float32)
        valid_detail = np.zeros(s * s, bool)
        valid_detail[hit] = skin & ((n * view).sum(1) > 0.3) & (residual * scale < 0.01)  # solved to 0.01 px
        valid_detail = valid_detail.reshape(s, s) & mask
        params = {"seed": int(seed), "identity": identity.tolist(), "expression": expression.tolist(),
                  "yaw": yaw, "pitch": pitch, "roll": roll, "distance_cm": distance, "off_axis": off_axis.tolist(),
                  "head_centre_cm": centre.tolist(), "focal_px": FOCAL, "crop_affine": cam.affine.tolist(),
                  "crop_px_per_cm": float(scale), "line_of_sight": to_crop[2].tolist(),
                  "detected_landmarks5": apply_affine(cam.affine, detected).tolist(),
                  "has_hair": has_hair, "has_glasses": glasses, "has_hand": hand, **detail_params, **look}
        return Sample(image=image, mask=mask, coarse=coarse, detail=np.where(valid_detail, label, 0).astype(np.float32),
                      valid_coarse=mask, valid_detail=valid_detail, landmarks5=lm_crop,
                      params=params)

    @staticmethod
    def _camera_effects(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
        img = np.clip(canvas, 0, 1) ** rng.uniform(0.85, 1.15) * rng.normal(1, 0.05, 3)
        if rng.random() < 0.7:
            img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(0.3, 1.2))
        img = img + rng.normal(0, rng.uniform(0, 0.02), img.shape)
        img8 = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
        if rng.random() < 0.7:
            ok, buf = cv2.imencode(".jpg", img8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 96))])
            img8 = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        return img8
