"""`python -m facerecon evaluate`: the shipped model's numbers, honestly measured.

(a) synthetic validation set (render seed 2, never used in training; with --textures, skin from held-out portraits
    only: `python -m facerecon textures ... --split heldout`; --synth-seed renders another set, to choose between
    models without looking at this one): mask IoU, coarse depth MAE in mm (the face model's
    scale is known; also after removing the best-fitting plane of the error, i.e. without head-tilt error; and in
    crop px beside the faces' mean size in the crop, crop px per cm, which a change of the crop's framing moves), the
    relief ratio (spread of the predicted coarse depth around its best-fitting plane over the true one's: below 1
    = flattened, above = exaggerated; median over the faces), the shape correlation (Pearson r of the coarse
    depths once each one's best-fitting plane is removed) with the truth, and the same for MediaPipe Face Mesh run
    on the rendered crops (the pseudo-labels' source, so that the real-photo numbers below can be read against it),
    detail correlation (also with hair strands and glasses rims drawn over the faces, facerecon.data.augment; and per
    quarter of the faces sorted by wrinkle depth, with the predicted / true amplitude; and how alike the detail of
    different faces is, between_faces_r), normal angular error of the final depth;
(b) held-out real portraits (the fixed split of splits.is_held_out): mask IoU against MediaPipe's face
    region, Pearson r between predicted depth and MediaPipe's landmark depth at the 468 landmarks, the coarse
    relief ratio and shape correlation against MediaPipe's rasterised face mesh (the pseudo-label), and
    between_faces_r and mean magnitude of the predicted detail;
(c) the share of photos where a face was found and a mesh written; (d) run time.
Writes report.json, report.md and heldout.png (held-out portraits with their maps and turned mesh) into --out;
keep it outside git: the portraits come from ../shared/data.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..data.augment import add_thin_occluders
from ..data.relief import relabelled
from ..errors import FaceReconError
from ..model.hub import read_config, resolve_weights
from ..predictor import COARSE_SMOOTHING_PX, FaceReconstructor
from ..preprocess.align import FRAMING, Framing, affine_scale, apply_affine
from ..result import FaceReconstruction
from ..surface.export import export_face
from ..surface.raster import sample_bilinear
from ..surface.visualize import figure_row, normals_from_depth

if TYPE_CHECKING:  # the engine (open3d) is imported only where synthetic faces are rendered
    from ..data.synth.render import Renderer

SYNTH_VAL_SEED = 2  # the evaluation set; training renders use other seeds (1, 3 to 8 so far), model selection a third
BETWEEN_FACES_MAX = 100  # faces whose detail maps between_faces_r compares pairwise (4,950 pairs)


def evaluation_renderer(data_dir: Path | None = None, textures: Path | None = None,
                        framing: Framing = FRAMING) -> Renderer:
    """The renderer of the synthetic evaluation faces (textures: the skin set; None = procedural skin), its crops
    framed as the model's (FaceReconstructor.framing)."""
    from ..data.synth.engine import background_photos
    from ..data.synth.face_model import FaceModel, default_data_dir
    from ..data.synth.render import Renderer
    from ..data.synth.textures import SkinTextures

    data_dir = Path(data_dir or default_data_dir())
    return Renderer(FaceModel.load(data_dir / "ict_facekit" / "ict_facekit_head_f16.npz"),
                    background_photos(data_dir, limit=50), skin=SkinTextures.load(textures) if textures else None,
                    framing=framing)


def synthetic_metrics(rec: FaceReconstructor, count: int, data_dir: Path | None,
                      textures: Path | None = None, seed: int = SYNTH_VAL_SEED, band_px: float = 0.0,
                      wrinkles_whole: bool = False) -> dict:
    """band_px, wrinkles_whole: what the model's detail holds (NetworkConfig.detail_band_px,
    detail_wrinkles_whole); the labels are split as it was trained."""
    from ..data.pseudo_labels import canonical_triangles
    from ..data.synth.engine import sample_seed
    from ..data.synth.face_model import default_data_dir

    data_dir = Path(data_dir or default_data_dir())
    renderer = evaluation_renderer(data_dir, textures, rec.framing)
    triangles = canonical_triangles(data_dir)
    per_face = defaultdict(list)  # metric -> one value per face that has it
    predicted_maps, label_maps = [], []  # (detail, where it counts) of the first faces, for between_faces_r
    for i in range(count):
        s = relabelled(renderer.render(sample_seed(seed, i)), band_px, wrinkles_whole)
        mask, coarse, detail = (a[0] for a in rec.predict(s.image[None]))
        m = synthetic_face(rec, s, i, mask > 0.5, coarse, detail, triangles)
        for key, value in m.items():
            per_face[key].append(value)
        if "detail_corr" in m and len(predicted_maps) < BETWEEN_FACES_MAX:
            d = s.valid_detail & (mask > 0.5)
            predicted_maps.append((detail, d))
            label_maps.append((s.detail, d))
    inter, union = sum(per_face["mask_inter"]), sum(per_face["mask_union"])
    return {"samples": count, "mask_iou": inter / max(union, 1), "coarse_mae_mm": float(np.mean(per_face["mae_mm"])),
            "depth_mae_mm": float(np.mean(per_face["depth_mae_mm"])),
            "coarse_mae_without_tilt_mm": float(np.mean(per_face["shape_mae_mm"])),
            "coarse_mae_px": float(np.mean(per_face["mae_px"])),
            "crop_px_per_cm": float(np.mean(per_face["crop_px_per_cm"])),
            "coarse_relief_ratio": float(np.median(per_face["relief"])),
            "coarse_shape_r": mean_or_nan(per_face["shape_r"]),
            "mediapipe_shape_r": mean_or_nan(per_face["mp_shape_r"]),
            "coarse_shape_r_vs_mediapipe": mean_or_nan(per_face["shape_r_vs_mp"]),
            "mediapipe_faces": len(per_face["mp_shape_r"]),
            "detail_corr": mean_or_nan(per_face["detail_corr"]),
            "detail_corr_thin_occluders": mean_or_nan(per_face["detail_corr_occluded"]),
            "normal_error_deg": float(np.mean(per_face["normal_error"])),
            **by_amplitude_quarter(np.array(per_face["detail_corr"]), np.array(per_face["amplitude"])),
            "detail_between_faces_r": between_faces_r(predicted_maps),
            "label_detail_between_faces_r": between_faces_r(label_maps)}


def synthetic_face(rec: FaceReconstructor, s, i: int, pred: np.ndarray, coarse: np.ndarray, detail: np.ndarray,
                   triangles: np.ndarray) -> dict:
    """One rendered face's metrics, each where it can be measured (keys absent otherwise)."""
    m = {"mask_inter": int((pred & s.mask).sum()), "mask_union": int((pred | s.mask).sum())}
    v = s.valid_coarse & pred
    if v.sum() > 100:
        err = (coarse[v] - coarse[v].mean()) - (s.coarse[v] - s.coarse[v].mean())
        m["crop_px_per_cm"] = s.params["crop_px_per_cm"]
        mm_per_px = 10 / m["crop_px_per_cm"]
        m["mae_px"] = float(np.abs(err).mean())
        m["mae_mm"] = m["mae_px"] * mm_per_px
        # the final depth's (coarse + detail): comparable between models whatever their detail band
        final, true_final = coarse + detail, s.coarse + s.detail
        m["depth_mae_mm"] = float(np.abs((final[v] - final[v].mean()) - (true_final[v] - true_final[v].mean()))
                                  .mean()) * mm_per_px
        # the same after removing the best-fitting plane: the error of the shape once a small head-pose (tilt)
        # error is factored out
        rows, cols = np.nonzero(v)
        m["shape_mae_mm"] = float(np.abs(without_plane(cols, rows, err)).mean()) * mm_per_px
        m["relief"] = relief_ratio(cols, rows, coarse[v], s.coarse[v])
        reference = mediapipe_of_crop(rec.detector, s.image, triangles)
        if reference is not None and (v & reference[0]).sum() > 100:
            rows, cols = np.nonzero(v & reference[0])
            ours, truth, theirs = (without_plane(cols, rows, z[rows, cols]) for z in (coarse, s.coarse, reference[1]))
            for key, (a, b) in {"shape_r": (ours, truth), "mp_shape_r": (theirs, truth),
                                "shape_r_vs_mp": (ours, theirs)}.items():
                m[key] = float(np.corrcoef(a, b)[0, 1])
        ang = np.degrees(np.arccos(np.clip((normals_from_depth(coarse + detail) *
                                            normals_from_depth(s.coarse + s.detail)).sum(2), -1, 1)))
        m["normal_error"] = float(ang[v].mean())
    d = s.valid_detail & pred
    if d.sum() > 100 and detail[d].std() > 0:
        m["detail_corr"] = float(np.corrcoef(detail[d], s.detail[d])[0, 1])
        m["amplitude"] = (float(s.detail[d].std()), float(detail[d].std()))
        # the same face with hair strands and glasses rims drawn over it: the wrinkles are still the same
        occluded = add_thin_occluders(np.random.default_rng(i), s.image[None], s.mask[None], 1.0)
        detail_occluded = rec.predict(occluded)[2][0]
        m["detail_corr_occluded"] = float(np.corrcoef(detail_occluded[d], s.detail[d])[0, 1])
    return m


def mean_or_nan(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def without_plane(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """z minus its least-squares plane in (x, y)."""
    plane = np.column_stack([x, y, np.ones(len(x))])
    return z - plane @ np.linalg.lstsq(plane, z, rcond=None)[0]


def mediapipe_of_crop(detector, crop: np.ndarray,
                      triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """MediaPipe Face Mesh of a face crop, rasterised in the crop's frame as the pseudo-labels are: (mask, coarse
    depth), or None when it finds no face. The crop is padded by reflection first: Face Mesh wants room around
    the face."""
    from ..data.pseudo_labels import rasterise_mesh

    pad = crop.shape[0] // 2
    padded = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    faces = detector.detect(padded)  # largest first: the crop's own face
    return rasterise_mesh(faces[0].mesh - [pad, pad, 0], triangles, crop.shape[0]) if faces else None


def relief_ratio(x: np.ndarray, y: np.ndarray, predicted: np.ndarray, reference: np.ndarray) -> float:
    """How deep a face's relief comes out: the spread of the predicted depth around its best-fitting plane over
    the reference's (the plane is the head's tilt, which carries no shape). 1 = true to scale."""
    return float(np.std(without_plane(x, y, predicted)) / np.std(without_plane(x, y, reference)))


def by_amplitude_quarter(corr: np.ndarray, amplitude: np.ndarray) -> dict:
    """Per-face detail correlation and predicted / label amplitude (median), in quarters of the faces sorted by
    the label's amplitude: faces with hardly any wrinkles first, the deepest wrinkles last."""
    if len(corr) < 4:
        return {}
    quarters = np.array_split(np.argsort(amplitude[:, 0]), 4)
    return {"detail_corr_by_label_amplitude_quarter": [float(corr[q].mean()) for q in quarters],
            "detail_amplitude_ratio_by_quarter": [float(np.median(amplitude[q, 1] / amplitude[q, 0]))
                                                  for q in quarters]}


def between_faces_r(maps: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean Pearson r between the detail maps of different faces, each pair over the pixels both masks hold.

    Wrinkles differ from face to face (the synthetic labels: about 0.15); a prediction far above its labels
    paints the same wrinkles on everyone, where wrinkles usually are, whatever the photo shows."""
    rs = []
    for i, (a, mask_a) in enumerate(maps):
        for b, mask_b in maps[i + 1:]:
            both = mask_a & mask_b
            if both.sum() > 100 and a[both].std() > 0 and b[both].std() > 0:
                rs.append(float(np.corrcoef(a[both], b[both])[0, 1]))
    return float(np.mean(rs)) if rs else float("nan")


def real_metrics(rec: FaceReconstructor, photos: list[Path], data_dir: Path | None) -> dict:
    from ..data.pseudo_labels import canonical_triangles

    triangles = canonical_triangles(data_dir)
    per_photo = defaultdict(list)  # metric -> one value per photo that has it
    failures = []
    detail_maps = []  # (detail, mask) of the first faces, for between_faces_r
    rs: dict[str, float] = {}  # depth r per photo, so that the worst ones can be looked at
    with tempfile.TemporaryDirectory() as tmp:
        for path in photos:
            t0 = time.perf_counter()
            try:
                rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
                detections = rec.detector.detect(rgb)
                face = rec.reconstruct(rgb, faces=detections[:1])[0]
                export_face(face, tmp, formats=("glb",), maps=False)
            except Exception as e:  # noqa: BLE001 - every failure is counted and named in the report
                failures.append(f"{path.name}: {type(e).__name__}: {e}")
                continue
            per_photo["ms"].append((time.perf_counter() - t0) * 1e3)
            per_photo["network_ms"].append(face.timings["network"])
            if len(detail_maps) < BETWEEN_FACES_MAX:
                detail_maps.append((face.detail, face.mask > 0.5))
            m = real_face(rgb, face, detections[0], triangles)
            if "depth_r" in m:
                rs[path.name] = m.pop("depth_r")
            for key, value in m.items():
                per_photo[key].append(value)
    return {"photos": len(photos), "mask_iou": float(np.mean(per_photo["iou"])),
            "mask_iou_vs_label_with_forehead": float(np.mean(per_photo["iou_label"])),
            "label_with_forehead_iou_vs_mediapipe": float(np.mean(per_photo["label_vs_region"])),
            "depth_r": float(np.mean(list(rs.values()))),
            "depth_r_min": min(rs.values()), "coarse_relief_ratio_vs_mediapipe": float(np.median(per_photo["relief"])),
            "coarse_shape_r_vs_mediapipe": mean_or_nan(per_photo["shape_r"]),
            "detail_between_faces_r": between_faces_r(detail_maps),
            "detail_mean_abs_px": float(np.mean(per_photo["detail_abs"])),
            "success_rate": 1 - len(failures) / max(len(photos), 1),
            "failures": failures, "median_ms_per_photo": statistics.median(per_photo["ms"]),
            "median_network_ms": statistics.median(per_photo["network_ms"]),
            "depth_r_per_photo": dict(sorted(rs.items(), key=lambda item: item[1]))}


def real_face(rgb: np.ndarray, face: FaceReconstruction, det, triangles: np.ndarray) -> dict:
    """One held-out photo's agreement with MediaPipe Face Mesh (its pseudo-label), each metric where it can be
    measured: mask IoU against Face Mesh's region and against the training label (the region grown to the
    hairline), that label's own IoU with the region, relief and shape against the rasterised mesh, the depth r
    at the landmarks, and the mean magnitude of the detail inside the mask (crop px)."""
    from ..data.pseudo_labels import label_face

    ref = label_face(rgb, det.mesh, face.crop_affine, triangles)
    pred, region = face.mask > 0.5, ref["mediapipe_region"]
    labelled = pred & ~ref["mask_unlabelled"]
    m = {"iou": float((pred & region).sum() / max((pred | region).sum(), 1)),
         "iou_label": float((labelled & ref["mask"]).sum() / max((labelled | ref["mask"]).sum(), 1)),
         "label_vs_region": float(region.sum() / max(ref["mask"].sum(), 1)),  # the label holds the region
         "detail_abs": float(np.abs(face.detail[pred]).mean()) if pred.any() else 0.0}
    rows, cols = np.nonzero(pred & region)
    if len(rows) > 100:
        ours, theirs = face.coarse_depth[rows, cols], ref["coarse"][rows, cols]
        m["relief"] = relief_ratio(cols, rows, ours, theirs)
        m["shape_r"] = float(np.corrcoef(without_plane(cols, rows, ours), without_plane(cols, rows, theirs))[0, 1])
    xy = apply_affine(face.crop_affine, det.mesh[:, :2])
    z_ref = det.mesh[:, 2] * affine_scale(face.crop_affine)
    z_pred = sample_bilinear(face.depth, xy)
    inside = sample_bilinear(face.mask, xy) > 0.5
    if inside.sum() > 50:
        m["depth_r"] = float(np.corrcoef(z_pred[inside], z_ref[inside])[0, 1])
    return m


def held_out_photos(data_dir: Path) -> list[Path]:
    from ..data.splits import photo_files

    frll = data_dir / "frll"
    return photo_files([data_dir / "congress", frll / "neutral_front", frll / "smiling_front"], "heldout")


def evaluate(model: str | None, out: Path, synth_count: int, data_dir: Path | None, backend: str = "torch",
             textures: Path | None = None, flip_average: bool = True, synth_seed: int = SYNTH_VAL_SEED,
             coarse_smoothing_px: float = COARSE_SMOOTHING_PX, mask_edges_guided: bool = True) -> dict:
    from ..data.synth.face_model import default_data_dir

    data_dir = Path(data_dir or default_data_dir())
    rec = FaceReconstructor.from_pretrained(model, backend=backend, device="auto", flip_average=flip_average,
                                            coarse_smoothing_px=coarse_smoothing_px,
                                            mask_edges_guided=mask_edges_guided)
    config = read_config(resolve_weights(model))[0]
    band_px, whole = config.detail_band_px, config.detail_wrinkles_whole
    report = {"model": str(model), "backend": backend, "device": rec.device, "flip_average": flip_average,
              "coarse_smoothing_px": coarse_smoothing_px, "mask_edges_guided": mask_edges_guided,
              "synthetic_seed": synth_seed,
              "detail_band_px": band_px, "detail_wrinkles_whole": whole,
              "synthetic": synthetic_metrics(rec, synth_count, data_dir, textures, synth_seed, band_px, whole),
              "real": real_metrics(rec, held_out_photos(data_dir), data_dir)}
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in held_out_photos(data_dir)[:10]:
        try:
            rows.append(figure_row(rec.reconstruct(path)[0]))
        except FaceReconError:
            continue
    cv2.imwrite(str(out / "heldout.png"), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    return report


TARGETS = {("synthetic", "mask_iou"): (">=", 0.95), ("synthetic", "coarse_mae_mm"): ("<=", 2.0),
           ("synthetic", "detail_corr"): (">=", 0.6), ("real", "mask_iou"): (">=", 0.90),
           ("real", "depth_r"): (">=", 0.90), ("real", "success_rate"): (">=", 1.0)}


def markdown(report: dict) -> str:
    rows = [f"{report['model']}, {report['backend']} on {report['device']}, "
            f"{'with' if report.get('flip_average', False) else 'without'} flip averaging, "
            f"coarse depth smoothed by {report.get('coarse_smoothing_px', 0):g} px, "
            f"mask edges {'guided by the crop' if report.get('mask_edges_guided', False) else 'as upsampled'}, "
            f"synthetic render seed {report.get('synthetic_seed', SYNTH_VAL_SEED)}\n",
            "| set | metric | value | target | met |", "|---|---|---|---|---|"]
    for part in ("synthetic", "real"):
        for key, value in report[part].items():
            if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
                rows.append(f"| {part} | {key} | {' / '.join(f'{v:.2f}' for v in value)} | | |")
                continue
            if isinstance(value, (list, dict, str)):
                continue
            op, target = TARGETS.get((part, key), (None, None))
            met = "" if op is None else ("yes" if (value >= target if op == ">=" else value <= target) else "no")
            rows.append(f"| {part} | {key} | {value:.3f} | {'' if op is None else f'{op} {target}'} | {met} |")
    fails = report["real"]["failures"]
    return "\n".join(rows) + ("\n\nFailures:\n" + "\n".join(f"- {f}" for f in fails) if fails else "") + "\n"
