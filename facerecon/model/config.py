"""Network configuration: every width is a field, so the paper's full width and our CPU width share one code path."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class NetworkConfig:
    input_size: int = 256
    backbone_widths: list[int] = field(default_factory=lambda: [64, 64, 128, 256, 512])  # stem, layer1..layer4
    fpn_width: int = 64
    ppm_width: int = 64
    coarse_widths: list[int] = field(default_factory=lambda: [32, 64, 128, 128, 128, 128])  # 6 encoder layers
    detail_widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 128, 128, 128])  # 7 encoder layers
    separable_heads: bool = True  # depthwise-separable 3x3 convs in the heads
    # The heads regress O(1) numbers; these scales turn them into crop-pixel units (docs/representation.md).
    coarse_scale: float = 32.0
    detail_scale: float = 0.5
    # What the detail map holds (docs/representation.md): 0 = the renders' wrinkle label alone, the coarse map the
    # rest; b > 0 = the relief finer than a Gaussian of sigma b crop px (the total depth minus its blur), the
    # coarse map the blurred depth. The split by frequency gives each head the relief its resolution can carry.
    detail_band_px: float = 0.0
    # ... except the renders' wrinkles (and creases drawn with their grooves), which go into the detail whole: only
    # the face model's own relief is split. Split with the rest, a groove 1 px wide leaves most of its depth to the
    # coarse map, which the coarse head, at 1/4 resolution, cannot hold (docs/quality.md, "Wrinkles kept whole").
    detail_wrinkles_whole: bool = False
    # Extension beyond the paper's topology (docs/representation.md): a full-resolution stage that sees the crop
    # and adds a residual to the detail U-Net's upsampled output, so the detail is decided at 256x256.
    full_res_detail: bool = False
    # ... computed on the crop's 2x2 pixel blocks at the features' 1/2 resolution (heads.BlockStage), not at 256x256,
    # and predicting the whole detail map (the detail U-Net then has no output convolution of its own at 1/2)
    full_res_blocks: bool = False
    # The feature pyramid's 3x3 smoothing of its finest (1/2) level, which only the detail head reads; without it that
    # level is the lateral 1x1 plus the upsampled 1/4 level, and the detail U-Net's first 3x3 does the smoothing.
    # Off for speed (docs/speed.md): it was the network's single costliest int8 convolution.
    fpn_smooth_finest: bool = True
    # How the crops it was trained on were framed (facerecon.preprocess.align.Framing as [w_1 .. w_5, scale]): it is
    # run on crops framed the same way. Configs that do not say were trained on the template framing.
    crop_framing: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])

    def __post_init__(self):
        framing = self.crop_framing
        if len(framing) != 6 or not all(isinstance(v, (int, float)) and v > 0 for v in framing):
            raise ValueError(f"crop_framing must be five landmark weights and a scale, all > 0, not {framing!r}")

    @classmethod
    def full_width(cls) -> NetworkConfig:
        """The paper-sized variant: FPN 128, U-Nets up to 256 wide, plain convs."""
        return cls(fpn_width=128, ppm_width=128, coarse_widths=[64, 128, 256, 256, 256, 256],
                   detail_widths=[32, 64, 128, 256, 256, 256, 256], separable_heads=False)

    @classmethod
    def from_dict(cls, data: dict) -> NetworkConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known - {"model_type", "format_version"}
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict:
        return {"model_type": "facerecon", "format_version": 1, **dataclasses.asdict(self)}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
