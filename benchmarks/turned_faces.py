"""Meshes of turned faces: synthetic evaluation faces (render seed 2, held-out portrait skins with --textures)
turned 30 to 70 degrees, meshed from the network's maps as the CLI meshes them. Per face it measures
- front coverage: the share of the face region's pixels (mesh.face_region of the predicted mask) whose ray from the
  camera (along -Z, the crop's own view) hits the mesh; uncovered pixels are holes that show in the default view,
  except on the region's outermost ring, where the outline sits on the mask's 0.5 contour (mesh.contour_offsets),
  which can pass just inside a pixel centre (counted apart: "outline pixels missed");
- holes: connected groups of uncovered pixels inside that ring;
- inner open edges: triangle edges with one triangle only, more than 2 px inside the face region (shredded strips
  and holes have them; the outline does not);
and prints medians and worst cases. (The data has no real turned faces; see the issue note.)

    python benchmarks/turned_faces.py [--count 40] [--textures ~/.cache/facerecon/skin_frll_heldout.npz]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import trimesh

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facerecon.data.synth.engine import sample_seed  # noqa: E402
from facerecon.data.synth.face_model import default_data_dir  # noqa: E402
from facerecon.predictor import FaceReconstructor  # noqa: E402
from facerecon.result import FaceReconstruction  # noqa: E402
from facerecon.surface.mesh import build_mesh, crop_to_mesh_frame, face_region, mesh_frame_to_crop  # noqa: E402
from facerecon.surface.raster import cast_rays, pixel_centres  # noqa: E402
from facerecon.training.evaluate import SYNTH_VAL_SEED, evaluation_renderer  # noqa: E402


def mesh_of(rec: FaceReconstructor, image: np.ndarray) -> tuple[FaceReconstruction, object]:
    mask, coarse, detail = (a[0] for a in rec.predict(image[None]))
    face = FaceReconstruction(mask=mask, coarse_depth=coarse, detail=detail, crop_affine=np.eye(2, 3),
                              crop_rgb=image, texture_rgb=cv2.resize(image, (512, 512)),
                              box=np.array([0, 0, 256, 256.0]), landmarks5=np.zeros((5, 2)), score=1.0)
    return face, build_mesh(face)


def coverage(face: FaceReconstruction, mesh) -> tuple[float, int, int, int]:
    """(front coverage inside the outline ring, holes, outline pixels missed, inner open edges) of one mesh."""
    region = face_region(face.mask)
    size = region.shape[0]
    xy = pixel_centres(size)[region.ravel()]
    v, t = np.asarray(mesh.vertices), np.asarray(mesh.triangles)
    top = v[:, 2].max() + 100
    rays = np.column_stack([crop_to_mesh_frame(xy[:, 0], xy[:, 1], np.full(len(xy), top)),
                            np.zeros((len(xy), 2)), -np.ones(len(xy))])
    _, hits = cast_rays(v, t, rays)
    ring = region & ~(cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    uncovered = np.zeros(region.shape, np.uint8)
    uncovered[region] = ~hits["hit"]
    outline_missed = int(uncovered[ring].sum())
    uncovered[ring] = 0
    holes = cv2.connectedComponents(uncovered, connectivity=8)[0] - 1
    edges = trimesh.Trimesh(v, t, process=False).edges_sorted
    open_edges = edges[trimesh.grouping.group_rows(edges, require_count=1)]
    px = mesh_frame_to_crop(v[open_edges].mean(1))
    deep = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    ix = np.clip(np.round(px).astype(int), 0, size - 1)
    inner = int(deep[ix[:, 1], ix[:, 0]].sum())
    return 1 - uncovered.sum() / (region & ~ring).sum(), holes, outline_missed, inner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--textures", type=Path, default=None)
    args = ap.parse_args()
    rec = FaceReconstructor.from_pretrained(args.model, backend="torch")
    renderer = evaluation_renderer(default_data_dir(), args.textures, rec.framing)
    rows = []
    i = 0
    while len(rows) < args.count:
        s = renderer.render(sample_seed(SYNTH_VAL_SEED, i))
        i += 1
        if not 30 <= abs(s.params["yaw"]) <= 70:
            continue
        face, mesh = mesh_of(rec, s.image)
        rows.append((abs(s.params["yaw"]), *coverage(face, mesh)))
    yaw, cov, holes, missed, inner = (np.array(c) for c in zip(*rows))
    print(f"{len(rows)} synthetic faces turned {yaw.min():.0f}-{yaw.max():.0f} degrees (render seed {SYNTH_VAL_SEED})")
    print(f"front coverage: median {np.median(cov):.4f}, worst {cov.min():.4f}; faces fully covered "
          f"{(cov == 1).sum()} of {len(rows)}")
    print(f"holes per face: median {np.median(holes):.0f}, most {holes.max()}; inner open edges per face: "
          f"median {np.median(inner):.0f}, most {inner.max()}; outline pixels missed: median {np.median(missed):.0f}, "
          f"most {missed.max()}")


if __name__ == "__main__":
    main()
