"""FaceReconstruction: what the library gives back for one face. numpy only, so that results, meshes and files
can be handled without torch (docs/representation.md defines the maps and the crop frame)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np


@dataclass
class FaceReconstruction:
    """One face, all maps S x S in the crop frame (docs/representation.md)."""

    mask: np.ndarray  # float32 probability that the pixel is face
    coarse_depth: np.ndarray  # float32 crop pixels, larger = nearer, zero mean over mask > 0.5
    detail: np.ndarray  # float32 crop pixels, added to the coarse depth
    crop_affine: np.ndarray  # 2x3 image -> crop ([u, v] = A @ [x, y, 1], pixel centres at integers; align.MAP_FRAMING)
    crop_rgb: np.ndarray  # S x S x 3 uint8, the photo in the crop
    texture_rgb: np.ndarray  # (TEXTURE_SCALE*S)^2 x 3 uint8, the same crop sampled finer from the photo
    box: np.ndarray  # x0, y0, x1, y1 in image pixels
    landmarks5: np.ndarray  # 5 x 2 image pixels
    score: float
    turn: int = 0  # degrees (0, 90, 180, 270) the face was turned in the photo; the crop and maps are upright
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage
    warnings: list[str] = field(default_factory=list)  # what will make this result poor, plain words (checks.py)

    @property
    def depth(self) -> np.ndarray:
        """Final depth = coarse + detail."""
        return self.coarse_depth + self.detail

    def save(self, path: Path, compress: bool = True) -> Path:
        """All arrays (and depth = coarse + detail) in one .npz; FaceReconstruction.load reads it back.
        compress=False writes 25% more bytes about 40x faster (for files that only the server reads back)."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("timings", "warnings")}
        (np.savez_compressed if compress else np.savez)(path, depth=self.depth, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> FaceReconstruction:
        with np.load(path, allow_pickle=False) as z:
            return cls(**{f.name: z[f.name] for f in fields(cls)
                          if f.name not in ("timings", "warnings", "score", "turn")},
                       score=float(z["score"]), turn=int(z["turn"]) if "turn" in z.files else 0)

    def mesh(self, detail_strength: float = 1.0, **options):
        """The face as a FaceMesh (facerecon.surface.mesh.build_mesh; options are its arguments)."""
        from .surface.mesh import build_mesh

        return build_mesh(self, detail_strength=detail_strength, **options)

    def export(self, out_dir: str | Path, formats=None, detail_strength: float = 1.0,
               decimate: int | None = None) -> dict[str, Path]:
        """Maps and meshes as files in out_dir (facerecon.surface.export.export_face)."""
        from .surface.export import export_face

        return export_face(self, out_dir, formats=formats, detail_strength=detail_strength, decimate=decimate)
