"""Training losses: BCE for the mask, smooth-L1 for coarse depth and detail where the ground truth is valid."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def mask_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """logits, target: B x 1 x H x W (target in {0, 1}); weight: per-pixel weight or None."""
    return F.binary_cross_entropy_with_logits(logits, target, weight=weight)


def masked_smooth_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, beta: float = 1.0,
                     scale: float = 1.0, shift_invariant: bool = False,
                     sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Smooth-L1 averaged over pixels where valid > 0 (valid: B x 1 x H x W weights); 0 when nothing is valid.

    `sample_weight` (B x 1 x 1 x 1) multiplies each sample's pixel losses but not the count they are averaged over.
    `scale` divides prediction and target first, so beta acts on O(1) numbers whatever the map's units.
    `shift_invariant` first removes each sample's mean difference over its valid pixels: the depth offset of a
    single photo is unknowable (coarse depth is defined up to it, docs/representation.md).
    """
    if shift_invariant:
        w = (valid > 0).float()
        offset = ((pred - target) * w).sum((1, 2, 3), keepdim=True) / w.sum((1, 2, 3), keepdim=True).clamp_min(1)
        pred = pred - offset
    per_pixel = F.smooth_l1_loss(pred / scale, target / scale, reduction="none", beta=beta)
    weighted = per_pixel * valid if sample_weight is None else per_pixel * valid * sample_weight
    return weighted.sum() / valid.sum().clamp_min(1.0)


def face_balance(target: torch.Tensor, valid: torch.Tensor, exponent: float, floor: float) -> torch.Tensor:
    """Per-sample weights B x 1 x 1 x 1 proportional to 1 / s ** exponent, s = max(floor, the std of the sample's
    target over its valid pixels); 0 for samples without valid pixels.

    With exponent 2 every face's detail counts alike in the quadratic zone of smooth-L1, whether its wrinkles are
    0.01 or 0.1 px deep; unweighted, the deep ones outweigh the faint ones 100 to 1, while the evaluated detail
    correlation, taken per face, weighs them alike. The weights are scaled so that the batch's label energy
    sum(n s^2) keeps its weight: predicting zero everywhere costs what it cost unweighted, and the detail loss
    keeps its scale against the mask and coarse losses.
    """
    w = (valid > 0).float()
    n = w.sum((1, 2, 3), keepdim=True)
    mean = (target * w).sum((1, 2, 3), keepdim=True) / n.clamp_min(1)
    s2 = (((target - mean) ** 2 * w).sum((1, 2, 3), keepdim=True) / n.clamp_min(1)).clamp_min(floor ** 2)
    weight = s2 ** (-exponent / 2) * (n > 0)
    return weight * (n * s2).sum() / (weight * n * s2).sum().clamp_min(1e-30)
