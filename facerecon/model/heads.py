"""The three task heads: pyramid pooling for the mask, U-Nets for coarse depth and detail."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import ConvBNReLU, resize_to


class PyramidPoolingHead(nn.Module):
    """Segmentation head (PSPNet's pyramid pooling module) on the 1/8 map.

    Average pooling into 1x1, 2x2, 4x4 and 8x8 bins: on a 32x32 map these are kernels and strides 32, 16, 8, 4.
    forward(x: B x C x h x w, out_size) -> mask logits B x 1 x out_size
    """

    bins = (1, 2, 4, 8)

    def __init__(self, cin: int, width: int, separable: bool):
        super().__init__()
        branch = max(width // len(self.bins), 8)
        self.branches = nn.ModuleList(ConvBNReLU(cin, branch, kernel=1) for _ in self.bins)
        self.fuse = ConvBNReLU(cin + branch * len(self.bins), width, separable=separable)
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        h, w = x.shape[-2:]
        pooled = []
        for bins, branch in zip(self.bins, self.branches):
            # explicit kernel = stride = size / bins (what the paper states; exports to a plain ONNX AveragePool)
            k = (max(h // bins, 1), max(w // bins, 1))
            pooled.append(resize_to(branch(F.avg_pool2d(x, k, k)), x))
        y = self.fuse(torch.cat([x, *pooled], dim=1))
        return resize_to(self.out(y), out_size)


class UNetHead(nn.Module):
    """U-Net of n Conv-BN-ReLU encoder layers (each halves the resolution) and n decoder layers (each doubles it).

    Encoder outputs e_1..e_n (e_0 is the head input). Decoder layer i upsamples to e_{n-i}'s size and its output is
    concatenated with e_{n-i}: the paper's skip connections i <-> n-i.
    forward(x: B x C x h x w, out_size) -> B x 1 x out_size (raw regression, O(1)); decode(x) -> the features the
    output convolution reads, B x (widths[0] + C) x h x w.
    """

    def __init__(self, cin: int, widths: list[int], separable: bool, output: bool = True):
        super().__init__()
        n = len(widths)
        enc = [cin, *widths]  # enc[j] = channels of e_j
        self.encoder = nn.ModuleList(
            ConvBNReLU(enc[j - 1], enc[j], stride=2, separable=separable) for j in range(1, n + 1))
        dec_out = [enc[n - i] if n - i >= 1 else widths[0] for i in range(1, n + 1)]
        dec_in = [enc[n]] + [dec_out[i - 2] + enc[n - i + 1] for i in range(2, n + 1)]
        self.decoder = nn.ModuleList(ConvBNReLU(a, b, separable=separable) for a, b in zip(dec_in, dec_out))
        self.features = dec_out[-1] + cin
        # without an output convolution (output=False) the head gives decode()'s features to a later stage
        self.out = nn.Conv2d(self.features, 1, 3, padding=1) if output else None

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        skips = [x]
        for layer in self.encoder:
            skips.append(layer(skips[-1]))
        y = skips.pop()  # e_n
        for layer in self.decoder:
            skip = skips.pop()  # e_{n-i}
            y = torch.cat([layer(resize_to(y, skip)), skip], dim=1)
        return y

    def forward(self, x: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        return resize_to(self.out(self.decode(x)), out_size)


class FullResStage(nn.Module):
    """The extension beyond the paper: a light stem on the crop itself, joined to a U-Net's last decoder features
    (upsampled), predicts a residual at the crop's full resolution.

    Its output convolution starts at zero, so a network extended from trained weights starts exactly where they
    were. forward(rgb: B x 3 x H x W normalised, features: B x C x h x w) -> B x 1 x H x W
    """

    def __init__(self, cin: int, width: int = 16):
        super().__init__()
        self.stem = ConvBNReLU(3, width)
        self.reduce = ConvBNReLU(cin, width, kernel=1)
        self.fuse = ConvBNReLU(2 * width, width, separable=True)
        self.out = nn.Conv2d(width, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, rgb: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.stem(rgb), resize_to(self.reduce(features), rgb)], dim=1)
        return self.out(self.fuse(y))


class BlockStage(nn.Module):
    """FullResStage's job done at the features' resolution (NetworkConfig.full_res_blocks), and the whole detail
    map rather than a residual on the detail U-Net's upsampled output: the stem reads the crop's 2x2 pixel blocks
    (a 3x3 convolution over blocks, written as the 6x6 stride-2 convolution on the crop that it is: the pixel
    unshuffle's transposes cost more than the convolution), joins the U-Net's last decoder features, and the output
    convolution predicts each block's four pixels (pixel shuffle), so the detail is still decided per crop pixel.
    The same job at a quarter of the positions, for speed (FullResStage's work at 256x256 costs the int8 network
    more than its share of the parameters: docs/speed.md, session 30).

    Its output convolution starts at zero. forward(rgb: B x 3 x H x W normalised, features: B x C x H/2 x W/2)
    -> B x 1 x H x W
    """

    def __init__(self, cin: int, width: int = 32):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width // 2, 6, 2, 2, bias=False), nn.BatchNorm2d(width // 2),
                                  nn.ReLU(inplace=True))
        self.reduce = ConvBNReLU(cin, width // 2, kernel=1)
        self.fuse = ConvBNReLU(width, width, separable=True)
        self.out = nn.Conv2d(width, 4, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, rgb: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.stem(rgb), self.reduce(features)], dim=1)
        return F.pixel_shuffle(self.out(self.fuse(y)), 2)
