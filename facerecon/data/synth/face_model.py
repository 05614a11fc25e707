"""The ICT Face Model Light (../shared/data/ict_facekit): sampling identities, expressions and their mesh."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Region codes per triangle.
FACE, HEAD, MOUTH, EYE_SOCKET, EYEBALL = range(5)
_SEGMENT_REGION = {"face": FACE, "head_neck": HEAD, "mouth_socket": MOUTH, "eye_socket_l": EYE_SOCKET,
                   "eye_socket_r": EYE_SOCKET, "eyeball_l": EYEBALL, "eyeball_r": EYEBALL}

# Expressions sampled as plausible groups (ARKit names): each group's shapes move together.
EXPRESSION_GROUPS = {
    "smile": ["mouthSmile_L", "mouthSmile_R", "cheekSquint_L", "cheekSquint_R"],
    "open_mouth": ["jawOpen"],
    "blink": ["eyeBlink_L", "eyeBlink_R"],
    "wink": ["eyeBlink_L"],
    "frown": ["browDown_L", "browDown_R", "mouthFrown_L", "mouthFrown_R"],
    "raised_brows": ["browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R"],
    "pucker": ["mouthPucker", "mouthFunnel"],
    "squint": ["eyeSquint_L", "eyeSquint_R"],
    "sneer": ["noseSneer_L", "noseSneer_R", "mouthUpperUp_L", "mouthUpperUp_R"],
    "stretch": ["mouthStretch_L", "mouthStretch_R"],
    "jaw_side": ["jawLeft"],
}


def default_data_dir() -> Path:
    """$FACERECON_DATA, else ../shared/data from the working folder (the repository's root, where the commands run)."""
    import os

    return Path(os.environ.get("FACERECON_DATA", Path.cwd().parent / "shared" / "data"))


@dataclass
class FaceModel:
    neutral: np.ndarray  # V x 3, cm, +y up, +z towards the viewer
    id_basis: np.ndarray  # K x V x 3
    exp_basis: np.ndarray  # E x V x 3
    exp_names: list[str]
    triangles: np.ndarray  # T x 3 vertex ids
    tri_uv: np.ndarray  # T x 3 x 2 UVs (UDIM: the face lives in tile [0, 1]^2, v up)
    tri_region: np.ndarray  # T region codes
    landmarks68: np.ndarray  # 68 vertex ids (Multi-PIE order)

    @classmethod
    def load(cls, path: Path | None = None) -> FaceModel:
        path = Path(path) if path else default_data_dir() / "ict_facekit" / "ict_facekit_head_f16.npz"
        d = np.load(path)
        quads, quads_uv = d["faces"], d["faces_uv"]
        tris, tris_uv = [quads[:, [0, 1, 2]]], [quads_uv[:, [0, 1, 2]]]
        is_quad = quads[:, 3] >= 0
        tris.append(quads[is_quad][:, [0, 2, 3]])
        tris_uv.append(quads_uv[is_quad][:, [0, 2, 3]])
        triangles, tri_uv_ids = np.concatenate(tris), np.concatenate(tris_uv)
        vertex_region = np.zeros(len(d["neutral"]), np.int8)
        for name, (a, b) in json.loads(str(d["segments"])).items():
            vertex_region[a:b] = _SEGMENT_REGION[name]
        tri_uv = d["uv"][tri_uv_ids]
        tri_region = vertex_region[triangles].max(1)  # a face triangle touching an eye/mouth vertex joins that part
        # The face region is the skin inside the jaw line (68-point contour) up to the top of the forehead, as in
        # MediaPipe's face oval; the rest of the face UV tile (neck, ears, seams) counts as head.
        in_tile = tri_uv[:, :, 0].max(1) < 1.0
        tri_region[(tri_region == FACE) & ~(in_tile & _inside_face_oval(tri_uv.mean(1), d))] = HEAD
        # bases to float32 once: numpy would convert the float16 arrays on every tensordot (25 ms a sample)
        return cls(neutral=d["neutral"].astype(np.float32), id_basis=d["id_basis"].astype(np.float32),
                   exp_basis=d["exp_basis"].astype(np.float32),
                   exp_names=[str(n) for n in d["exp_names"]], triangles=triangles.astype(np.int64),
                   tri_uv=tri_uv.astype(np.float32), tri_region=tri_region, landmarks68=d["landmarks68"])

    def sample_expression(self, rng: np.random.Generator) -> np.ndarray:
        """Sparse, plausible expression weights: 0-3 groups, each at a random strength."""
        w = np.zeros(len(self.exp_names), np.float32)
        n_groups = rng.choice([0, 1, 1, 2, 2, 3])
        for g in rng.choice(list(EXPRESSION_GROUPS), size=n_groups, replace=False):
            strength = rng.uniform(0.2, 1.0)
            for name in EXPRESSION_GROUPS[g]:
                w[self.exp_names.index(name)] = np.clip(strength + rng.normal(0, 0.1), 0, 1)
        return w

    def vertices(self, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
        v = self.neutral + np.tensordot(identity.astype(np.float32), self.id_basis, axes=1)
        return v + np.tensordot(expression.astype(np.float32), self.exp_basis, axes=1)

    def landmarks5(self, vertices: np.ndarray) -> np.ndarray:
        """Eye centres (corner means), nose tip and mouth corners, in the order of align.CANONICAL_LANDMARKS.

        The subject's right eye (68-point ids 36-39) appears on the image left.
        """
        lm = vertices[self.landmarks68]
        return np.stack([(lm[36] + lm[39]) / 2, (lm[42] + lm[45]) / 2, lm[30], lm[48], lm[54]])


def _inside_face_oval(uv: np.ndarray, d) -> np.ndarray:
    """Which UV points (N x 2, face tile) lie inside the jaw contour closed over the forehead."""
    import cv2

    vertex_uv = np.zeros((len(d["neutral"]), 2), np.float32)
    for q in range(4):
        used = d["faces"][:, q] >= 0
        vertex_uv[d["faces"][used, q]] = d["uv"][d["faces_uv"][used, q]]
    jaw = vertex_uv[d["landmarks68"][:17]]
    jaw = (jaw - [0.5, 0.6]) * 1.03 + [0.5, 0.6]  # the contour points sit on the jaw edge: keep it inside
    polygon = np.vstack([jaw, [[jaw[-1, 0], 0.97], [jaw[0, 0], 0.97]]])
    size = 1024
    raster = np.zeros((size, size), np.uint8)
    to_px = lambda p: np.column_stack([p[:, 0], 1 - p[:, 1]]) * (size - 1)  # noqa: E731
    cv2.fillPoly(raster, [np.round(to_px(polygon)).astype(np.int32)], 1)
    px = np.clip(np.round(to_px(uv)).astype(int), 0, size - 1)
    return raster[px[:, 1], px[:, 0]].astype(bool)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (right-handed frame)."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    fn = np.cross(b - a, c - a)
    ids = triangles.ravel()  # each triangle's normal goes to its three corners (bincount: 10x np.add.at's speed)
    n = np.column_stack([np.bincount(ids, np.repeat(fn[:, k], 3), len(vertices)) for k in range(3)])
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(vertices.dtype)
