"""Render one training sample straight into the inference crop, with exact mask, coarse depth and detail.

Camera: perspective (facerecon.data.synth.camera). A longer lens further away frames a face the same way once
cropped, so what is sampled is the distance (30 cm selfie to 2.5 m telephoto) and the position off the optical axis.
The rendered landmarks go through facerecon.preprocess.align exactly as detected landmarks do at inference, so the
framing is the inference framing. Every crop pixel centre's ray is cast; depth is the hit's distance along the crop's
line of sight (the ray through the crop centre: all the crop can show) in crop pixels at the face (larger = nearer),
detail the change of that depth where the displaced skin meets the same ray.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import open3d as o3d

from ...preprocess.align import CROP_SIZE, FRAMING, Framing, apply_affine, crop_affine, rescale_affine
from ...surface.raster import cast_rays
from ..relief import blur_within, cavity
from . import appearance
from .camera import CropCamera
from .detail import TEXTURE_SIZE, displaced_hits, displacement_map, sample_texture
from .face_model import EYE_SOCKET, EYEBALL, FACE, HEAD, MOUTH, FaceModel, vertex_normals
from .textures import SkinTextures, flatten_shading

FOCAL = 1000.0  # photo pixels per unit of x / -z (any value: the crop rescales)
# The engine's version, written into every shard it renders (shards.write_shard): bump it whenever a render with the
# same seed changes. Its history (which commit, what changed) is in docs/training.md, "Engine versions".
ENGINE_VERSION = 7


@dataclass(frozen=True)
class SceneConfig:
    """The distributions every scene is drawn from: pose (degrees), camera (cm), appearance and lighting.
    A (low, high) pair is a uniform range; *_sd a normal's standard deviation, clipped at the matching *_max."""

    yaw_sd: float = 25.0
    yaw_max: float = 70.0
    pitch_sd: float = 12.0
    pitch_max: float = 35.0
    roll_sd: float = 8.0
    roll_max: float = 25.0
    distance_cm: tuple[float, float] = (30.0, 250.0)  # log-uniform: a selfie to a telephoto portrait
    off_axis_sd: float = 0.12  # the head's offset from the optical axis, in units of its distance
    off_axis_max: float = 0.35
    detector_noise: float = 0.015  # landmark noise of a detector, in eye distances
    portrait_skin_share: float = 0.85  # faces with skin from a portrait texture (when there are any)
    portrait_tone_sd: float = 0.05
    bald_share: float = 0.12
    fringe_share: float = 0.2
    fringe_cm: tuple[float, float] = (6.5, 9.5)  # hairline heights in the head frame (the brows lie at y ~ 6 cm)
    hairline_cm: tuple[float, float] = (10.0, 13.0)
    glasses_share: float = 0.15
    hand_share: float = 0.12
    ambient: tuple[float, float] = (0.15, 0.5)
    key_light: tuple[float, float] = (0.6, 1.1)
    specular: tuple[float, float] = (0.03, 0.25)
    shininess: tuple[float, float] = (15.0, 60.0)
    # ambient light lost per crop px a crease lies below its surroundings: (0.3, 1) gives the renders' forehead lines
    # the portraits' shape (benchmarks/forehead_lines.py: skewness -0.02 against -0.03; (1, 3) gave -0.21)
    occlusion: tuple[float, float] = (0.3, 1.0)
    scattering_px: tuple[float, float] = (0.5, 1.5)  # how far light spreads under the skin (red; green, blue less)
    gamma: tuple[float, float] = (0.85, 1.15)
    blur_share: float = 0.7
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    noise_max: float = 0.02
    jpeg_share: float = 0.7
    jpeg_quality: tuple[int, int] = (40, 96)


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


@dataclass
class _Head:
    """The posed head in the camera frame (cm; the camera looks down -z)."""

    identity: np.ndarray
    expression: np.ndarray
    vertices: np.ndarray  # head frame
    normals: np.ndarray  # head frame
    rot: np.ndarray
    centre: np.ndarray
    world: np.ndarray  # camera frame
    world_normals: np.ndarray
    pose: dict


@dataclass
class _View:
    """The inference crop's camera, framed by the landmarks a detector would report."""

    cam: CropCamera
    lm_world: np.ndarray
    detected: np.ndarray  # photo pixels
    face_point: np.ndarray  # depth 0 and the crop's scale are taken here
    scale: float  # crop pixels per cm across the line of sight at the face
    to_crop: np.ndarray


@dataclass
class _Hits:
    """What each crop pixel's ray hits: per hit pixel (N), in the camera frame unless said."""

    scene: object  # the ray casting scene (shadow rays use it)
    hit: np.ndarray  # S*S bool
    interp: Callable[[np.ndarray], np.ndarray]  # per-vertex values -> per hit, barycentric
    region: np.ndarray
    points: np.ndarray  # cm
    depth: np.ndarray  # S*S crop px along the line of sight, larger = nearer, NaN where missed
    n_cam: np.ndarray
    toward: np.ndarray  # unit vectors to the camera
    n: np.ndarray  # normals in the crop frame
    view: np.ndarray  # toward, in the crop frame
    tex_uv: np.ndarray
    head_pos: np.ndarray  # head frame
    head_n: np.ndarray


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
    """render(seed) -> Sample, in named stages: pose, frame, cast, relief, albedo, hair, light, compose,
    camera_effects, labels. Each stage draws from the one RNG in this order, so a seed always gives the same sample."""

    def __init__(self, model: FaceModel, photos: list[np.ndarray] | None = None, size: int = CROP_SIZE,
                 skin: SkinTextures | None = None, scene: SceneConfig | None = None, framing: Framing = FRAMING):
        """photos: background sources; skin: portrait textures (facerecon.data.synth.textures), else procedural
        skin; scene: the distributions (SceneConfig's defaults are the engine's); framing: how the crop is fitted
        to the detected landmarks (align.FRAMING for training data; a model's own to evaluate it)."""
        self.model, self.photos, self.size, self.framing = model, photos or [], size, framing
        self.skin = None if skin is None else SkinTextures(flatten_shading(skin.images), skin.ict_uv)
        self.scene = scene or SceneConfig()

    def render(self, seed: int) -> Sample:
        rng = np.random.default_rng(seed)
        head = self.pose(rng)
        view = self.frame(rng, head)
        hits = self.cast(head, view)
        label, residual, shade_n, visibility, detail_params = self.relief(rng, hits, view)
        albedo, skin_base, look = self.albedo(rng, hits)
        hair_mask = self.hair(rng, hits)
        shaded, ndl = self.light(rng, hits, view, shade_n, visibility, albedo)
        canvas, occluded, extras = self.compose(rng, head, view, hits, shaded, ndl, hair_mask, skin_base, look)
        image = self.camera_effects(rng, canvas)
        return self.labels(seed, head, view, hits, image, occluded, label, residual,
                           {**head.pose, **extras, **detail_params, **look})

    def pose(self, rng: np.random.Generator) -> _Head:
        """A random identity, expression and head pose, placed in front of the camera."""
        m, sc = self.model, self.scene
        identity = rng.standard_normal(m.id_basis.shape[0]).astype(np.float32)
        expression = m.sample_expression(rng)
        head = m.vertices(identity, expression)
        head_normals = vertex_normals(head, m.triangles)
        yaw = float(np.clip(rng.normal(0, sc.yaw_sd), -sc.yaw_max, sc.yaw_max))
        pitch = float(np.clip(rng.normal(0, sc.pitch_sd), -sc.pitch_max, sc.pitch_max))
        roll = float(np.clip(rng.normal(0, sc.roll_sd), -sc.roll_max, sc.roll_max))
        rot = rotation(yaw, pitch, roll)
        distance = float(np.exp(rng.uniform(*np.log(sc.distance_cm))))
        off_axis = np.clip(rng.normal(0, sc.off_axis_sd, 2), -sc.off_axis_max, sc.off_axis_max)
        turned = head @ rot.T
        centre = np.array([off_axis[0] * distance, off_axis[1] * distance,
                           -distance - m.landmarks5(turned)[:, 2].mean()], np.float32)
        return _Head(identity, expression, head, head_normals, rot, centre, turned + centre, head_normals @ rot.T,
                     {"yaw": yaw, "pitch": pitch, "roll": roll, "distance_cm": distance,
                      "off_axis": off_axis.tolist()})

    def frame(self, rng: np.random.Generator, head: _Head) -> _View:
        """photo -> detected landmarks (with detector-like noise) -> the inference crop."""
        s = self.size
        photo = CropCamera(FOCAL, np.eye(2, 3), s)
        lm_world = self.model.landmarks5(head.world)
        lm_photo = photo.photo_points(lm_world)
        iod = np.linalg.norm(lm_photo[1] - lm_photo[0])
        detected = lm_photo + rng.normal(0, self.scene.detector_noise * max(iod, 1e-3), lm_photo.shape)
        cam = CropCamera(FOCAL, rescale_affine(crop_affine(detected, self.framing), s / CROP_SIZE), s)
        face_point = lm_world.mean(0)
        return _View(cam, lm_world, detected, face_point, cam.crop_px_per_cm(face_point), cam.crop_frame())

    def cast(self, head: _Head, view: _View) -> _Hits:
        """Cast every crop pixel centre's ray at the head."""
        m, s, world = self.model, self.size, head.world
        # triangles facing away from the camera cannot be the first hit on the closed skin and eyeballs (the
        # mouth and eye sockets are cavities seen through openings: kept whole); leaving them out of the ray
        # casting scene makes it 40% faster to build. Cast shadows use the same scene.
        a, b, c = (world[m.triangles[:, i]] for i in range(3))
        facing = (np.cross(b - a, c - a) * a).sum(1) < 0
        kept = np.flatnonzero(facing | np.isin(m.tri_region, [MOUTH, EYE_SOCKET]))
        rays = view.cam.pixel_rays()
        scene, cast = cast_rays(world, m.triangles[kept], np.column_stack([np.zeros_like(rays), rays]))
        hit, tri, w = cast["hit"], kept[cast["triangle"]], cast["bary"]
        corners = m.triangles[tri]

        def interp(values: np.ndarray) -> np.ndarray:
            return np.einsum("nk,nkc->nc", w, values[corners])

        points = rays[hit] * cast["t"][hit, None]
        depth = np.full(s * s, np.nan, np.float32)
        depth[hit] = (points - view.face_point) @ view.to_crop[2] * view.scale
        n_cam = interp(head.world_normals)
        n_cam /= np.maximum(np.linalg.norm(n_cam, axis=1, keepdims=True), 1e-9)
        toward = -rays[hit]
        return _Hits(scene, hit, interp, m.tri_region[tri], points, depth, n_cam, toward, n_cam @ view.to_crop.T,
                     toward @ view.to_crop.T, np.einsum("nk,nkc->nc", w, m.tri_uv[tri]), interp(head.vertices),
                     interp(head.normals))

    def relief(self, rng: np.random.Generator, hits: _Hits,
               view: _View) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Fine detail: the skin displaced along the normal; detail = depth change of each pixel's ray hit. The
        whole relief shades the photo, the label carries the wrinkles only (see displacement_map). Returns the
        label (S x S), the label's ray residuals (cm, per hit), the shading normals and the relief's visibility to
        ambient light (per hit, 1 = open skin), and the parameters."""
        s, hit = self.size, hits.hit
        skin = hits.region == FACE
        relief_tex, wrinkle_tex, detail_params = displacement_map(rng, _texels_per_pixel(hits.tex_uv, hit, skin, s))

        def detail_depth(texture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Per-pixel depth change (crop px, S x S) of the ray hits on the skin displaced by `texture`, and
            the hits' residuals (cm, per hit)."""
            disp_cm = np.zeros(s * s, np.float32)
            disp_cm[np.flatnonzero(hit)[skin]] = 0.1 * sample_texture(texture, np.clip(hits.tex_uv[skin], 0, 1))
            t, residual = np.zeros(len(hits.points), np.float32), np.full(len(hits.points), np.inf, np.float32)
            t[skin], residual[skin] = displaced_hits(hits.points[skin], hits.n_cam[skin], hits.toward[skin],
                                                     disp_cm.reshape(s, s), view.cam.project)
            out = np.zeros(s * s, np.float32)
            out[hit] = t * hits.view[:, 2] * view.scale
            return out.reshape(s, s), residual

        dmap, _ = detail_depth(relief_tex)
        label, residual = detail_depth(wrinkle_tex)
        n = hits.n
        nz = n[:, 2]
        ddx, ddy = np.gradient(dmap, axis=1)[hit.reshape(s, s)], np.gradient(dmap, axis=0)[hit.reshape(s, s)]
        shade_n = np.column_stack([n[:, 0] - nz * ddx, n[:, 1] - nz * ddy, nz])
        shade_n /= np.maximum(np.linalg.norm(shade_n, axis=1, keepdims=True), 1e-9)
        # Less light reaches into a crease than onto the skin around it: what makes photographed creases narrow
        # dark lines (benchmarks/forehead_lines.py) where shading by the normal alone gives a bright-dark pair.
        # The visibility falls with how far the relief lies below its surroundings (relief.cavity).
        skin_px = np.zeros(s * s, bool)
        skin_px[hit] = skin
        visibility = np.exp(-rng.uniform(*self.scene.occlusion) * cavity(dmap, skin_px.reshape(s, s))).ravel()[hit]
        return label, residual, shade_n, visibility, detail_params

    def albedo(self, rng: np.random.Generator, hits: _Hits) -> tuple[np.ndarray, np.ndarray, dict]:
        """Albedo per hit: portrait or procedural skin, lips and mouth, eyes. Returns it, the base skin colour and
        the appearance parameters."""
        region, sc = hits.region, self.scene
        skin = region == FACE
        portrait = int(rng.integers(len(self.skin.images))) \
            if self.skin is not None and rng.random() < sc.portrait_skin_share else None
        photo_base = None
        if portrait is not None:
            rgba = self.skin.images[portrait]
            tone = rng.normal(1, sc.portrait_tone_sd, 3)
            photo_base = rgba[..., :3][rgba[..., 3] > 128].mean(0) / 255 * tone
        skin_tex, skin_base, look = appearance.skin_albedo(rng, base=photo_base)
        albedo = np.tile(skin_base, (len(region), 1)).astype(np.float32)
        albedo[skin] = sample_texture(skin_tex, np.clip(hits.tex_uv[skin], 0, 1))
        if portrait is not None:  # real skin where the portrait covers the face, feathered into the procedural
            canon_uv = hits.interp(self.skin.ict_uv)  # NaN where a corner has no canonical UV
            use = np.isfinite(canon_uv[:, 0]) & np.isin(region, [FACE, HEAD])
            photo = sample_texture(rgba, canon_uv[use]).astype(np.float32) / 255
            a = photo[:, 3:4]
            albedo[use] = a * np.clip(photo[:, :3] * tone, 0, 1) + (1 - a) * albedo[use]
            look["portrait"] = portrait
        albedo[region == MOUTH] = [0.3, 0.09, 0.08]
        eye = region == EYEBALL
        gaze = hits.head_n[eye, 2]
        iris = appearance.IRIS_COLOURS[rng.integers(len(appearance.IRIS_COLOURS))]
        pupil_or_iris = np.where((gaze > 0.985)[:, None], 0.02, iris)
        albedo[eye] = np.where((gaze > 0.93)[:, None], pupil_or_iris, [0.82, 0.78, 0.74])
        return albedo, skin_base, look

    def hair(self, rng: np.random.Generator, hits: _Hits) -> np.ndarray | None:
        """Hair covers the scalp above a random hairline (head frame, cm) and spills over the silhouette: its S*S
        mask, or None for a bald head."""
        s, sc, hit, head_pos = self.size, self.scene, hits.hit, hits.head_pos
        if not rng.random() > sc.bald_share:
            return None
        hair_mask = np.zeros(s * s, bool)
        hairline = rng.uniform(*sc.fringe_cm) if rng.random() < sc.fringe_share else rng.uniform(*sc.hairline_cm)
        wave = 0.6 * np.sin(head_pos[:, 0] * rng.uniform(0.3, 0.8) + rng.uniform(0, 6))
        sides = (np.abs(head_pos[:, 0]) > rng.uniform(5.5, 7.5)) & (head_pos[:, 1] > rng.uniform(-2, 3))
        on_hit = ((head_pos[:, 1] > hairline + wave) | sides) & np.isin(hits.region, [FACE, HEAD])
        hair_mask[np.flatnonzero(hit)[on_hit]] = True
        grow = int(rng.integers(0, max(2, s // 12)))
        if grow:
            grown = cv2.dilate(hair_mask.reshape(s, s).astype(np.uint8), np.ones((grow, grow), np.uint8))
            hair_mask |= grown.ravel().astype(bool) & ~hit
        return hair_mask

    def light(self, rng: np.random.Generator, hits: _Hits, view: _View, shade_n: np.ndarray, visibility: np.ndarray,
              albedo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First-order ambient term (times the relief's visibility), a key light with cast shadows, the light spread
        under the skin, Blinn-Phong highlights: the shaded colour per hit and the key light's n.l (shadowed). A
        crease hides part of a directional light only where it is lit at a slant, so the key light loses less in it
        than the ambient light: the square root of the visibility, a stand-in for the relief's soft self-shadowing."""
        sc = self.scene
        key = np.array([rng.normal(0, 0.6), rng.normal(-0.3, 0.5), rng.uniform(0.3, 1.0)], np.float32)
        key /= np.linalg.norm(key)
        ambient = rng.uniform(*sc.ambient) * rng.normal(1, 0.05, 3)
        amb_dir = rng.normal(0, 0.15, 3)
        key_colour = rng.uniform(*sc.key_light) * rng.normal(1, 0.06, 3)
        shadow_rays = np.column_stack([hits.points + 0.05 * hits.n_cam, np.tile(view.to_crop.T @ key,
                                                                                (len(hits.points), 1))])
        occluded = hits.scene.test_occlusions(o3d.core.Tensor(shadow_rays.astype(np.float32)))
        lit = ~occluded.numpy().astype(bool)
        ndl = np.clip(shade_n @ key, 0, None) * lit
        half = key + hits.view
        half /= np.linalg.norm(half, axis=1, keepdims=True)
        spec = rng.uniform(*sc.specular) * np.clip((shade_n * half).sum(1), 0, None) ** rng.uniform(*sc.shininess)
        spec *= lit * np.isin(hits.region, [FACE, HEAD, EYEBALL])
        irradiance = visibility[:, None] * (ambient + (shade_n @ amb_dir)[:, None]) \
            + (np.sqrt(visibility) * ndl)[:, None] * key_colour
        shaded = albedo * self.scatter(rng, hits, irradiance) + spec[:, None]
        return shaded, ndl

    def scatter(self, rng: np.random.Generator, hits: _Hits, irradiance: np.ndarray) -> np.ndarray:
        """Light entering the skin leaves it a little further on (red furthest): the skin's irradiance (per hit,
        N x 3) blurred within the skin, which softens fine shading and the edges of cast shadows."""
        s, radius = self.size, rng.uniform(*self.scene.scattering_px)
        if radius <= 0:
            return irradiance
        on_skin = np.isin(hits.region, [FACE, HEAD])
        skin = np.zeros(s * s, bool)
        skin[hits.hit] = on_skin
        skin = skin.reshape(s, s)
        out, grid = irradiance.copy(), np.zeros((s, s), np.float32)
        for c, share in enumerate((1.0, 0.6, 0.45)):  # red, green, blue: shorter paths for shorter wavelengths
            grid.ravel()[hits.hit] = irradiance[:, c]
            out[on_skin, c] = blur_within(grid, skin, radius * share).ravel()[hits.hit][on_skin]
        return out

    def compose(self, rng: np.random.Generator, head: _Head, view: _View, hits: _Hits, shaded: np.ndarray,
                ndl: np.ndarray, hair_mask: np.ndarray | None, skin_base: np.ndarray,
                look: dict) -> tuple[np.ndarray, np.ndarray, dict]:
        """Background, shoulders, head, hair, occluders: the S x S x 3 float picture, what covers the face (S x S
        bool) and which occluders were drawn."""
        s, cam, sc = self.size, view.cam, self.scene
        canvas = appearance.background(rng, s, self.photos)
        c = cam.project(np.array([[0.0, -24.0, -4.0]], np.float32) @ head.rot.T + head.centre)[0]  # below the chin
        shirt = np.clip(rng.uniform(0, 1, 3) * (1 + 0.1 * appearance.smooth_noise(rng, (s, s), 3))[..., None], 0, 1)
        shoulder = np.zeros((s, s), np.uint8)
        cv2.ellipse(shoulder, (int(c[0]), int(c[1])), (int(view.scale * 22), int(view.scale * 10)),
                    head.pose["roll"], 0, 360, 1, -1)
        canvas[shoulder.astype(bool)] = shirt[shoulder.astype(bool)]
        flat = canvas.reshape(-1, 3)
        flat[hits.hit] = np.clip(shaded, 0, 1)
        if hair_mask is not None:
            hair_colour = np.array(look["hair"]) * rng.uniform(0.8, 1.3)
            strands = 1 + 0.35 * cv2.GaussianBlur(rng.standard_normal((s, s), dtype=np.float32), (1, 9), 0).ravel()
            flat[hair_mask] = np.clip(hair_colour * strands[hair_mask, None] * (0.6 + 0.5 * ndl.mean()), 0, 1)
        canvas = flat.reshape(s, s, 3)
        occluded = hair_mask.reshape(s, s).copy() if hair_mask is not None else np.zeros((s, s), bool)
        glasses = bool(rng.random() < sc.glasses_share)
        if glasses:
            occluded |= appearance.draw_glasses(rng, canvas, cam.project(view.lm_world)[:2])
        hand = bool(rng.random() < sc.hand_share)
        if hand:
            occluded |= appearance.draw_hand(rng, canvas, skin_base, s)
        return canvas, occluded, {"has_hair": hair_mask is not None, "has_glasses": glasses, "has_hand": hand}

    def camera_effects(self, rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
        """Exposure, blur, sensor noise and JPEG: the S x S x 3 uint8 photo."""
        sc = self.scene
        img = np.clip(canvas, 0, 1) ** rng.uniform(*sc.gamma) * rng.normal(1, 0.05, 3)
        if rng.random() < sc.blur_share:
            img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(*sc.blur_sigma))
        img = img + rng.normal(0, rng.uniform(0, sc.noise_max), img.shape)
        img8 = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
        if rng.random() < sc.jpeg_share:
            ok, buf = cv2.imencode(".jpg", img8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(*sc.jpeg_quality))])
            img8 = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        return img8

    def labels(self, seed: int, head: _Head, view: _View, hits: _Hits, image: np.ndarray, occluded: np.ndarray,
               label: np.ndarray, residual: np.ndarray, params: dict) -> Sample:
        """The exact maps: the visible face's mask, the undisplaced depth, the detail where it is solved."""
        s, hit, scale = self.size, hits.hit, view.scale
        face = np.zeros(s * s, bool)
        face[hit] = np.isin(hits.region, [FACE, EYEBALL])
        mask = face.reshape(s, s) & ~occluded
        base = hits.depth.reshape(s, s)  # the undisplaced mesh
        coarse = np.where(mask, base - base[mask].mean() if mask.any() else base, 0).astype(np.float32)
        valid_detail = np.zeros(s * s, bool)
        skin = hits.region == FACE
        valid_detail[hit] = skin & ((hits.n * hits.view).sum(1) > 0.3) & (residual * scale < 0.01)  # to 0.01 px
        valid_detail = valid_detail.reshape(s, s) & mask
        cam = view.cam
        params = {"seed": int(seed), "identity": head.identity.tolist(), "expression": head.expression.tolist(),
                  **{k: params.pop(k) for k in ("yaw", "pitch", "roll", "distance_cm", "off_axis")},
                  "head_centre_cm": head.centre.tolist(), "focal_px": FOCAL, "crop_affine": cam.affine.tolist(),
                  "crop_px_per_cm": float(scale), "line_of_sight": view.to_crop[2].tolist(),
                  "detected_landmarks5": apply_affine(cam.affine, view.detected).tolist(), **params}
        return Sample(image=image, mask=mask, coarse=coarse, detail=np.where(valid_detail, label, 0).astype(np.float32),
                      valid_coarse=mask, valid_detail=valid_detail, landmarks5=cam.project(view.lm_world),
                      params=params)
