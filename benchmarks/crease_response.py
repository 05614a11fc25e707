"""Whether the network reads a dark crease on the skin as a groove: a line darkened across the forehead.

Into each crop (the held-out real portraits, aligned as the predictor aligns them for the network, and synthetic
evaluation faces, render seed 2) a horizontal line is drawn across the forehead, at 15% of the face mask's height
from its top and 20 px in from its sides: the pixels are darkened by a share c (5% or 15%) under a Gaussian profile
of sigma 1 px.
It prints the mean change of the predicted detail on the line (crop px; negative = a groove) beside the depth of the
synthetic faces' deepest labelled wrinkle, and how dark the renders' own grooves are by depth: on the synthetic faces
inside the mask less a 6-px rim, the luminance against its Gaussian blur of sigma 3 px, averaged over the pixels
whose wrinkle label, less its own blur, lies in each depth band (how dark a line the renders pair with a groove).
The detail holds only the relief finer than its band (a Gaussian of sigma 2 px: about half of a groove this narrow
lies in the coarse depth), so it also prints the final surface's groove measured as that table measures the
renders' grooves: the change of coarse + detail less its own blur of sigma 3 px, on the line.
The forehead is where the renders' wrinkles mostly lie, and a horizontal line there is where a network that paints
wrinkles where they usually are would put one too; so it also draws creases as training draws them
(facerecon.data.augment.draw_creases, seed = the crop's number: 1-4 arcs 10-60 px long at any angle, anywhere on
the face mask, each darkened by 15% at its middle), read where their groove is over half the deepest one's.
--places also darkens the 15% line shorter, turned and lower (PLACES), each read like the forehead line.
Beside each darkened line, the same readings of a network that gave the line exactly the groove the training renders
pair with its darkness (c / facerecon.data.augment.DARKENING_PER_PX crop px deep under the line's profile, the
model's detail band of it as its labels are split, facerecon.data.relief: all of it where the model keeps wrinkles
whole, NetworkConfig.detail_wrinkles_whole): what the renders teach, read as the
network's outputs are read; and, for the 15% line, how much of that groove a detail of another band would hold.
Real creases look like such lines (less light reaches into them); the engine's wrinkles shade the renders through
the surface normal and, from engine 6 on, darken as occlusion does. As the counter-check, loose hair strands drawn
over the forehead (facerecon.data.augment.draw_strands, seed = the crop's number), which should not sink the
detail: the mean change where a strand changes the photo by over 30 grey levels (summed over R, G, B).

    python benchmarks/crease_response.py [--model weights] [--backend auto] [--count 60] [--places]
                                         [--textures ~/.cache/facerecon/skin_frll_heldout.npz]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facerecon.data.augment import DARKENING_PER_PX, draw_creases, draw_strands  # noqa: E402
from facerecon.data.relief import blur_within  # noqa: E402
from facerecon.data.synth.engine import sample_seed  # noqa: E402
from facerecon.data.synth.face_model import default_data_dir  # noqa: E402
from facerecon.model.backends import BACKENDS  # noqa: E402
from facerecon.model.hub import read_config, resolve_weights  # noqa: E402
from facerecon.predictor import FaceReconstructor  # noqa: E402
from facerecon.training.evaluate import SYNTH_VAL_SEED, evaluation_renderer, held_out_photos  # noqa: E402

DARKENING = (0.05, 0.15)
OTHER_BANDS_PX = (0.0, 2.0, 3.0, 4.0, 6.0, 8.0)  # detail bands to read the renders' groove in; 0 = no split
GROOVE_BLUR_PX = 3.0  # a groove's depth: the relief less its blur of this sigma (crop px)


def groove_depth(relief: np.ndarray) -> np.ndarray:
    """relief (H x W) less its blur of sigma GROOVE_BLUR_PX: how far each pixel lies below its surroundings."""
    return relief - cv2.GaussianBlur(relief, (0, 0), GROOVE_BLUR_PX)


def forehead_line(mask: np.ndarray, height: float = 0.15, length_px: float | None = None,
                  angle_deg: float = 0.0) -> np.ndarray | None:
    """S x S profile in [0, 1] of the line, or None where the mask is too small for one: at `height` of the mask's
    height from its top, centred on the mask's row there, `length_px` long (None: the row less 20 px each side),
    turned by angle_deg (90 = vertical)."""
    rows = np.flatnonzero(mask.any(1))
    if len(rows) < 50:
        return None
    row = rows[0] + int(height * (rows[-1] - rows[0]))
    cols = np.flatnonzero(mask[row])
    x0, x1 = cols[0] + 20, cols[-1] - 20
    if x1 - x0 < 40:
        return None
    half = (x1 - 1 - x0 if length_px is None else length_px) / 2  # by default the pixels x0 .. x1 - 1
    step = half * np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    centre = np.array([(x0 + x1 - 1) / 2, row])
    line = np.zeros(mask.shape, np.float32)
    cv2.line(line, *(tuple(int(v) for v in np.round(centre + k * step)) for k in (-1, 1)), 1.0)
    line = cv2.GaussianBlur(line, (0, 0), 1.0)
    return line / line.max()


def detail_changes(rec: FaceReconstructor, crops: list[tuple[np.ndarray, np.ndarray]],
                   alter) -> tuple[np.ndarray, np.ndarray]:
    """Per crop (rgb uint8, mask bool), where alter(i, rgb, mask) -> (the altered crop, where to read the change)
    says (None skips a crop): the mean change of the predicted detail, and of the final surface (coarse + detail)
    less its blur (groove_depth, as groove_darkness measures a groove's depth)."""
    detail_out, final_out = [], []
    for i, (rgb, mask) in enumerate(crops):
        altered = alter(i, rgb, mask)
        if altered is None:
            continue
        changed, where = altered
        _, coarse, detail = rec.predict(np.stack([rgb, changed]))
        final = (coarse[1] + detail[1]) - (coarse[0] + detail[0])
        detail_out.append(float((detail[1] - detail[0])[where].mean()))
        final_out.append(float(groove_depth(final)[where].mean()))
    return np.array(detail_out), np.array(final_out)


def darkened_line(darkening: float, **place):
    """alter for detail_changes: the forehead line (or another: forehead_line's place arguments) darkened by a
    share; read where the line is over half."""
    def alter(i: int, rgb: np.ndarray, mask: np.ndarray):
        line = forehead_line(mask, **place)
        if line is None:
            return None
        return np.clip(rgb * (1 - darkening * line[..., None]), 0, 255).round().astype(np.uint8), line > 0.5
    return alter


def line_groove(darkening: float):
    """The groove (S x S, crop px) that the renders pair with the forehead line darkened by a share, and where
    darkened_line reads it; None where the mask takes no line."""
    def groove(i: int, rgb: np.ndarray, mask: np.ndarray):
        line = forehead_line(mask)
        return None if line is None else (-darkening / DARKENING_PER_PX * line, line > 0.5)
    return groove


def creases_drawn(darkening: float, i: int, rgb: np.ndarray, mask: np.ndarray):
    """(the crop with training's creases drawn on it, their groove, where it is over half the deepest's), or None
    where the mask takes none."""
    images, groove = draw_creases(np.random.default_rng(i), rgb[None], np.zeros((1, *mask.shape), np.float32),
                                  mask[None], 1.0, (darkening, darkening))
    where = groove[0] < 0.5 * groove[0].min()
    return None if where.sum() < 10 else (images[0], groove[0], where)


def drawn_creases(darkening: float):
    """alter for detail_changes: creases_drawn's crop, read where its groove is over half the deepest's."""
    def alter(i: int, rgb: np.ndarray, mask: np.ndarray):
        drawn = creases_drawn(darkening, i, rgb, mask)
        return None if drawn is None else (drawn[0], drawn[2])
    return alter


def drawn_groove(darkening: float):
    """The groove creases_drawn pairs with its creases, and where drawn_creases reads it."""
    def groove(i: int, rgb: np.ndarray, mask: np.ndarray):
        drawn = creases_drawn(darkening, i, rgb, mask)
        return None if drawn is None else drawn[1:]
    return groove


def renders_pairing(crops: list[tuple[np.ndarray, np.ndarray]], grooves,
                    band_px: float) -> tuple[np.ndarray, np.ndarray]:
    """detail_changes' two readings of the groove that the renders pair with a darkening (DARKENING_PER_PX), per
    crop (rgb, mask) where grooves(i, rgb, mask) -> (the groove, where to read it) gives one: its detail band (the
    groove less its blur of sigma band_px within the mask, as relief.split_relief splits the labels; all of it at
    band_px 0) and the groove_depth of the groove."""
    detail_out, final_out = [], []
    for i, (rgb, mask) in enumerate(crops):
        paired = grooves(i, rgb, mask)
        if paired is None:
            continue
        groove, where = paired
        fine = groove - blur_within(groove, mask, band_px) if band_px > 0 else groove
        detail_out.append(float(fine[where].mean()))
        final_out.append(float(groove_depth(groove)[where].mean()))
    return np.array(detail_out), np.array(final_out)


def strands(i: int, rgb: np.ndarray, mask: np.ndarray):
    """alter for detail_changes: hair strands drawn over the forehead (seed i); read under them."""
    covered = rgb.copy()
    draw_strands(np.random.default_rng(i), covered, mask)
    under = (np.abs(covered.astype(int) - rgb).sum(-1) > 30) & mask
    return None if under.sum() < 20 else (covered, under)


# --places: the 15% line elsewhere (forehead_line's arguments), where the renders' wrinkles seldom lie
PLACES = (("across the forehead, 100 px", {"length_px": 100}), ("across the forehead, 40 px", {"length_px": 40}),
          ("vertical on the forehead, 40 px", {"height": 0.18, "length_px": 40, "angle_deg": 90}),
          ("at 45 degrees on the forehead, 40 px", {"length_px": 40, "angle_deg": 45}),
          ("across a cheek (60% down the mask), 40 px", {"height": 0.6, "length_px": 40}))
DEPTH_BANDS = ((0.05, 0.15), (0.15, 0.3), (0.3, 0.5), (0.5, 1.0))  # groove depths, crop px


def groove_darkness(samples) -> list[tuple[float, float]]:
    """Per DEPTH_BANDS band: (its share of the skin's pixels, the mean luminance change there, as a share)."""
    depth, darkness = [], []
    for s in samples:
        inside = cv2.erode((s.mask == 1).astype(np.uint8), np.ones((13, 13), np.uint8)) > 0
        lum = s.image.astype(np.float32).mean(-1) + 1
        label = s.detail.astype(np.float32)
        depth.append(-groove_depth(label)[inside])
        darkness.append((lum / cv2.GaussianBlur(lum, (0, 0), GROOVE_BLUR_PX) - 1)[inside])
    depth, darkness = np.concatenate(depth), np.concatenate(darkness)
    bands = [(depth >= lo) & (depth < hi) for lo, hi in DEPTH_BANDS]
    return [(b.mean(), float(darkness[b].mean()) if b.any() else float("nan")) for b in bands]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="facerecon/weights")
    parser.add_argument("--backend", default="auto", choices=BACKENDS,
                        help="auto (what users get) is int8 for a model with an int8 file, else float onnx: compare "
                             "models with one backend, e.g. torch")
    parser.add_argument("--count", type=int, default=60, help="synthetic faces")
    parser.add_argument("--textures", type=Path, default=Path.home() / ".cache/facerecon/skin_frll_heldout.npz")
    parser.add_argument("--places", action="store_true",
                        help="also the 15%% line at other places and angles (PLACES; the renders' groove for each is "
                             "the 15%% line's)")
    args = parser.parse_args()
    data = default_data_dir()
    rec = FaceReconstructor.from_pretrained(args.model, backend=args.backend)
    real = []
    for path in held_out_photos(data):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        detections = rec.detector.detect(rgb)
        if detections:  # the network's own crop (the maps it returns are warped into another frame)
            crop = rec.crop(rgb, detections[:1]).rgb
            real.append((crop[0], rec.predict(crop)[0][0] > 0.5))
    renderer = evaluation_renderer(data, args.textures if args.textures.exists() else None, rec.framing)
    samples = [renderer.render(sample_seed(SYNTH_VAL_SEED, i)) for i in range(args.count)]
    synthetic = [(s.image, s.mask) for s in samples]
    deepest = np.median([-s.detail.min() for s in samples])
    print(f"{args.model}: {len(real)} held-out real portraits, {len(synthetic)} synthetic evaluation faces; "
          f"the synthetic faces' deepest labelled wrinkle: median {deepest:.2f} crop px")
    print("| line darkened by | real: detail change on the line (px) | synthetic | real: the final surface's groove "
          "| synthetic |\n|---|---|---|---|---|")
    config = read_config(resolve_weights(args.model))[0]
    band_px = 0.0 if config.detail_wrinkles_whole else config.detail_band_px  # the groove is a wrinkle: whole or split

    def row(label: str, readings) -> None:
        (real_detail, real_final), (synth_detail, synth_final) = (readings(crops) for crops in (real, synthetic))
        cells = [f"{d.mean():+.3f} (median {np.median(d):+.3f})"
                 for d in (real_detail, synth_detail, real_final, synth_final)]
        print(f"| {label} | {' | '.join(cells)} |")

    for c in DARKENING:
        row(f"{c:.0%}", lambda crops, c=c: detail_changes(rec, crops, darkened_line(c)))
        row(f"{c:.0%}: the renders' groove for it (read alike)",
            lambda crops, c=c: renders_pairing(crops, line_groove(c), band_px))
    c = DARKENING[-1]
    row(f"creases drawn as in training, {c:.0%}", lambda crops: detail_changes(rec, crops, drawn_creases(c)))
    row(f"creases drawn as in training, {c:.0%}: their groove (read alike)",
        lambda crops: renders_pairing(crops, drawn_groove(c), band_px))
    row("hair strands drawn over the forehead (under them)", lambda crops: detail_changes(rec, crops, strands))
    for label, place in PLACES if args.places else ():
        row(f"{c:.0%}, {label}", lambda crops, place=place: detail_changes(rec, crops, darkened_line(c, **place)))
    shares = ", ".join(f"{f'{b:g} px' if b else 'none'}: {renders_pairing(real, line_groove(c), b)[0].mean():+.3f}"
                       for b in OTHER_BANDS_PX)
    print(f"\nThe renders' groove for the {c:.0%} line on the real crops, read on the detail of another band "
          f"(sigma, crop px): {shares}")
    print("\n| the renders' grooves, depth (crop px) | share of the skin | luminance against the surroundings |")
    print("|---|---|---|")
    for (lo, hi), (share, dark) in zip(DEPTH_BANDS, groove_darkness(samples)):
        print(f"| {lo}-{hi} | {share:.2%} | {dark:+.1%} |")


if __name__ == "__main__":
    main()
