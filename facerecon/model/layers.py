"""Small building blocks shared by the backbone and the heads."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ConvBNReLU(nn.Sequential):
    """3x3 (or k x k) Conv-BN-ReLU; `separable` makes it depthwise 3x3 + pointwise 1x1 (MobileNet style)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, separable: bool = False):
        pad = kernel // 2
        if separable and kernel > 1:
            conv = [nn.Conv2d(cin, cin, kernel, stride, pad, groups=cin, bias=False),
                    nn.Conv2d(cin, cout, 1, bias=False)]
        else:
            conv = [nn.Conv2d(cin, cout, kernel, stride, pad, bias=False)]
        super().__init__(*conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def resize_to(x: torch.Tensor, ref: torch.Tensor | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False: pixel centres at integer coordinates) to ref's spatial size."""
    size = tuple(ref.shape[-2:]) if isinstance(ref, torch.Tensor) else tuple(ref)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
