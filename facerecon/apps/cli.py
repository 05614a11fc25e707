"""Command line: python -m facerecon {predict, figure, export-onnx, quantize, evaluate, synth, textures, pseudo-label,
train}."""
from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from pathlib import Path

log = logging.getLogger("facerecon")


def detail_strength_arg(text: str) -> float:
    from ..surface.mesh import check_detail_strength

    try:
        return check_detail_strength(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def triangles_arg(text: str) -> int:
    from ..surface.mesh import check_triangle_count

    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    try:
        return check_triangle_count(count)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def output_name(path: str, used: set[str]) -> str:
    """A folder name for an input's results: its stem with anything but letters, digits, '.', '-' and '_' replaced
    and leading dots dropped (an input named '...jpg' must not write to OUT/..), made unique among `used`."""
    stem = re.sub(r"[^\w.-]", "_", Path(path).stem).lstrip(".") or "image"
    name, k = stem, 2
    while name in used:
        name, k = f"{stem}_{k}", k + 1
    used.add(name)
    return name


def _predict(args: argparse.Namespace) -> int:
    from ..errors import FaceReconError
    from ..predictor import FaceReconstructor
    from ..surface.export import check_formats, export_face

    formats = check_formats(f for f in args.formats.split(",") if f)
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; give a folder (it is created when missing)")
    reconstructor = FaceReconstructor.from_pretrained(args.model, args.revision, backend=args.backend,
                                                      device=args.device, flip_average=args.flip_average)
    log.info("backend %s on %s", reconstructor.backend.name, reconstructor.device)
    failures, used = 0, set()
    for path in args.images:
        name = output_name(path, used)
        try:
            faces = reconstructor.reconstruct(path)
        except FaceReconError as e:
            message = str(e)
            print(message if message.startswith(str(path)) else f"{path}: {message}", file=sys.stderr)
            failures += 1
            continue
        for i, face in enumerate(faces):
            t0 = time.perf_counter()
            out_dir = args.out / name / f"face_{i}"
            try:
                # maps.npz uncompressed: on a local disk 0.6 MB more costs less than deflating it (63 ms a face)
                files = export_face(face, out_dir, formats, args.detail_strength, args.decimate, compress_maps=False)
            except OSError as e:  # a full disk, no permission: this face is lost, the other inputs go on
                print(f"{path} face {i}: could not write {e.filename or out_dir}: {e.strerror or e}", file=sys.stderr)
                failures += 1
                continue
            except FaceReconError as e:  # nothing to mesh
                print(f"{path} face {i}: {e}", file=sys.stderr)
                failures += 1
                continue
            face.timings["mesh_and_export"] = (time.perf_counter() - t0) * 1e3
            box = ", ".join(f"{v:.0f}" for v in face.box)
            print(f"{path} face {i}: box ({box}), {len(files)} files -> {out_dir} "
                  f"(network {face.timings['network']:.0f} ms, mesh+export {face.timings['mesh_and_export']:.0f} ms)")
            if face.warnings:
                print(f"{path} face {i}: warning: {' '.join(face.warnings)}", file=sys.stderr)
    return 1 if failures else 0


def _figure(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from ..predictor import FaceReconstructor
    from ..surface.visualize import FIGURE_COLUMNS, figure_row

    reconstructor = FaceReconstructor.from_pretrained(args.model, args.revision, flip_average=args.flip_average)
    rows = [figure_row(face, args.layout) for path in args.images
            for face in reconstructor.reconstruct(path)[: args.max_faces]]
    cv2.imwrite(str(args.out), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}: {FIGURE_COLUMNS[args.layout]}")
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    from ..model.backends import export_onnx
    from ..model.hub import load_pretrained

    path = export_onnx(load_pretrained(args.model, args.revision), args.out)
    print(f"wrote {path}")
    return 0


def _quantize(args: argparse.Namespace) -> int:
    import numpy as np

    from ..data.shards import list_shards, shard_framing
    from ..model.backends import float_onnx
    from ..model.hub import INT8_NAME, WEIGHTS_NAME, read_config, resolve_weights
    from ..model.quantize import quantize_int8
    from ..preprocess.align import Framing

    if args.count < 1:
        raise ValueError(f"--count must be at least 1, not {args.count}")
    folder = resolve_weights(args.model, args.revision)
    framing = Framing.from_list(read_config(folder)[0].crop_framing)
    crops = []
    for shard_dir in args.shards:  # the same number of crops from each folder: renders and real portraits alike
        shards = list_shards(shard_dir)
        if not shards:
            raise ValueError(f"--shards {shard_dir}: no shard_*.npz files there")
        framed = shard_framing(shards[0])
        if framed != framing:  # the activations' ranges are calibrated on crops as the model sees them
            raise ValueError(f"--shards {shard_dir}: framed {framed}, the model {framing}")
        images = []
        for path in shards:  # enough shards to draw from
            with np.load(path) as shard:
                images.append(shard["image"])
            if sum(map(len, images)) >= 4 * args.count:
                break
        images = np.concatenate(images)
        crops.append(images[np.random.default_rng(0).choice(len(images), min(args.count, len(images)), replace=False)])
    out = args.out or folder / INT8_NAME
    quantize_int8(float_onnx(folder), out, np.concatenate(crops), folder / WEIGHTS_NAME)
    print(f"wrote {out} (calibrated on {sum(len(c) for c in crops)} crops)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ..predictor import COARSE_SMOOTHING_PX
    from ..training.evaluate import evaluate

    smoothing = COARSE_SMOOTHING_PX if args.coarse_smoothing is None else args.coarse_smoothing
    if smoothing < 0:
        print("error: --coarse-smoothing must be >= 0", file=sys.stderr)
        return 2
    report = evaluate(args.model, args.out, args.synth_count, args.data, args.backend, args.textures,
                      args.flip_average, args.synth_seed, smoothing, args.mask_edges_guided)
    print((args.out / "report.md").read_text())
    return 0 if not report["real"]["failures"] else 1


def _synth(args: argparse.Namespace) -> int:
    from ..data.shards import list_shards
    from ..data.synth.engine import preview_grid, synthesise
    from ..preprocess.align import FRAMINGS

    rate = synthesise(args.out, args.count, args.seed, args.workers, args.data, textures=args.textures,
                      framing=FRAMINGS[args.framing])
    print(f"{rate:.1f} samples/s")
    if args.preview:
        print(f"preview: {preview_grid(list_shards(args.out)[0], args.preview)}")
    return 0


def _pseudo_label(args: argparse.Namespace) -> int:
    from ..data.pseudo_labels import pseudo_label_photos
    from ..preprocess.align import FRAMINGS

    n = pseudo_label_photos(args.photos, args.out, args.split, framing=FRAMINGS[args.framing])
    print(f"{n} photos labelled into {args.out}")
    return 0


def _textures(args: argparse.Namespace) -> int:
    from ..data.synth.face_model import default_data_dir
    from ..data.synth.textures import build_skin_textures

    skin = build_skin_textures(args.photos, args.data or default_data_dir(), args.split)
    skin.save(args.out)
    print(f"{len(skin.images)} portrait textures -> {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ..training import train

    return train.main(args.overrides)


def _flip_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-flip-average", dest="flip_average", action="store_false",
                   help="run the network once per face, not also on the mirrored crop (half the network time)")


def _framing_arg(p: argparse.ArgumentParser) -> None:
    from ..preprocess.align import FRAMING, FRAMINGS

    default = next(name for name, framing in FRAMINGS.items() if framing == FRAMING)
    p.add_argument("--framing", choices=sorted(FRAMINGS), default=default,
                   help=f"how each crop is fitted to its five landmarks (facerecon.preprocess.align; default "
                        f"{default}: the bundled weights'); a network is trained on one framing and run with it")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="local folder or hub repo id (default: the published model, "
                                                 "falling back to the bundled weights/)")
    p.add_argument("--revision", default=None, help="hub branch, tag or commit")


def build_parser() -> argparse.ArgumentParser:
    from ..model.backends import BACKENDS
    from ..model.hub import INT8_NAME

    p = argparse.ArgumentParser(prog="facerecon", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help="also log the backend and the hub's fallback")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("predict", parents=[common], help="reconstruct every face of each photo: maps and meshes")
    s.add_argument("images", nargs="+", help="image files")
    s.add_argument("--out", type=Path, required=True, help="output folder: OUT/<image stem>/face_<k>/")
    s.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto: the int8 network in onnxruntime on a CPU (the float one where the model has none), "
                        "torch on a CUDA GPU")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    s.add_argument("--formats", default="glb,obj,ply,stl", help="comma-separated mesh formats")
    s.add_argument("--detail-strength", type=detail_strength_arg, default=1.0,
                   help="0 = coarse only, 1 = as predicted, up to 5")
    s.add_argument("--decimate", type=triangles_arg, default=None, help="target triangle count (>= 100)")
    _flip_arg(s)
    _model_args(s)
    s.set_defaults(func=_predict)

    s = sub.add_parser("figure", parents=[common], help="one picture of the maps and the turned mesh of every face")
    s.add_argument("images", nargs="+")
    s.add_argument("--out", type=Path, required=True, help="PNG file")
    s.add_argument("--max-faces", type=int, default=2, help="faces per image")
    s.add_argument("--layout", choices=("maps", "detail"), default="maps",
                   help="maps: crop, mask, depth, detail, mesh front and turned; detail: crop, coarse and final "
                        "shading, detail, mesh turned at detail strength 0 and 1")
    _flip_arg(s)
    _model_args(s)
    s.set_defaults(func=_figure)

    s = sub.add_parser("export-onnx", parents=[common], help="export the network to ONNX (dynamic batch, 256x256)")
    s.add_argument("--out", type=Path, default=Path("model.onnx"))
    _model_args(s)
    s.set_defaults(func=_export_onnx)

    s = sub.add_parser("quantize", parents=[common],
                       help="make the int8 network (backend onnx-int8), calibrated on the crops of training shards")
    s.add_argument("--shards", type=Path, nargs="+", required=True,
                   help="shard folders (python -m facerecon synth / pseudo-label): renders and real portraits")
    s.add_argument("--count", type=int, default=48, help="crops from each folder")
    s.add_argument("--out", type=Path, default=None, help=f"default: the model folder's {INT8_NAME}")
    _model_args(s)
    s.set_defaults(func=_quantize)

    s = sub.add_parser("evaluate", parents=[common], help="measure the model on synthetic and held-out real faces")
    s.add_argument("--out", type=Path, default=Path("reports/eval"))
    s.add_argument("--synth-count", type=int, default=300)
    s.add_argument("--synth-seed", type=int, default=2,
                   help="render seed of the synthetic set: 2 = the evaluation set; another unused seed (and the "
                        "training skins) for choosing between models without looking at it")
    s.add_argument("--textures", type=Path, default=None, help="held-out portrait textures for the synthetic set")
    s.add_argument("--backend", choices=BACKENDS, default="torch")
    s.add_argument("--data", type=Path, default=None, help="the shared data folder (default ../shared/data)")
    s.add_argument("--coarse-smoothing", type=float, default=None,
                   help="sigma in crop px of the Gaussian on the coarse depth (default: the predictor's, "
                        "facerecon.predictor.COARSE_SMOOTHING_PX; 0 = none)")
    s.add_argument("--no-mask-guide", dest="mask_edges_guided", action="store_false",
                   help="the network's mask as upsampled, its edges not guided by the crop's "
                        "(facerecon.predictor.MASK_GUIDE_RADIUS_PX)")
    _flip_arg(s)
    _model_args(s)
    s.set_defaults(func=_evaluate)

    s = sub.add_parser("synth", parents=[common], help="render synthetic training shards")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--data", type=Path, default=None, help="the shared data folder (default ../shared/data)")
    s.add_argument("--preview", type=Path, default=None, help="write image | mask | depth | detail of a few samples")
    s.add_argument("--textures", type=Path, default=None, help="portrait skin textures (python -m facerecon textures)")
    _framing_arg(s)
    s.set_defaults(func=_synth)

    s = sub.add_parser("pseudo-label", parents=[common],
                       help="label real photos with MediaPipe Face Mesh (mask and coarse depth)")
    s.add_argument("photos", type=Path, nargs="+", help="photos or folders of photos")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--split", choices=["train", "heldout", "all"], default="all",
                   help="train: leave out the fixed evaluation photos; heldout: only those")
    _framing_arg(s)
    s.set_defaults(func=_pseudo_label)

    s = sub.add_parser("textures", parents=[common], help="unwrap portraits into skin textures for the synthetic faces")
    s.add_argument("photos", type=Path, nargs="+", help="photos or folders of photos")
    s.add_argument("--out", type=Path, required=True, help=".npz file")
    s.add_argument("--split", choices=["train", "heldout", "all"], default="train")
    s.add_argument("--data", type=Path, default=None, help="the shared data folder (default ../shared/data)")
    s.set_defaults(func=_textures)

    s = sub.add_parser("train", parents=[common],
                       help="train the network: @configs/RECIPE and key=value settings (docs/training.md)")
    s.add_argument("overrides", nargs="*")
    s.set_defaults(func=_train)
    return p


def main(argv: list[str] | None = None) -> int:
    from ..errors import FaceReconError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.func(args)
    except (FaceReconError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
