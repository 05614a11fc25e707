"""The real photos' detail signal: the shading loss and the skin it reads (pseudo_labels.shading_region)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from facerecon.data.augment import add_thin_occluders
from facerecon.data.pseudo_labels import NOT_SKIN_PARTS, shading_region
from facerecon.data.shards import shard_path, write_shard
from facerecon.training.losses import GAMMA, cavity, lighting_basis, shading_loss, surface_normals
from facerecon.training.train import ShardData

S = 128
yy, xx = torch.meshgrid(torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32), indexing="ij")
COARSE = (40 * torch.exp(-((xx - 64) ** 2 + (yy - 64) ** 2) / (2 * 40 ** 2)))[None, None]
# creases 0.5 px deep across the forehead, and a bump on a cheek
GROOVES = (-0.5 * torch.cos(xx / 2) ** 8 * torch.exp(-((yy - 40) ** 2) / 100))[None, None]
RELIEF = GROOVES + 0.6 * torch.exp(-((xx - 90) ** 2 + (yy - 85) ** 2) / 8)[None, None]
LIGHT = torch.tensor([0.45, 0.35, 0.25, 0.55, 0.0, 0.05, 0.0, 0.02, 0.03])  # ambient plus a key light up right


FRONT_LIGHT = torch.tensor([0.5, 0.0, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0])  # ambient plus a light from the camera


def photo(depth: torch.Tensor, spot: bool = False, light: torch.Tensor = LIGHT,
          occlusion: float = 0.0) -> torch.Tensor:
    """A Lambertian photo (sRGB, 1 x 3 x S x S) of depth under `light`, with a smooth albedo gradient; spot: plus a
    reddish patch that darkens the skin, as a mole or a blush does, on the flat-lit side; occlusion: the creases
    darkened as the renderer darkens them (exp(-occlusion * cavity) of the relief over COARSE)."""
    shading = torch.einsum("bihw,i->bhw", lighting_basis(surface_normals(depth)), light)[:, None].clamp_min(0)
    relief = depth - COARSE
    shading = shading * torch.exp(-occlusion * cavity(relief, torch.ones_like(relief)))
    albedo = torch.tensor([0.75, 0.55, 0.45]).view(1, 3, 1, 1) * (0.9 + 0.1 * torch.sin(xx / 40))
    if spot:
        patch = torch.exp(-((xx - 40) ** 2 + (yy - 80) ** 2) / 6)
        albedo = albedo * (1 - patch * torch.tensor([0.1, 0.45, 0.45]).view(1, 3, 1, 1))
    return (albedo * shading).clamp(0, 1) ** (1 / GAMMA)


def loss(image: torch.Tensor, depth: torch.Tensor, **kw) -> float:
    return shading_loss(image, COARSE, depth, torch.ones(1, 1, S, S), 2.0, **kw).item()


def test_the_true_relief_explains_the_photo_best():
    image = photo(COARSE + RELIEF)
    scales = [-1.0, 0.0, 0.5, 1.0, 1.5, 2.0]
    losses = [loss(image, COARSE + k * RELIEF) for k in scales]
    assert scales[int(np.argmin(losses))] == 1.0  # not 0 (no detail), not -1 (the relief inside out)
    assert losses[3] < 0.5 * losses[1]


def test_with_occlusion_a_dark_crease_reads_as_a_groove_not_a_ridge():
    # a light from the camera tilts a groove's walls and a ridge's alike away from it: the creases' darkness is
    # mostly the light they lose, which only the loss that models it explains
    image = photo(COARSE + GROOVES, light=FRONT_LIGHT, occlusion=0.65)
    scales = [-1.0, 0.0, 0.5, 1.0, 1.5]  # -1: the creases as ridges
    plain = [loss(image, COARSE + k * GROOVES) for k in scales]
    occluded = [loss(image, COARSE + k * GROOVES, occlusion=0.65) for k in scales]
    assert scales[int(np.argmin(occluded))] == 1.0
    assert occluded[0] > 20 * occluded[3] and occluded[3] < 0.05 * occluded[1]
    assert plain[3] > 0.9 * plain[1]  # without it, the true creases explain the photo hardly better than none


@pytest.mark.parametrize("occlusion", [0.0, 0.65])
def test_the_loss_trains_the_relief_not_the_coarse_depth(occlusion):
    coarse = COARSE.clone().requires_grad_()
    detail = torch.zeros_like(COARSE, requires_grad=True)
    shading_loss(photo(COARSE + RELIEF, occlusion=occlusion), coarse, coarse.detach() + detail,
                 torch.ones(1, 1, S, S), 2.0, occlusion=occlusion).backward()
    assert coarse.grad is None or not coarse.grad.any()
    assert detail.grad.abs().sum() > 0


def test_a_colour_spot_does_not_ask_for_a_bump():
    flat_photo, spotted = photo(COARSE), photo(COARSE, spot=True)
    # without the chromaticity weights the spot is read as a dent: the flat depth leaves it unexplained
    unweighted = loss(spotted, COARSE, chroma_tolerance=1e9) - loss(flat_photo, COARSE, chroma_tolerance=1e9)
    assert unweighted > 0.01
    assert loss(spotted, COARSE) - loss(flat_photo, COARSE) < 0.05 * unweighted


def test_the_shading_region_leaves_out_the_eyes_and_hair_but_keeps_a_crease():
    rng = np.random.default_rng(0)
    image = np.full((S, S, 3), (200, 150, 125), np.float32) + rng.normal(0, 2, (S, S, 3))
    image[70:73, 20:110] -= 20  # a crease across the face, 10 % darker: a line of rough texture
    image[100:, 70:] += rng.normal(0, 40, (28, 58, 1))  # a beard: an area of it
    verts = np.zeros((468, 2))  # the other parts in the corner, outside the region
    eye, _ = NOT_SKIN_PARTS["right_eye"]
    verts[list(eye)] = rng.uniform((30, 40), (50, 50), (len(eye), 2))  # the right eye within x 30-50, y 40-50
    region = np.zeros((S, S), bool)
    region[10:, 10:118] = True
    skin = shading_region(np.clip(image, 0, 255).astype(np.uint8), region, verts)
    assert not skin[42:48, 32:48].any()  # the eye
    assert not skin[105:, 80:].any()  # the beard
    assert skin[67:76, 60:65].all()  # the crease, and the cheek around it
    assert not skin[:16].any() and not skin[:, :16].any()  # the rim


def test_drawn_strands_and_rims_are_not_read_as_skin(tmp_path):
    mask = np.zeros((64, 64), bool)
    mask[8:56, 12:52] = True
    write_shard(shard_path(tmp_path, 0), [{"image": np.full((64, 64, 3), 180, np.uint8), "mask": mask,
                                           "coarse": np.zeros((64, 64), np.float32),
                                           "detail": np.zeros((64, 64), np.float32), "valid_coarse": mask,
                                           "valid_detail": np.zeros((64, 64), bool), "valid_shading": mask,
                                           "params": {}}], "test shading")
    data = ShardData([str(tmp_path)], 0.0)
    plain = data.batch(np.array([0]), 64)
    assert plain["valid_shading"][0, 0].bool().numpy().tolist() == mask.tolist()
    rng_seed, n = 1, 4
    drawn = data.batch(np.zeros(n, int), 64, np.random.default_rng(rng_seed), thin_occluders=1.0)
    # the same strands and rims again (the batch draws them first from its rng): the skin is what they left alone
    images = add_thin_occluders(np.random.default_rng(rng_seed), data.arrays["image"][np.zeros(n, int)],
                                np.repeat(mask[None], n, 0), 1.0)
    untouched = mask & (images == 180).all(-1)
    assert (untouched.sum((1, 2)) < mask.sum()).all()  # every crop has something drawn over its skin
    assert drawn["valid_shading"].sum((1, 2, 3)).tolist() == untouched.sum((1, 2)).tolist()  # flips keep the sums


@pytest.mark.parametrize("k", [0.0, 1.0])
def test_the_loss_is_zero_without_skin(k):
    image = photo(COARSE + RELIEF)
    assert shading_loss(image, COARSE, COARSE + k * RELIEF, torch.zeros(1, 1, S, S), 2.0).item() == 0.0
