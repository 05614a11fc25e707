"""A reconstruction to files: export_face writes the maps (mask.png, 16-bit depth.png, detail.png, maps.npz) and
the mesh as GLB (glTF 2.0 binary, glb_bytes), OBJ + MTL + texture (obj_text), PLY and STL (through trimesh).
The CLI, the web demo and `evaluate` all write through export_face."""
from __future__ import annotations

import json
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..result import FaceReconstruction
from .mesh import FaceMesh, build_mesh, mesh_frame_to_crop, texture_uv
from .raster import sample_bilinear
from .visualize import normal_components, normals_from_depth

if TYPE_CHECKING:  # trimesh (0.4 s to import) writes PLY and STL, and is imported when one is asked for
    import trimesh

FORMATS = ("glb", "obj", "ply", "stl")
# the glTF enumerations used (OpenGL's constants)
GL = {"ARRAY_BUFFER": 34962, "ELEMENT_ARRAY_BUFFER": 34963, "FLOAT": 5126, "UNSIGNED_INT": 5125, "LINEAR": 9729,
      "LINEAR_MIPMAP_LINEAR": 9987, "CLAMP_TO_EDGE": 33071}
BASE_MM = 3.0  # the printable solid's back, behind the face's deepest point
# PNG: the filter that predicts each pixel from its left neighbour alone: half the time of zlib level 1 with libpng's
# choice of filters (a face's normal map: 0.9 against 1.6 ms), the file 8% larger
IMAGE_PARAMS = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95],
                ".png": [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]}


@lru_cache(maxsize=1)
def image_encoder() -> ThreadPoolExecutor:
    """The threads that encode a GLB's images (two: the demo serves two requests at once), made on first use and made
    again in a forked child: a parent's worker threads do not survive a fork, and its executor would wait for them
    for ever (a test forks)."""
    return ThreadPoolExecutor(2, thread_name_prefix="glb-image")


os.register_at_fork(after_in_child=image_encoder.cache_clear)


def detail_normal_map(face: FaceReconstruction, detail_strength: float = 1.0,
                      coarse_normals: np.ndarray | None = None) -> np.ndarray:
    """S x S x 3 uint8 tangent-space normal map (glTF's convention: red right, green up, blue out) of the detailed
    surface (coarse + detail_strength * detail) over the coarse one: in the frame of the coarse normal N, with the
    tangent T along +X (the texture's u) and B = N x T (its up). Flat (128, 128, 255) outside the face.
    coarse_normals: normals_from_depth(face.coarse_depth, y_up=True), when the caller has it."""
    n = normals_from_depth(face.coarse_depth, y_up=True) if coarse_normals is None else coarse_normals
    dx, dy, dz = normal_components(face.coarse_depth + detail_strength * face.detail, y_up=True)
    # T = +X made orthogonal to N = (1 - nx^2, -nx ny, -nx nz) / s and B = N x T = (0, nz, -ny) / s, with
    # s = sqrt(1 - nx^2): written out channel by channel (np.cross, np.linalg.norm and stacking the channels before
    # the masking and the conversion took most of this function's time)
    nx, ny, nz = n[..., 0], n[..., 1], n[..., 2]
    inv_s = 1 / np.sqrt(np.maximum(1 - nx * nx, 1e-12))
    along_n = dx * nx + dy * ny + dz * nz
    outside = face.mask <= 0.5
    channels = []
    for channel, flat in (((dx - nx * along_n) * inv_s, 0), ((dy * nz - dz * ny) * inv_s, 0), (along_n, 1)):
        np.copyto(channel, np.float32(flat), where=outside)
        channels.append(cv2.convertScaleAbs(channel, alpha=127.5, beta=127.5))  # (c + 1) * 127.5, rounded, as uint8
    return cv2.merge(channels)


def face_glb(mesh: FaceMesh, texture: np.ndarray, face: FaceReconstruction | None = None,
             detail_strength: float = 1.0) -> bytes:
    """The GLB of a face mesh textured with `texture` (the crop sampled finer). With the face it was built from, the
    detail is also a normal map over vertex normals of the coarse surface, so a viewer shades it as the detailed
    surface, and a copy an engine decimates (whose geometry loses the detail) keeps its look; the positions keep
    the detail (the outline and the side view are the surface's own). Without it, the mesh's own normals."""
    vertices, triangles = mesh.vertices, mesh.triangles
    # the texture's JPEG is encoded on another thread (cv2 releases the GIL) while the normals and their map are
    # computed: the GLB 0.8 ms sooner on 2 cores (docs/speed.md)
    texture_jpeg = image_encoder().submit(encode_image, texture, ".jpg")
    if face is None:
        return glb_bytes(vertices, triangles, mesh.vertex_normals, texture_jpeg.result())
    coarse_normals = normals_from_depth(face.coarse_depth, y_up=True)
    normals = sample_bilinear(coarse_normals, mesh_frame_to_crop(vertices))
    # lengths written out: np.linalg.norm over rows of 3 takes 4 times as long (0.45 ms for a face's vertices)
    normals /= np.sqrt(normals[:, 0:1] ** 2 + normals[:, 1:2] ** 2 + normals[:, 2:3] ** 2)
    # the tangent frame of detail_normal_map, given with the mesh (the viewer's own MikkTSpace frame would match it
    # on this planar UV map, but glTF calls a generated one non-portable): T = +X made orthogonal to N, w = +1;
    # its length is sqrt(1 - nx^2) for a unit N
    tangents = np.array([1.0, 0, 0]) - normals[:, :1] * normals
    tangents /= np.sqrt(np.maximum(1 - normals[:, 0:1] ** 2, 1e-12))
    normal_map_png = encode_image(detail_normal_map(face, detail_strength, coarse_normals), ".png")
    return glb_bytes(vertices, triangles, normals, texture_jpeg.result(),
                     np.column_stack([tangents, np.ones(len(tangents))]), normal_map_png)


def encode_image(rgb: np.ndarray, ext: str) -> bytes:
    """H x W x 3 uint8 RGB as the GLB stores it: ".jpg" (the texture, quality 95) or ".png" (a normal map, exact)."""
    _, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), IMAGE_PARAMS[ext])
    return data.tobytes()


def glb_bytes(vertices: np.ndarray, triangles: np.ndarray, normals: np.ndarray, texture_jpeg: bytes,
              tangents: np.ndarray | None = None, normal_map_png: bytes | None = None) -> bytes:
    """glTF 2.0 binary of one mesh in the mesh frame, textured with texture_jpeg (texture_uv's map; encode_image),
    normal-mapped with normal_map_png when given.

    Written here rather than with pygltflib (which the tests read it back with) or trimesh: a GLB is a 12-byte
    header, the glTF JSON and one binary buffer (the glTF 2.0 specification, "Binary glTF Layout"), and pygltflib
    serialised its dataclasses through deep copies and copied the buffer twice, two thirds of the export's time;
    trimesh re-encoded the JPEG at quality 75 and hashed every array."""
    parts: list[bytes | memoryview] = []  # the binary buffer's pieces, each 4-byte aligned, joined once at the end
    size = 0
    views: list[dict] = []
    accessors: list[dict] = []

    def view(data: bytes | memoryview, target: int | None = None) -> int:
        nonlocal size
        parts.extend([data, b"\0" * (-len(data) % 4)])
        views.append({"buffer": 0, "byteOffset": size, "byteLength": len(data)}
                     | ({"target": target} if target else {}))
        size += len(data) + (-len(data) % 4)
        return len(views) - 1

    def accessor(array: np.ndarray, kind: str, bounds: bool = False) -> int:
        indices = kind == "SCALAR"
        array = np.ascontiguousarray(array, np.uint32 if indices else np.float32)
        accessors.append({"bufferView": view(memoryview(array).cast("B"), GL["ELEMENT_ARRAY_BUFFER" if indices
                                                                           else "ARRAY_BUFFER"]),
                          "componentType": GL["UNSIGNED_INT" if indices else "FLOAT"],
                          "count": array.size if indices else len(array), "type": kind,
                          **({"min": [float(c.min()) for c in array.T], "max": [float(c.max()) for c in array.T]}
                             if bounds else {})})  # by columns: numpy's min(0) over rows of 3 took 0.7 ms
        return len(accessors) - 1

    uv = texture_uv(vertices)
    uv[:, 1] = 1 - uv[:, 1]  # glTF's v runs down the image
    attributes = {"POSITION": accessor(vertices, "VEC3", bounds=True), "NORMAL": accessor(normals, "VEC3"),
                  "TEXCOORD_0": accessor(uv, "VEC2")}
    if tangents is not None:
        attributes["TANGENT"] = accessor(tangents, "VEC4")
    indices = accessor(triangles.reshape(-1), "SCALAR")
    images = [{"bufferView": view(texture_jpeg), "mimeType": "image/jpeg"}]
    if normal_map_png is not None:
        images.append({"bufferView": view(normal_map_png), "mimeType": "image/png"})
    material = {"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}, "metallicFactor": 0.0,
                                         "roughnessFactor": 0.8}, "doubleSided": True}
    if normal_map_png is not None:
        material["normalTexture"] = {"index": 1}
    gltf = {"asset": {"generator": "facerecon", "version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
            "nodes": [{"mesh": 0}], "meshes": [{"primitives": [{"attributes": attributes, "indices": indices,
                                                                 "material": 0}]}],
            "materials": [material], "samplers": [{"magFilter": GL["LINEAR"], "minFilter": GL["LINEAR_MIPMAP_LINEAR"],
                                                   "wrapS": GL["CLAMP_TO_EDGE"], "wrapT": GL["CLAMP_TO_EDGE"]}],
            "textures": [{"sampler": 0, "source": i} for i in range(len(images))], "images": images,
            "accessors": accessors, "bufferViews": views, "buffers": [{"byteLength": size}]}
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # the JSON chunk is padded with spaces, the binary one with zeros
    total = 12 + 8 + len(text) + 8 + size
    return b"".join([struct.pack("<4sII", b"glTF", 2, total), struct.pack("<I4s", len(text), b"JSON"), text,
                     struct.pack("<I4s", size, b"BIN\0"), *parts])


def to_trimesh(mesh: FaceMesh) -> trimesh.Trimesh:
    """FaceMesh -> trimesh with its vertex colours (for PLY and STL)."""
    import trimesh

    colours = (mesh.vertex_colors * 255).round().astype(np.uint8)
    return trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.triangles, vertex_normals=mesh.vertex_normals,
                           visual=trimesh.visual.ColorVisuals(vertex_colors=colours), process=False)


def obj_text(mesh: FaceMesh, mtl_name: str, material: str = "face") -> str:
    """Wavefront OBJ of the mesh textured by `material` of mtl_name: per vertex v (mm), vt (texture_uv) and vn, and
    the triangles as v/vt/vn, counted from 1.

    Written here rather than with trimesh, whose export_obj formats every number through str.format (0.2 s of a
    face's 0.25 s of downloads in the demo); %-formatting a block's rows at once takes a third of that."""
    def block(prefix: str, fmt: str, rows: np.ndarray) -> str:
        return (f"{prefix} {fmt}\n" * len(rows)) % tuple(rows.ravel().tolist())

    corners = np.repeat(mesh.triangles + 1, 3, axis=1)  # each corner's v, vt and vn are the same vertex
    return "".join([f"mtllib {mtl_name}\nusemtl {material}\n", block("v", "%.6f %.6f %.6f", mesh.vertices),
                    block("vt", "%.6f %.6f", texture_uv(mesh.vertices)),
                    block("vn", "%.6f %.6f %.6f", mesh.vertex_normals),
                    block("f", "%d/%d/%d %d/%d/%d %d/%d/%d", corners)])


def mtl_text(texture_name: str, material: str = "face") -> str:
    """The OBJ's material: the texture as it is (Kd 1: viewers multiply map_Kd by Kd), no specular highlight, and the
    GLB's roughness and metalness (Pr, Pm: the PBR extension Blender reads)."""
    return (f"newmtl {material}\nKd 1.000000 1.000000 1.000000\nKs 0.000000 0.000000 0.000000\nillum 1\n"
            f"Pr 0.800000\nPm 0.000000\nmap_Kd {texture_name}\n")


def check_formats(formats) -> tuple[str, ...]:
    """The formats as a tuple; ValueError naming any that is not one of FORMATS."""
    formats = tuple(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown mesh formats {unknown}; choose from {', '.join(FORMATS)}")
    return formats


def export_face(face: FaceReconstruction, out_dir: str | Path, formats=None, detail_strength: float = 1.0,
                decimate: int | None = None, maps: bool = True, compress_maps: bool = True) -> dict[str, Path]:
    """Write one face's maps (write_maps, unless maps=False) and its mesh (build_mesh with detail_strength, decimated
    to `decimate` triangles when given) in each of `formats` (default all of FORMATS) into out_dir.
    Returns {name: path}: the formats, "mtl" and "obj_texture" with an OBJ, and mask, depth, detail and maps."""
    formats = check_formats(FORMATS if formats is None else formats)
    mesh = build_mesh(face, detail_strength=detail_strength, target_triangles=decimate)
    paths = write_mesh(mesh, face.texture_rgb, out_dir, formats, face=face, detail_strength=detail_strength)
    if maps:
        paths.update(write_maps(face, out_dir, compress_maps))
    return paths


def printable_solid(mesh: trimesh.Trimesh, base_mm: float = BASE_MM) -> trimesh.Trimesh:
    """The face relief as a closed solid for 3D printing, as depth-to-print tools make it: the surface, a flat back
    base_mm behind its deepest point, and a wall down from every open edge (the rim, and the rim of any hole) to the
    back. Every edge then joins exactly two triangles, wound outwards (trimesh's is_watertight and
    is_winding_consistent hold). Written by hand because it is this short: trimesh's extrude works on 2D polygons,
    not on a relief."""
    import trimesh

    v, f = np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)
    n = len(v)
    back = v.copy()
    back[:, 2] = v[:, 2].min() - base_mm
    # an open edge is a directed edge of a triangle whose reverse belongs to none; the face lies to its left seen
    # from +Z, so a wall triangle (a, a', b), (b, a', b') faces outwards, to its right
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    # looked up in the sorted edge keys (np.isin hashed them: twice as long)
    keys, reverse = np.sort(edges[:, 0] * n + edges[:, 1]), edges[:, 1] * n + edges[:, 0]
    open_edge = keys[np.searchsorted(keys, reverse).clip(max=len(keys) - 1)] != reverse
    a, b = edges[open_edge, 0], edges[open_edge, 1]
    walls = np.concatenate([np.column_stack([a, a + n, b]), np.column_stack([b, a + n, b + n])])
    solid = trimesh.Trimesh(vertices=np.concatenate([v, back]), faces=np.concatenate([f, f[:, ::-1] + n, walls]),
                            process=False)
    solid.remove_unreferenced_vertices()
    return solid


def write_mesh(mesh: FaceMesh, texture: np.ndarray, out_dir: Path, formats=FORMATS,
               stem: str = "face", face: FaceReconstruction | None = None,
               detail_strength: float = 1.0) -> dict[str, Path]:
    """Write each format into out_dir; returns {format: path}, and with an OBJ its "mtl" and "obj_texture".
    With the face the mesh was built from (and its detail_strength), the GLB carries the detail also as a normal
    map (face_glb)."""
    formats = check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    coloured = to_trimesh(mesh) if {"ply", "stl"} & set(formats) else None
    paths = {}
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        if fmt == "glb":
            path.write_bytes(face_glb(mesh, texture, face, detail_strength))
        elif fmt == "obj":  # with its material (.mtl) and texture (.jpg, the GLB's)
            paths["mtl"], paths["obj_texture"] = out_dir / f"{stem}.mtl", out_dir / f"{stem}.jpg"
            paths["obj_texture"].write_bytes(encode_image(texture, ".jpg"))
            paths["mtl"].write_text(mtl_text(paths["obj_texture"].name))
            path.write_text(obj_text(mesh, paths["mtl"].name))
        elif fmt == "ply":
            path.write_bytes(coloured.export(file_type="ply"))
        elif fmt == "stl":  # for printing: a closed solid
            path.write_bytes(printable_solid(coloured).export(file_type="stl"))
        paths[fmt] = path
    return paths


def write_maps(face: FaceReconstruction, out_dir: Path, compress: bool = True) -> dict[str, Path]:
    """mask.png (8-bit probability), depth.png (16-bit, nearer = brighter, 0 outside the mask), detail.png
    (8-bit, 128 = no displacement), maps.npz (all arrays: FaceReconstruction.load reads it; compress=False writes
    more bytes much faster: docs/speed.md)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inside = face.mask > 0.5
    depth = face.depth
    lo, hi = (depth[inside].min(), depth[inside].max()) if inside.any() else (0.0, 1.0)
    depth16 = np.where(inside, 1 + (depth - lo) / max(hi - lo, 1e-6) * 65534, 0).astype(np.uint16)
    detail8 = np.clip(128 + face.detail * 64, 0, 255).astype(np.uint8)  # +-2 crop pixels full range
    paths = {"mask": out_dir / "mask.png", "depth": out_dir / "depth.png", "detail": out_dir / "detail.png",
             "maps": out_dir / "maps.npz"}
    cv2.imwrite(str(paths["mask"]), (face.mask * 255).round().astype(np.uint8))
    cv2.imwrite(str(paths["depth"]), depth16)
    cv2.imwrite(str(paths["detail"]), detail8)
    face.save(paths["maps"], compress)
    return paths
