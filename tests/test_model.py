import pytest
import torch
from torch.nn import functional as F

from facerecon.model import FaceReconNet, NetworkConfig
from facerecon.model.heads import PyramidPoolingHead, UNetHead
from facerecon.training.losses import mask_loss, masked_smooth_l1


@pytest.mark.parametrize("config", [NetworkConfig(), NetworkConfig.full_width()], ids=["shipped", "full"])
@pytest.mark.parametrize("size", [256, 128])
def test_every_head_outputs_one_channel_at_input_resolution(config, size):
    model = FaceReconNet(config).eval()
    with torch.no_grad():
        outs = model(torch.rand(2, 3, size, size))
    assert [tuple(o.shape) for o in outs] == [(2, 1, size, size)] * 3


def test_topology_matches_the_paper():
    model = FaceReconNet(NetworkConfig())
    stages = model.backbone.layers
    assert [len(s) for s in stages] == [2, 2, 2, 2]  # ResNet18 BasicBlocks
    assert len(model.coarse_head.encoder) == len(model.coarse_head.decoder) == 6
    assert len(model.detail_head.encoder) == len(model.detail_head.decoder) == 7
    # FPN levels feeding the heads: 1/8 (mask), 1/4 (coarse), 1/2 (detail)
    p3, p2, p1 = model.fpn(model.backbone(torch.rand(1, 3, 256, 256)))
    assert p3.shape[-1] == 32 and p2.shape[-1] == 64 and p1.shape[-1] == 128


def test_pyramid_pooling_uses_kernels_32_16_8_4_on_a_32x32_map(monkeypatch):
    seen = []
    real = F.avg_pool2d

    def spy(x, kernel, stride=None, *args, **kwargs):
        seen.append((kernel, stride))
        return real(x, kernel, stride, *args, **kwargs)

    monkeypatch.setattr(F, "avg_pool2d", spy)
    head = PyramidPoolingHead(16, 16, separable=False).eval()
    with torch.no_grad():
        head(torch.rand(1, 16, 32, 32), (256, 256))
    assert [k for k, _ in seen] == [(32, 32), (16, 16), (8, 8), (4, 4)]
    assert all(k == s for k, s in seen)


def test_unet_skips_join_layer_i_with_layer_n_minus_i():
    head = UNetHead(8, [4, 5, 6], separable=False)
    # decoder layer 1 sees e_3 alone, layer 2 = d1 (width of e_2) + e_2, layer 3 = d2 (width of e_1) + e_1
    in_widths = [layer[0].in_channels for layer in head.decoder]
    assert in_widths == [6, 5 + 5, 4 + 4]
    assert head.out.in_channels == 4 + 8  # last decoder output joined with the head input


def test_losses_ignore_invalid_pixels():
    pred, target = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    target[..., 0, 0] = 100.0  # a wrong value where the ground truth is not valid
    valid = torch.ones(1, 1, 4, 4)
    valid[..., 0, 0] = 0
    assert masked_smooth_l1(pred, target, valid) == 0
    assert masked_smooth_l1(pred, target, torch.ones_like(valid)) > 0
    assert masked_smooth_l1(pred, target, torch.zeros_like(valid)) == 0
    shifted = target + 7.0  # every pixel 7 deeper: a pure offset
    assert masked_smooth_l1(pred, shifted, valid, shift_invariant=True) < 1e-6
    assert masked_smooth_l1(pred, shifted, valid) > 1
    logits = torch.full((1, 1, 2, 2), 10.0)
    everywhere = torch.ones_like(logits)
    assert mask_loss(logits, torch.ones_like(logits), everywhere) < 1e-3 < mask_loss(logits, torch.zeros_like(logits),
                                                                                   everywhere)
    target, labelled = torch.ones_like(logits), torch.ones_like(logits)
    target[..., 0, 0], labelled[..., 0, 0] = 0, 0  # a wrong label where the pseudo-label does not say
    assert mask_loss(logits, target, labelled) < 1e-3
