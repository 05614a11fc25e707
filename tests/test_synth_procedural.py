"""The data engine's geometry on a procedural face made here (no ../shared needed): a dome z = H - r^2 / 2R over a
fine grid, whose ray intersections are known in closed form."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from facerecon.data.synth.camera import CropCamera
from facerecon.data.synth.detail import TEXTURE_SIZE, displaced_hits, displacement_map, wrinkle_curves
from facerecon.data.synth.face_model import EXPRESSION_GROUPS, EYEBALL, FACE, HEAD, FaceModel
from facerecon.data.synth.render import Renderer, SceneConfig, rotation
from facerecon.preprocess.align import apply_affine, invert_affine
from facerecon.surface.raster import cast_rays, pixel_centres

H, R, EXTENT = 10.0, 12.0, 9.0  # dome height, curvature radius, half size (cm)
FACE_HALF = (6.0, 7.0)  # the face region: |x| < 6, |y| < 7 (cm)


def dome_grid(step: float, bump=None) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (head frame, cm) and counter-clockwise triangles of the dome, optionally displaced along its normal
    by bump(x, y)."""
    ax = np.arange(-EXTENT, EXTENT + step / 2, step)
    x, y = (a.ravel() for a in np.meshgrid(ax, ax))
    v = np.column_stack([x, y, H - (x ** 2 + y ** 2) / (2 * R)])
    if bump is not None:
        n = np.column_stack([x / R, y / R, np.ones_like(x)])
        v += bump(x, y)[:, None] * n / np.linalg.norm(n, axis=1, keepdims=True)
    k = len(ax)
    i = (np.arange(k - 1)[None, :] + k * np.arange(k - 1)[:, None]).ravel()
    tris = np.concatenate([np.column_stack([i, i + 1, i + k + 1]), np.column_stack([i, i + k + 1, i + k])])
    return v.astype(np.float32), tris


def dome_hit(origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Nearest ray parameter where rays (head frame) meet the analytic dome inside the grid; NaN where they miss."""
    a = (dirs[:, 0] ** 2 + dirs[:, 1] ** 2) / (2 * R)
    b = (origins[:, 0] * dirs[:, 0] + origins[:, 1] * dirs[:, 1]) / R + dirs[:, 2]
    c = (origins[:, 0] ** 2 + origins[:, 1] ** 2) / (2 * R) + origins[:, 2] - H
    disc = np.sqrt(np.maximum(b * b - 4 * a * c, 0))
    best = np.full(len(origins), np.nan)
    for t in ((-b + disc) / (2 * a), (-b - disc) / (2 * a))[::-1]:
        p = origins + t[:, None] * dirs
        inside = (t > 0) & (np.abs(p[:, :2]) <= EXTENT).all(1) & (b * b >= 4 * a * c)
        best = np.where(inside & ~(best <= t), t, best)
    return best


@pytest.fixture(scope="module")
def dome_model() -> FaceModel:
    v, tris = dome_grid(0.1)
    centroid = v[tris].mean(1)
    region = np.where((np.abs(centroid[:, 0]) < FACE_HALF[0]) & (np.abs(centroid[:, 1]) < FACE_HALF[1]), FACE, HEAD)
    nearest = lambda x, y: int(np.argmin((v[:, 0] - x) ** 2 + (v[:, 1] - y) ** 2))  # noqa: E731
    lm68 = np.full(68, nearest(0, 0))
    for i, (x, y) in {36: (-4.2, 3.3), 39: (-2.2, 3.3), 42: (2.2, 3.3), 45: (4.2, 3.3), 48: (-2.6, -3.6),
                      54: (2.6, -3.6)}.items():
        lm68[i] = nearest(x, y)
    names = sorted({n for g in EXPRESSION_GROUPS.values() for n in g})
    return FaceModel(neutral=v, id_basis=np.zeros((1, *v.shape), np.float32),
                     exp_basis=np.zeros((len(names), *v.shape), np.float32), exp_names=names,
                     triangles=tris.astype(np.int64), tri_uv=((v[tris, :2] + EXTENT) / (2 * EXTENT)).astype(np.float32),
                     tri_region=region.astype(np.int8), landmarks68=lm68)


def test_depth_and_mask_are_the_ray_cast_surface(dome_model):
    """Rendered coarse depth is the distance along the crop centre's line of sight where each crop pixel's ray
    meets the surface (closed form here), in crop pixels at the face; the mask is exactly the pixels that see the
    face region."""
    renderer, size, checked = Renderer(dome_model, size=128), 128, 0
    for seed in range(200):
        s = renderer.render(seed)
        p = s.params
        if p["has_hair"] or p["has_glasses"] or p["has_hand"]:
            continue
        photo = apply_affine(invert_affine(np.array(p["crop_affine"])), pixel_centres(size))
        dirs = np.column_stack([photo[:, 0] / p["focal_px"], -photo[:, 1] / p["focal_px"], -np.ones(len(photo))])
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        rot, centre = rotation(p["yaw"], p["pitch"], p["roll"]), np.array(p["head_centre_cm"])
        # into the head frame: x_head = rot^T (x_cam - centre)
        t = dome_hit(np.tile(-centre @ rot, (len(dirs), 1)), dirs @ rot)
        hit_head = (-centre @ rot) + t[:, None] * (dirs @ rot)
        sight = -dirs.reshape(size, size, 3)[size // 2 - 1:size // 2 + 1, size // 2 - 1:size // 2 + 1].mean((0, 1))
        depth = t * (dirs @ sight) / np.linalg.norm(sight) * p["crop_px_per_cm"]  # the crop centre's ray
        margin = np.minimum(FACE_HALF[0] - np.abs(hit_head[:, 0]), FACE_HALF[1] - np.abs(hit_head[:, 1]))
        inside, outside = (margin > 0.15).reshape(size, size), ~(margin > -0.15).reshape(size, size)
        assert s.mask[inside].all() and not s.mask[outside].any()
        d = depth.reshape(size, size)[s.mask]
        err = np.abs(s.coarse[s.mask] - (d - d.mean()))
        # the rendered dome is a 1 mm grid of flat triangles: off by its chords, most at grazing rays near the edge
        assert np.percentile(err, 99) < 0.01 and err.max() < 0.1
        checked += 1
        if checked == 2:
            break
    assert checked == 2


def test_crop_frame_and_scale_off_the_optical_axis():
    """The crop frame's z is the crop centre's line of sight, its x and y move a point right and down in the crop,
    and crop_px_per_cm is the projection's gain across the line of sight (finite differences)."""
    cam = CropCamera(1000.0, np.array([[0.5, 0.1, -80.0], [-0.1, 0.5, 150.0]]), 256)
    frame = cam.crop_frame()
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-12)
    centre_ray = cam.rays(np.array([[127.5, 127.5]]))[0]
    face = centre_ray / np.linalg.norm(centre_ray) * 60.0  # 60 cm out along the crop centre's ray
    assert np.linalg.norm(cam.project(face[None])[0] - 127.5) < 1e-9
    eps = 1e-4
    du = (cam.project((face + eps * frame[0])[None]) - cam.project(face[None]))[0] / eps
    dv = (cam.project((face + eps * frame[1])[None]) - cam.project(face[None]))[0] / eps
    # x is the crop's u exactly; y is u's perpendicular, which perspective shears slightly this far off axis
    assert du[0] > 0 and dv[1] > 0 and abs(du[1]) < 1e-6 * du[0] and abs(dv[0]) < 0.05 * dv[1]
    gain = np.sqrt(abs(du[0] * dv[1] - du[1] * dv[0]))
    assert abs(cam.crop_px_per_cm(face) - gain) < 1e-4 * gain


def test_detail_is_the_depth_change_of_the_displaced_surface():
    """displaced_hits (what the renderer uses) against a ray cast of a finely tessellated displaced dome."""
    amplitude, wavelength = 0.08, 3.0  # cm: a 0.8 mm relief with slopes up to 0.17
    bump = lambda x, y: amplitude * np.sin(2 * np.pi * x / wavelength) * np.cos(2 * np.pi * y / wavelength)  # noqa
    size = 256  # 15 crop pixels per cm: the relief is well sampled by the pixel grid, as band-limited detail is
    cam = CropCamera(1000.0, np.array([[0.6, 0.0, 127.5], [0.0, 0.6, 127.5]]), size)
    rot = rotation(35, 15, 5)
    centre = np.array([3.0, -2.0, -40.0 - H])
    to_cam = lambda v: v @ rot.T + centre  # noqa: E731
    rays = cam.pixel_rays()
    rays6 = np.column_stack([np.zeros_like(rays), rays])
    base_v, tris = dome_grid(0.05)
    bumped_v, _ = dome_grid(0.05, bump)
    _, base = cast_rays(to_cam(base_v), tris, rays6)
    _, bumped = cast_rays(to_cam(bumped_v), tris, rays6)

    points = rays * base["t"][:, None]
    head = (points - centre) @ rot
    normals = np.column_stack([head[:, 0] / R, head[:, 1] / R, np.ones(len(head))])
    normals = (normals / np.linalg.norm(normals, axis=1, keepdims=True)) @ rot.T
    disp = np.nan_to_num(bump(head[:, 0], head[:, 1])).astype(np.float32).reshape(size, size)
    toward = -rays
    t, residual = displaced_hits(points, normals, toward, disp, cam.project)

    wn = (toward * normals).sum(1)
    use = base["hit"] & bumped["hit"] & (wn > 0.3) & (np.abs(head[:, :2]) < EXTENT - 1).all(1) & np.isfinite(residual)
    truth = (base["t"] - bumped["t"])[use]  # how far towards the camera the displaced surface is met
    first_order = (disp.ravel() / np.maximum(wn, 0.05))[use]
    err, err_first = np.abs(t[use] - truth), np.abs(first_order - truth)
    assert use.sum() > 3000 and np.abs(truth).max() > 0.05
    assert err.max() < 0.1 * err_first.max() and np.percentile(err, 99) < 0.002  # 0.02 mm


def test_determinism_and_framing_contract(dome_model):
    """The same seed renders the same sample; the crop is align.crop_affine of the landmarks the renderer
    'detected', so aligning them again (now in crop pixels) gives the identity."""
    from facerecon.preprocess.align import crop_affine

    renderer = Renderer(dome_model)
    a, b, c = renderer.render(5), renderer.render(5), renderer.render(6)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.coarse, b.coarse) and a.params == b.params
    assert not np.array_equal(a.image, c.image)
    for s in (a, c):
        np.testing.assert_allclose(crop_affine(np.array(s.params["detected_landmarks5"])), np.eye(2, 3), atol=1e-6)


def test_the_scene_configuration_drives_the_renders(dome_model):
    """SceneConfig holds the scene's distributions: a configuration without hair, occluders or head turn renders
    exactly that, and the defaults' faces vary."""
    plain = Renderer(dome_model, size=128, scene=SceneConfig(bald_share=1.0, glasses_share=0.0, hand_share=0.0,
                                                             yaw_sd=0.0, pitch_sd=0.0, roll_sd=0.0))
    default = Renderer(dome_model, size=128)
    for seed in range(6):
        p = plain.render(seed).params
        assert not (p["has_hair"] or p["has_glasses"] or p["has_hand"]) and p["yaw"] == p["pitch"] == p["roll"] == 0
    assert len({round(default.render(seed).params["yaw"], 3) for seed in range(6)}) == 6


def test_detail_label_is_the_wrinkles_of_the_relief():
    """The photo is shaded by the whole relief; the label keeps its wrinkles (grooves, and the cheeks' bulges beside
    the nasolabial folds) and leaves out the speckle."""
    rng = np.random.default_rng(3)
    relief, wrinkles, params = displacement_map(rng, footprint=1.0)
    speckle = relief - wrinkles
    assert wrinkles.min() < -0.05  # grooves of tenths of a millimetre
    rows, cols = np.nonzero(wrinkles > 0.01)
    u, v = cols / (TEXTURE_SIZE - 1), 1 - rows / (TEXTURE_SIZE - 1)
    assert len(u) and ((np.abs(u - 0.5) > 0.05) & (np.abs(u - 0.5) < 0.2) & (v > 0.35) & (v < 0.62)).all()
    assert abs(speckle.mean()) < 0.2 * speckle.std() and 0 < speckle.std() < params["pore_mm"]


def test_the_cheek_bulges_beside_the_nasolabial_fold():
    """Each nasolabial fold (the deepest groove beside the nose) has a bulge (negative depth) on its cheek side,
    further from the face's midline u = 0.5."""
    curves = wrinkle_curves(np.random.default_rng(0))
    bulges = [(c, d) for c, d, _ in curves if d < 0]
    assert len(bulges) == 2
    for curve, _ in bulges:
        fold = min((c for c, d, _ in curves if d > 0), key=lambda c: np.abs(c - curve).max())
        assert (np.abs(curve[:, 0] - 0.5) > np.abs(fold[:, 0] - 0.5)).all()


def plain_renderer(model: FaceModel, **scene) -> Renderer:
    """Frontal, bald, without occluders: the face's own shading."""
    return Renderer(model, size=128, scene=SceneConfig(bald_share=1.0, glasses_share=0.0, hand_share=0.0, yaw_sd=0.0,
                                                       pitch_sd=0.0, roll_sd=0.0, blur_share=0.0, noise_max=0.0,
                                                       jpeg_share=0.0, **scene))


def test_creases_darken_as_occlusion_does(dome_model):
    """With occlusion on, the pixels over deep wrinkles lose more light than the open skin around them does."""
    open_sky = plain_renderer(dome_model, occlusion=(0.0, 0.0), scattering_px=(0.0, 0.0))
    occluded = plain_renderer(dome_model, occlusion=(3.0, 3.0), scattering_px=(0.0, 0.0))
    in_crease, open_skin = [], []
    for seed in range(4):
        a, b = open_sky.render(seed), occluded.render(seed)
        ratio = (b.image.astype(float).sum(2) + 1) / (a.image.astype(float).sum(2) + 1)
        deep = b.valid_detail & (b.detail < np.percentile(b.detail[b.valid_detail], 2))
        far = b.valid_detail & (cv2.GaussianBlur(np.abs(b.detail), (0, 0), 3) < 0.002)
        in_crease.append(ratio[deep].mean())
        open_skin.append(ratio[far].mean())
    assert np.mean(in_crease) < np.mean(open_skin) - 0.03 and np.mean(open_skin) > 0.9


def test_scattering_softens_the_skin_light_only(dome_model):
    """Light spread under the skin (Renderer.scatter): the skin's irradiance loses its fine structure, red the most;
    it does not spread into or out of what is not skin (an eye here)."""
    size = 64
    renderer = Renderer(dome_model, size=size, scene=SceneConfig(scattering_px=(2.0, 2.0)))
    hit = np.zeros((size, size), bool)
    hit[8:56, 8:56] = True
    region = np.full(hit.sum(), FACE, np.int8)
    eye = (np.mgrid[8:56, 8:56][1] >= 40).ravel()  # the right part of the face is an eyeball
    region[eye] = EYEBALL
    irradiance = np.random.default_rng(0).uniform(0.2, 1.0, (hit.sum(), 3))
    irradiance[eye] = 5.0
    out = renderer.scatter(np.random.default_rng(1), SimpleNamespace(hit=hit.ravel(), region=region), irradiance)
    assert np.array_equal(out[eye], irradiance[eye])
    skin = ~eye
    assert out[skin].max() < 1.0  # nothing of the eye's 5.0 leaked in
    spread = (irradiance[skin] - 0.6).std(0)
    kept = (out[skin] - out[skin].mean(0)).std(0) / spread
    assert kept[0] < kept[1] < kept[2] < 0.5



def test_flatten_shading_removes_the_studio_light_and_keeps_the_skin_texture():
    """A portrait texture lit brighter towards its top, with fine texture and a dark crease on it, loses the light
    ramp (which would meet the procedural fill in a step) but keeps its colour, crease and texture; the inpainted
    fill outside the photo skin (alpha 0) does not leak into the result."""
    from facerecon.data.synth.textures import flatten_shading

    size = 128
    yy, xx = np.mgrid[0:size, 0:size]
    rng = np.random.default_rng(0)
    light = 1.4 - 0.8 * yy / size  # bright at the top
    skin = 0.6 + 0.05 * rng.standard_normal((size, size))
    skin[60:62] *= 0.7  # a crease
    rgb = np.clip(150 * (light * skin)[..., None] * [1.0, 0.8, 0.7], 0, 255)
    alpha = np.where((yy > 10) & (yy < 118) & (xx > 10) & (xx < 118), 255, 0)
    rgb[alpha == 0] = [250, 20, 20]  # a fill that is nothing like the skin
    img = np.dstack([rgb, alpha]).astype(np.uint8)[None]
    flat = flatten_shading(img, sigma=12.0)[0].astype(float)
    assert (flat[..., 3] == img[0, ..., 3]).all()
    inner = (slice(30, 98), slice(30, 98))
    top_to_bottom = lambda a: a[30:40, 30:98, 0].mean() / a[88:98, 30:98, 0].mean()  # noqa: E731
    assert top_to_bottom(img[0].astype(float)) > 1.4
    assert 0.95 < top_to_bottom(flat) < 1.05  # the light ramp is gone
    crease = flat[60:62, 30:98, 0].mean() / np.r_[flat[54:58, 30:98, 0], flat[64:68, 30:98, 0]].mean()
    assert crease < 0.8  # the crease stays
    ratio = flat[inner][..., 1].mean() / flat[inner][..., 0].mean()
    assert abs(ratio - 0.8) < 0.02  # the colour stays
    rel = flat[inner][..., 0] / cv2.GaussianBlur(flat[..., 0], (0, 0), 12)[inner]
    assert 0.06 < rel[:40].std() < 0.11  # so does the fine texture (5% to 8%: 0.6 +- 0.05, rounding)
