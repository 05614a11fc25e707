"""Training losses: BCE for the mask, smooth-L1 for coarse depth and detail where the ground truth is valid."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..data.relief import CAVITY_PX


def mask_loss(logits: torch.Tensor, target: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged over the labelled pixels. logits, target (in [0, 1]), labelled (0 / 1):
    B x 1 x H x W."""
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per_pixel * labelled).sum() / labelled.sum().clamp_min(1.0)


def masked_smooth_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, beta: float = 1.0,
                     scale: float = 1.0, shift_invariant: bool = False) -> torch.Tensor:
    """Smooth-L1 averaged over pixels where valid > 0 (valid: B x 1 x H x W weights); 0 when nothing is valid.

    `scale` divides prediction and target first, so beta acts on O(1) numbers whatever the map's units.
    `shift_invariant` first removes each sample's mean difference over its valid pixels: the depth offset of a
    single photo is unknowable (coarse depth is defined up to it, docs/representation.md).
    """
    if shift_invariant:
        w = (valid > 0).float()
        offset = ((pred - target) * w).sum((1, 2, 3), keepdim=True) / w.sum((1, 2, 3), keepdim=True).clamp_min(1)
        pred = pred - offset
    per_pixel = F.smooth_l1_loss(pred / scale, target / scale, reduction="none", beta=beta)
    return (per_pixel * valid).sum() / valid.sum().clamp_min(1.0)


# sRGB's transfer curve approximated by a power: shading multiplies linear light, not the encoded values
GAMMA = 2.2
LUMINANCE = (0.2126, 0.7152, 0.0722)  # Rec. 709 weights of linear R, G, B


def surface_normals(depth: torch.Tensor) -> torch.Tensor:
    """Unit normals B x 3 x H x W of a depth map B x 1 x H x W in crop px (larger = nearer, rows grow downwards):
    (-dd/du, dd/dv, 1) normalised, central differences, edges replicated."""
    padded = F.pad(depth, (1, 1, 1, 1), mode="replicate")
    du = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    dv = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    return F.normalize(torch.cat([-du, dv, torch.ones_like(du)], 1), dim=1)


def lighting_basis(normals: torch.Tensor) -> torch.Tensor:
    """The 9 real spherical harmonics up to order 2 (their constants left to the fitted lighting): a Lambertian
    surface under any distant light shades as a linear combination of these, within a few percent. B x 9 x H x W."""
    x, y, z = normals.unbind(1)
    return torch.stack([torch.ones_like(x), x, y, z, x * y, x * z, y * z, x * x - y * y, 3 * z * z - 1], 1)


def blur_within(x: torch.Tensor, inside: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Gaussian blur of x (B x C x H x W) normalised over inside (B x 1 x H x W, 0 / 1): the torch twin of
    facerecon.data.relief.blur_within, differentiable, for the loss."""
    radius = int(3 * sigma_px + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma_px) ** 2)
    k = k / k.sum()

    def blur(v: torch.Tensor) -> torch.Tensor:
        c = v.shape[1]
        v = F.conv2d(F.pad(v, (radius, radius, 0, 0)), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(F.pad(v, (0, 0, radius, radius)), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)

    return blur(x * inside) / blur(inside).clamp_min(1e-6)


def cavity(relief: torch.Tensor, inside: torch.Tensor, sigma_px: float = CAVITY_PX) -> torch.Tensor:
    """How far relief (B x 1 x H x W, crop px) lies below its blur within inside, 0 where it does not: the torch
    twin of facerecon.data.relief.cavity, differentiable, for the loss."""
    return (blur_within(relief, inside, sigma_px) - relief).clamp_min(0)


def shading_loss(image: torch.Tensor, coarse: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor,
                 sigma_px: float, chroma_tolerance: float = 0.01, occlusion: float = 0.0,
                 cavity_px: float = CAVITY_PX) -> torch.Tensor:
    """Self-supervised detail signal from a photo: under a lighting fitted to the photo, the normals of the final
    depth must explain its fine luminance. image: B x 3 x H x W sRGB in [0, 1]; coarse (for the lighting fit) and
    depth (coarse + detail, which the loss trains): B x 1 x H x W crop px; valid: B x 1 x H x W, 1 on skin whose
    shading is the relief's (pseudo_labels.shading_region); sigma_px: the detail band at this resolution.

    Per sample the lighting is the least-squares fit of the linear luminance by lighting_basis of the coarse
    normals over valid (constant albedo). The fine part of an image is its ratio to its blur within valid, minus 1:
    the albedo, smooth across the skin, divides out of the photo's, so what is left is shading. A colour spot
    (freckle, mole, redness) changes the chromaticity as well, shading does not: pixels whose fine chromaticity
    exceeds chroma_tolerance within 2 sigma weigh less. Smooth-L1 with beta = 2 % of luminance; the photo's part is
    clipped at 20 %.

    occlusion: the light a crease loses per crop px it lies below its surroundings (depth less coarse blurred over
    cavity_px: facerecon.data.relief.cavity): the renderer's model (SceneConfig.occlusion), which takes that share
    of the ambient light and its square root of the key light, taken here of all the shading. Under a
    light from the front a groove's walls and a ridge's both tilt away and darken alike, so normals alone cannot
    tell which a dark line is; the lost light darkens the groove only.
    """
    linear = image.clamp(1 / 255, 1) ** GAMMA
    weights = torch.tensor(LUMINANCE, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    luminance = (linear * weights).sum(1, keepdim=True)
    with torch.no_grad():
        basis = lighting_basis(surface_normals(coarse)) * valid  # B x 9 x H x W
        a = torch.einsum("bihw,bjhw->bij", basis, basis) + 1e-3 * torch.eye(9, device=image.device)
        lighting = torch.linalg.solve(a, torch.einsum("bihw,bhw->bi", basis, luminance[:, 0]))
        fine_photo = (luminance / blur_within(luminance, valid, sigma_px).clamp_min(1e-4) - 1).clamp(-0.2, 0.2)
        chroma = linear / linear.sum(1, keepdim=True)
        spots = (chroma - blur_within(chroma, valid, sigma_px)).norm(dim=1, keepdim=True)
        reach = 2 * int(2 * sigma_px + 0.5) + 1  # a spot's fine luminance spreads as far as the blur: so its weight
        spots = F.max_pool2d(spots, reach, 1, reach // 2)
        weight = valid * torch.exp(-((spots / chroma_tolerance) ** 2))
    shading = torch.einsum("bihw,bi->bhw", lighting_basis(surface_normals(depth)), lighting)[:, None]
    if occlusion:
        relief = depth - coarse.detach()  # the coarse depth is the photo's lighting fit only: no gradient
        shading = shading * torch.exp(-occlusion * cavity(relief, valid, cavity_px))
    shading = shading.clamp_min(1e-4)
    fine_model = shading / blur_within(shading, valid, sigma_px).clamp_min(1e-4) - 1
    return masked_smooth_l1(fine_model, fine_photo, weight, beta=2.0, scale=0.01)
