"""The multi-task network: ResNet18 + FPN, then mask (1/8), coarse depth (1/4) and detail (1/2) heads, and
optionally the full-resolution detail stage (an extension, NetworkConfig.full_res_detail, full_res_blocks)."""
from __future__ import annotations

import torch
from torch import nn

from .backbone import FeaturePyramid, ResNet18
from .config import NetworkConfig
from .heads import BlockStage, FullResStage, PyramidPoolingHead, UNetHead
from .layers import resize_to

# ImageNet statistics: a conventional, harmless input normalisation (there are no ImageNet weights here).
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)


class FaceReconNet(nn.Module):
    """forward(rgb: B x 3 x H x W float in [0, 1]) -> (mask_logits, coarse_depth, detail), each B x 1 x H x W.

    Depth and detail are in crop-pixel units, larger = nearer the camera (docs/representation.md).
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("rgb_mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("rgb_std", torch.tensor(RGB_STD).view(1, 3, 1, 1), persistent=False)
        self.backbone = ResNet18(c.backbone_widths)
        self.fpn = FeaturePyramid(c.backbone_widths, c.fpn_width, c.fpn_smooth_finest)
        self.mask_head = PyramidPoolingHead(c.fpn_width, c.ppm_width, c.separable_heads)
        self.coarse_head = UNetHead(c.fpn_width, c.coarse_widths, c.separable_heads)
        blocks = c.full_res_detail and c.full_res_blocks  # the block stage gives the whole detail map
        self.detail_head = UNetHead(c.fpn_width, c.detail_widths, c.separable_heads, output=not blocks)
        stage = BlockStage if c.full_res_blocks else FullResStage
        self.full_res = stage(self.detail_head.features) if c.full_res_detail else None

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        size = rgb.shape[-2:]
        x = (rgb - self.rgb_mean) / self.rgb_std
        p3, p2, p1 = self.fpn(self.backbone(x))
        mask_logits = self.mask_head(p3, size)
        coarse = self.coarse_head(p2, size) * self.config.coarse_scale
        if self.full_res is None:
            detail = self.detail_head(p1, size)
        elif self.detail_head.out is None:
            detail = self.full_res(x, self.detail_head.decode(p1))
        else:
            features = self.detail_head.decode(p1)
            detail = resize_to(self.detail_head.out(features), size) + self.full_res(x, features)
        return mask_logits, coarse, detail * self.config.detail_scale
