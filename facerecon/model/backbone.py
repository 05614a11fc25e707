"""ResNet18 (written out here: torchvision is not available) plus a feature pyramid giving 1/8, 1/4 and 1/2 maps."""
from __future__ import annotations

import torch
from torch import nn

from .layers import resize_to


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """The five blocks of ResNet18 ([2, 2, 2, 2] BasicBlocks).

    forward(x: B x 3 x H x W) -> [c1 (1/2, stem before max-pool), c2 (1/4), c3 (1/8), c4 (1/16), c5 (1/32)]
    """

    def __init__(self, widths: list[int]):
        super().__init__()
        stem, *stages = widths
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 7, 2, 3, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], stem
        for i, cout in enumerate(stages):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stem(x)
        feats, y = [c1], self.maxpool(c1)
        for layer in self.layers:
            y = layer(y)
            feats.append(y)
        return feats


class FeaturePyramid(nn.Module):
    """Top-down pathway with lateral 1x1 connections; a 3x3 conv smooths each merged level (the finest one only if
    smooth_finest: NetworkConfig.fpn_smooth_finest).

    forward([c1..c5]) -> (p3: B x F x H/8 x W/8, p2: B x F x H/4 x W/4, p1: B x F x H/2 x W/2)
    """

    def __init__(self, in_widths: list[int], width: int, smooth_finest: bool = True):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_widths)
        # smoothing convs for p4, p3, p2, p1 (p5 is the lateral of c5 alone)
        self.smooth = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in in_widths[:-1])
        if not smooth_finest:
            self.smooth[0] = nn.Identity()

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        top = self.lateral[-1](feats[-1])
        levels = []
        for i in range(len(feats) - 2, -1, -1):  # c4, c3, c2, c1
            top = self.smooth[i](self.lateral[i](feats[i]) + resize_to(top, feats[i]))
            levels.append(top)
        p4, p3, p2, p1 = levels
        return p3, p2, p1
