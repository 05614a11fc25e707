import json
import shutil
import subprocess

import cv2
import numpy as np
import pygltflib
import pytest
import trimesh

from facerecon import FaceReconstruction
from facerecon.preprocess.align import MM_PER_CROP_PIXEL
from facerecon.surface.export import BASE_MM, face_glb, write_maps, write_mesh
from facerecon.surface.mesh import CENTRE, build_mesh, texture_uv

from .conftest import ROOT, require_tool


def make_face(step_depth: float = 40.0) -> FaceReconstruction:
    """A flat disc with a depth step down its middle and a ripple in the detail map."""
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
    mask = (((xx - 128) ** 2 + (yy - 128) ** 2) < 90 ** 2).astype(np.float32)
    coarse = np.where(xx < 128, 0.0, step_depth).astype(np.float32)
    detail = (0.5 * np.sin(xx / 3)).astype(np.float32)
    rgb = np.zeros((256, 256, 3), np.uint8)
    rgb[..., 0] = xx.astype(np.uint8)
    return FaceReconstruction(mask=mask, coarse_depth=coarse, detail=detail, crop_affine=np.eye(2, 3),
                              crop_rgb=rgb, texture_rgb=np.repeat(np.repeat(rgb, 2, 0), 2, 1),
                              box=np.array([0, 0, 256, 256.0]), landmarks5=np.zeros((5, 2)), score=1.0)


def test_mesh_is_cut_to_the_mask_and_joined_across_a_depth_step():
    """A face hiding part of itself (the nose before a turned face's far cheek) is one surface: the triangles
    across the step join the two sides, and seen from the camera no pixel of the face is left uncovered."""
    face = make_face()
    mesh = build_mesh(face, detail_strength=0.0)
    v, t = np.asarray(mesh.vertices), np.asarray(mesh.triangles)
    assert len(v) == int((face.mask > 0.5).sum())  # a disc: nothing to drop, nothing to fill
    z = v[t][:, :, 2] / MM_PER_CROP_PIXEL
    bridging = np.ptp(z, axis=1) > 39
    assert bridging.sum() == 2 * (np.ptp(np.nonzero(face.mask[:, 127] > 0.5)[0]))  # a wall the disc's height

    def open_edges(mesh):
        t = np.asarray(mesh.triangles)
        edges = np.sort(np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]]), axis=1)
        return (np.unique(edges, axis=0, return_counts=True)[1] == 1).sum()

    assert open_edges(mesh) == open_edges(build_mesh(make_face(step_depth=0.0)))  # the outline's, no cut
    assert mesh.vertex_normals.shape == mesh.vertex_colors.shape == v.shape
    n = np.asarray(mesh.vertex_normals)
    beside_step = np.abs(v[:, 0] / MM_PER_CROP_PIXEL + 0.5) < 2  # the columns either side of it lean on the wall
    assert (n[~beside_step, 2] > 0.99).mean() > 0.99  # flat parts face the viewer (+Z)


def test_a_pixel_in_no_triangle_is_dropped_and_the_triangles_renumbered():
    """A two-pixel spur off the disc's edge: its tip is in no 2x2 block with two more face pixels."""
    face = make_face(step_depth=0.0)
    row = np.nonzero(face.mask[128] > 0.5)[0]
    face.mask[128, row[-1] + 1: row[-1] + 3] = 1.0  # the spur: its first pixel has triangles, its tip none
    mesh = build_mesh(face, detail_strength=0.0)
    assert len(mesh.vertices) == int((face.mask > 0.5).sum()) - 1
    assert mesh.triangles.max() == len(mesh.vertices) - 1 and len(np.unique(mesh.triangles)) == len(mesh.vertices)
    assert mesh.vertices[:, 0].max() < (row[-1] + 1.5 - CENTRE) * MM_PER_CROP_PIXEL  # the spur's first pixel, no tip
    assert len(mesh.vertex_colors) == len(mesh.vertices)


def test_the_mesh_matches_open3d_and_decimates_through_it():
    """FaceMesh's normals are open3d's (computed in numpy so that meshing does not import open3d), and a
    decimated mesh comes back as a FaceMesh with colours and normals of its own."""
    import open3d as o3d

    mesh = build_mesh(make_face())
    ours = mesh.to_open3d()
    assert np.array_equal(np.asarray(ours.triangles), mesh.triangles)
    theirs = o3d.geometry.TriangleMesh(ours.vertices, ours.triangles)
    theirs.compute_vertex_normals()
    np.testing.assert_allclose(mesh.vertex_normals, np.asarray(theirs.vertex_normals), atol=1e-9)
    assert len(np.unique(mesh.triangles)) == len(mesh.vertices)  # every vertex in a triangle
    small = build_mesh(make_face(), target_triangles=500)
    assert 450 <= len(small.triangles) <= 500 and len(np.unique(small.triangles)) == len(small.vertices)
    assert small.vertex_colors.shape == small.vertex_normals.shape == small.vertices.shape
    np.testing.assert_allclose(np.linalg.norm(small.vertex_normals, axis=1), 1, atol=1e-9)


def test_steep_surfaces_are_kept():
    """A ramp falling 5 px per px (like the underside of a nose) is a surface, not a jump: no hole in it."""
    face = make_face(step_depth=0.0)
    yy = np.mgrid[0:256, 0:256][0].astype(np.float32)
    face.coarse_depth = np.clip(5 * (yy - 128), -20, 20)
    mesh = build_mesh(face, detail_strength=0.0)
    assert len(mesh.triangles) == len(build_mesh(make_face(step_depth=0.0), detail_strength=0.0).triangles)


def test_face_region_drops_islands_and_fills_small_holes():
    from facerecon.surface.mesh import face_region

    mask = np.zeros((100, 100), np.float32)
    mask[10:90, 10:90] = 1
    mask[40:45, 30:36] = 0  # an eye-sized hole
    mask[20:60, 50:80] = 0  # a big hole stays open
    mask[0:2, 0:2] = 1  # a stray island
    region = face_region(mask)
    assert region[42, 33] and not region[40, 60] and not region[0, 0] and region[15, 15]


def test_detail_strength_and_decimation():
    face = make_face(step_depth=0.0)
    flat = np.asarray(build_mesh(face, detail_strength=0.0).vertices)[:, 2]
    full = np.asarray(build_mesh(face, detail_strength=1.0).vertices)[:, 2]
    double = np.asarray(build_mesh(face, detail_strength=2.0).vertices)[:, 2]
    assert np.ptp(flat) == 0 and np.allclose(double - flat, 2 * (full - flat))
    small = build_mesh(face, target_triangles=2000)
    assert 0 < len(small.triangles) <= 2000


def test_texture_uv_puts_a_pixel_on_its_texel():
    face = make_face()
    mesh = build_mesh(face)
    v = np.asarray(mesh.vertices)
    uv = texture_uv(v)
    tex = face.texture_rgb
    px = np.clip((uv[:, 0] * tex.shape[1]).astype(int), 0, tex.shape[1] - 1)
    py = np.clip(((1 - uv[:, 1]) * tex.shape[0]).astype(int), 0, tex.shape[0] - 1)
    # red is the pixel's x: off-grid outline vertices get it interpolated, their texel rounds it
    np.testing.assert_allclose(tex[py, px, 0], np.asarray(mesh.vertex_colors)[:, 0] * 255, atol=1)


def outline_vertices(mesh) -> np.ndarray:
    """Crop-pixel (x, y, depth) of the vertices on edges that only one triangle uses."""
    t = np.asarray(mesh.triangles)
    edges = np.sort(np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]]), axis=1)
    unique, count = np.unique(edges, axis=0, return_counts=True)
    v = np.asarray(mesh.vertices)[np.unique(unique[count == 1])] / MM_PER_CROP_PIXEL
    return np.column_stack([v[:, 0] + 127.5, 127.5 - v[:, 1], v[:, 2]])


def test_mesh_outline_follows_the_mask_contour_not_the_pixel_staircase():
    face = make_face(step_depth=0.0)
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
    radius = np.hypot(xx - 128, yy - 128)
    face.mask = 1 / (1 + np.exp((radius - 90.3) / 2))  # a soft disc: the 0.5 contour is the circle r = 90.3
    for step, tolerance in ((1, 0.05), (2, 0.15)):
        outline = outline_vertices(build_mesh(face, step=step))
        r = np.hypot(outline[:, 0] - 128, outline[:, 1] - 128)
        assert len(r) > 300 / step and np.abs(r - 90.3).max() < tolerance, (step, np.abs(r - 90.3).max())
    staircase = radius[(radius < 90.3) & (radius > 88)]  # the edge pixels themselves lie up to ~1.4 px inside
    assert staircase.min() < 89


def test_the_outline_continues_a_steep_rim_without_cracks():
    """A dome whose rim falls ~5 px per px, the prediction outside it far behind: outline vertices keep to the
    dome's own slope and no triangle of the rim is lost."""
    face = make_face(step_depth=0.0)
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
    radius = np.hypot(xx - 128, yy - 128)
    face.mask = 1 / (1 + np.exp((radius - 90.3) / 2))
    dome = lambda r: np.sqrt(np.maximum(92 ** 2 - r ** 2, 0))  # noqa: E731
    face.coarse_depth = np.where(radius < 90.3, dome(radius), -100).astype(np.float32)
    face.detail[:] = 0
    mesh = build_mesh(face)
    assert len(mesh.triangles) == len(build_mesh(face, max_slope=1e6).triangles)
    x, y, z = outline_vertices(mesh).T
    assert np.abs(z - dome(np.hypot(x - 128, y - 128))).max() < 1.5


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    face = make_face()
    mesh = build_mesh(face)
    return out, write_mesh(mesh, face.texture_rgb, out, face=face), write_maps(face, out), mesh


def decoded_normals(paths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The GLB's (positions, vertex normals, shading normals): each vertex's NORMAL turned by the normal map at its
    UV (glTF's tangent frame: TANGENT, bitangent = NORMAL x TANGENT * w), as a viewer shades it."""
    glb = pygltflib.GLTF2().load(str(paths["glb"]))
    blob = glb.binary_blob()

    def accessor(index, width):
        a = glb.accessors[index]
        view = glb.bufferViews[a.bufferView]
        start = (view.byteOffset or 0) + (a.byteOffset or 0)
        return np.frombuffer(blob[start:start + a.count * width * 4], np.float32).reshape(a.count, width)

    attrs = glb.meshes[0].primitives[0].attributes
    pos, n, t, uv = accessor(attrs.POSITION, 3), accessor(attrs.NORMAL, 3), accessor(attrs.TANGENT, 4), \
        accessor(attrs.TEXCOORD_0, 2)
    image = glb.images[glb.textures[glb.materials[0].normalTexture.index].source]
    view = glb.bufferViews[image.bufferView]
    png = np.frombuffer(blob[view.byteOffset or 0:(view.byteOffset or 0) + view.byteLength], np.uint8)
    texels = cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1
    size = texels.shape[0]
    local = texels[np.clip((uv[:, 1] * size).astype(int), 0, size - 1), np.clip((uv[:, 0] * size).astype(int), 0,
                                                                                size - 1)]
    b = np.cross(n, t[:, :3]) * t[:, 3:]
    shading = local[:, :1] * t[:, :3] + local[:, 1:2] * b + local[:, 2:] * n
    return pos, n, shading / np.linalg.norm(shading, axis=1, keepdims=True)


def test_the_glb_shades_the_detail_through_its_normal_map(tmp_path):
    """The GLB's vertex normals are the coarse surface's (what a decimated copy keeps), and its normal map turns
    them into the detailed surface's: the shading a viewer computes matches the detailed mesh's own normals."""
    face = make_face()
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
    face.detail = (0.5 * np.sin(xx / 3) + 0.4 * np.sin(yy / 4 + 1)).astype(np.float32)  # across both axes
    mesh = build_mesh(face)
    pos, normals, shading = decoded_normals(write_mesh(mesh, face.texture_rgb, tmp_path, ("glb",), face=face))
    detailed = np.asarray(mesh.vertex_normals)
    inner = np.hypot(pos[:, 0], pos[:, 1]) < 80 * MM_PER_CROP_PIXEL  # away from the rim and the step
    inner &= np.abs(pos[:, 0]) > 3 * MM_PER_CROP_PIXEL

    def angle(a, b):
        return np.degrees(np.arccos(np.clip((a * b).sum(1), -1, 1)))[inner]

    assert np.median(angle(normals, detailed)) > 4  # the vertex normals alone miss the ripple
    assert np.median(angle(shading, detailed)) < 1.0 and np.percentile(angle(shading, detailed), 95) < 2.0


def test_glb_is_valid_gltf2_read_back_by_a_second_library(written):
    out, paths, _, mesh = written
    gltf = pygltflib.GLTF2().load(str(paths["glb"]))
    assert gltf.asset.version == "2.0"
    prim = gltf.meshes[0].primitives[0]
    assert gltf.accessors[prim.attributes.POSITION].count == len(mesh.vertices)
    assert gltf.accessors[prim.indices].count == 3 * len(mesh.triangles)
    assert prim.attributes.TEXCOORD_0 is not None and gltf.images and gltf.textures
    blob = gltf.binary_blob()
    assert len(blob) >= gltf.buffers[0].byteLength
    assert all(bv.byteOffset % 4 == 0 for bv in gltf.bufferViews if bv.byteOffset)


def test_glb_passes_the_khronos_validator(written):
    out, paths, _, _ = written
    script = ROOT / "tools" / "validate_gltf.js"
    require_tool(bool(shutil.which("node")) and (ROOT / "node_modules" / "gltf-validator").is_dir(),
                 "the Khronos glTF validator is not installed (npm ci)")
    report = json.loads(subprocess.run(["node", str(script), str(paths["glb"])], capture_output=True, text=True,
                                       check=True, timeout=120).stdout)
    assert report["errors"] == 0 and report["warnings"] == 0, report


def _glb_in_child(face, queue):
    queue.put(len(face_glb(build_mesh(face), face.texture_rgb, face)))


def test_a_forked_child_writes_a_glb(tmp_path):
    """The GLB's images are encoded on worker threads; a process forked after its parent wrote a GLB (a server that
    warms up, then forks its workers) must get threads of its own, not wait for the parent's, which a fork leaves
    behind."""
    import multiprocessing

    face = make_face()
    face_glb(build_mesh(face), face.texture_rgb, face)  # the parent's worker threads exist now
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_glb_in_child, args=(face, queue))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0 and queue.get(timeout=5) > 1000


def test_obj_ply_stl_read_back(written):
    out, paths, _, mesh = written
    obj = trimesh.load(paths["obj"], force="mesh", process=False, maintain_order=True)
    np.testing.assert_array_equal(obj.faces, mesh.triangles)
    np.testing.assert_allclose(obj.vertices, mesh.vertices, atol=1e-6)
    normals = [line.split()[1:] for line in paths["obj"].read_text().splitlines() if line.startswith("vn ")]
    np.testing.assert_allclose(np.float64(normals), mesh.vertex_normals, atol=1e-6)  # trimesh recomputes its own
    np.testing.assert_allclose(obj.visual.uv, texture_uv(mesh.vertices), atol=1e-6)
    texture = [line.split()[1] for line in (out / "face.mtl").read_text().splitlines() if line.startswith("map_Kd")]
    assert texture and (out / texture[0]).is_file()
    assert isinstance(obj.visual, trimesh.visual.TextureVisuals) and obj.visual.material.image.size == (512, 512)
    # the texture as it is: viewers multiply it by the diffuse colour (trimesh's own MTL said 0.4, a darker face)
    assert list(obj.visual.material.diffuse) == [255, 255, 255, 255]
    ply = trimesh.load(paths["ply"])
    assert len(ply.vertices) == len(mesh.vertices) and ply.visual.vertex_colors.shape[0] == len(mesh.vertices)
    stl = trimesh.load(paths["stl"])  # the printable solid: surface, back, and walls on the open edges
    assert len(stl.faces) > 2 * len(mesh.triangles)


@pytest.mark.parametrize("hole", [False, True], ids=["disc cut at a depth step", "with a hole"])
def test_the_stl_is_a_closed_printable_solid(tmp_path, hole):
    face = make_face()
    if hole:  # a hole too large to be filled (face_region fills those under 3% of the face): walls line it too
        yy, xx = np.mgrid[0:256, 0:256]
        face.mask[((xx - 100) ** 2 + (yy - 128) ** 2) < 25 ** 2] = 0
    paths = write_mesh(build_mesh(face), face.texture_rgb, tmp_path, formats=("stl",))
    solid = trimesh.load(paths["stl"])
    assert solid.is_watertight and solid.is_winding_consistent and solid.volume > 0
    z = solid.vertices[:, 2]
    assert np.isclose(z.min(), build_mesh(face).vertices[:, 2].min() - BASE_MM)  # a flat back 3 mm behind the face


def test_maps_files(written):
    out, _, maps, _ = written
    import cv2

    depth = cv2.imread(str(maps["depth"]), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (256, 256)
    npz = np.load(maps["maps"])
    assert set(npz.files) == {"mask", "coarse_depth", "detail", "depth", "crop_affine", "crop_rgb", "texture_rgb",
                              "box", "landmarks5", "score", "turn"}
    np.testing.assert_allclose(npz["depth"], npz["coarse_depth"] + npz["detail"])


def test_results_meshes_and_files_need_no_torch(tmp_path):
    """The public API loads lazily: a saved result is read, meshed and exported without importing torch."""
    import subprocess
    import sys

    face = make_face()
    face.save(tmp_path / "maps.npz")
    code = ("import sys, facerecon\n"
            "from facerecon import FaceReconstruction, FaceReconstructor, build_mesh, export_face\n"
            f"face = FaceReconstruction.load({str(tmp_path / 'maps.npz')!r})\n"
            "assert len(build_mesh(face).triangles) > 0\n"
            f"paths = export_face(face, {str(tmp_path / 'out')!r}, formats=['glb', 'stl'])\n"
            "print(','.join(sorted(paths)), 'torch' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["depth,detail,glb,maps,mask,stl", "False"]


@pytest.mark.parametrize("options", [{"detail_strength": float("nan")}, {"detail_strength": -5},
                                     {"detail_strength": 1e9}, {"detail_strength": "abc"},
                                     {"target_triangles": -5}, {"target_triangles": 2.5}])
def test_bad_mesh_options_are_refused_with_their_range(options):
    with pytest.raises(ValueError, match="from 0 to 5|>= 100"):
        build_mesh(make_face(), **options)


def test_a_face_with_nothing_recognised_is_a_plain_error_not_a_crash():
    from facerecon import EmptyFaceError

    face = make_face()
    face.mask[:] = 0
    with pytest.raises(EmptyFaceError, match="no surface to mesh"):
        build_mesh(face)
    face.mask[::4, ::4] = 1  # scattered pixels: face, but no triangle among them
    with pytest.raises(EmptyFaceError, match="no surface to mesh"):
        build_mesh(face)
    face.mask[101:103, 101:103] = 1  # one 2x2 block: two triangles
    assert len(build_mesh(face).triangles) == 2
    face.mask[:] = 0
    face.mask[100:140, 100:140] = 1  # a 40 px square, 2.4% of the crop: a speck, no surface
    with pytest.raises(EmptyFaceError, match="no surface to mesh"):
        build_mesh(face)
    face.mask[100:164, 100:164] = 1  # a 64 px square, 6.3%
    assert len(build_mesh(face).triangles) == 2 * 63 * 63


@pytest.mark.parametrize("layout", ["maps", "detail"])
def test_figure_rows_show_their_columns_and_the_detail_layout_shows_what_the_detail_adds(layout):
    from facerecon.surface.visualize import FIGURE_COLUMNS, figure_row

    face = make_face(step_depth=0.0)
    row = figure_row(face, layout)
    columns = FIGURE_COLUMNS[layout].split(" | ")
    assert row.shape == (256, 256 * len(columns), 3) and row.dtype == np.uint8
    if layout == "detail":  # the surface lit without and with the ripple, and turned without and with it
        pictures = np.split(row.astype(int), len(columns), axis=1)
        assert np.abs(pictures[1] - pictures[2]).mean() > 5 and np.abs(pictures[4] - pictures[5]).mean() > 1
        face.detail[:] = 0
        pictures = np.split(figure_row(face, layout).astype(int), len(columns), axis=1)
        assert np.array_equal(pictures[1], pictures[2]) and np.array_equal(pictures[4], pictures[5])
