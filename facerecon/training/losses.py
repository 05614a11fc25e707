"""Training losses: BCE for the mask, smooth-L1 for coarse depth and detail where the ground truth is valid."""
from __future__ import annotations

import torch
from torch.nn import functional as F


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
