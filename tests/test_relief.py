"""The split of depth labels by frequency (facerecon.data.relief) and the network extended to learn it."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from facerecon.data.relief import split_relief
from facerecon.model import FaceReconNet, NetworkConfig
from facerecon.model.layers import resize_to
from facerecon.training.train import extended


def face(size: int = 96) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dome with a 0.5 px deep groove across it and a wrinkle label beside it; the mask a disc."""
    y, x = np.mgrid[:size, :size].astype(np.float32)
    r2 = ((x - size / 2) ** 2 + (y - size / 2) ** 2) / (size / 2.5) ** 2
    inside = r2 < 1
    coarse = np.where(inside, 30 * (1 - r2), 0).astype(np.float32)
    coarse -= 0.5 * np.exp(-((y - size / 2) ** 2) / 2) * inside  # an eyelid-like crease of the face model
    detail = np.where(inside, -0.3 * np.exp(-((y - size / 3) ** 2) / 2), 0).astype(np.float32)  # a wrinkle
    return coarse, detail, inside


def test_the_split_adds_up_to_the_true_depth_and_the_coarse_part_is_smooth():
    coarse, detail, inside = face()
    smooth, fine, valid = split_relief(coarse, detail, inside, inside, 2.0)
    assert valid.sum() > 0.95 * inside.sum()
    np.testing.assert_allclose((smooth + fine)[valid], (coarse + detail)[valid], atol=1e-4)
    # the crease and the wrinkle are in the detail now, most of their depth (the dome's own curvature is the rest
    # of the detail: the split of the face without them)
    mid, third = coarse.shape[0] // 2, coarse.shape[0] // 3
    y = np.arange(coarse.shape[0], dtype=np.float32)[:, None]
    dome = coarse + 0.5 * np.exp(-((y - mid) ** 2) / 2) * inside
    share = fine - split_relief(dome, np.zeros_like(detail), inside, inside, 2.0)[1]
    assert share[mid, mid] < -0.25 and share[third, mid] < -0.15
    # the coarse part holds no feature narrower than the band: its second difference is far below the crease's
    rows = slice(mid - 12, mid + 13)
    assert np.abs(np.diff(smooth[rows, mid], 2)).max() < 0.2 * np.abs(np.diff(coarse[rows, mid], 2)).max()


def test_wrinkles_kept_whole_stay_whole_in_the_detail_and_the_split_still_adds_up():
    """wrinkles_whole: only the face model's relief is split; the wrinkle label goes into the detail entire."""
    coarse, detail, inside = face()
    smooth, fine, valid = split_relief(coarse, detail, inside, inside, 2.0, wrinkles_whole=True)
    np.testing.assert_allclose((smooth + fine)[valid], (coarse + detail)[valid], atol=1e-4)
    np.testing.assert_allclose(smooth, split_relief(coarse, np.zeros_like(detail), inside, inside, 2.0)[0], atol=1e-6)
    split = split_relief(coarse, detail, inside, inside, 2.0)[1]
    third, mid = coarse.shape[0] // 3, coarse.shape[0] // 2
    assert fine[third, mid] - split[third, mid] < -0.1  # the wrinkle's part the split gave the coarse label is back


def test_a_depth_step_is_left_out_of_the_detail_label():
    coarse, detail, inside = face()
    coarse[:, 60:] -= 10 * inside[:, 60:]  # the nose hiding the cheek of a turned face
    _, fine, valid = split_relief(coarse, detail, inside, inside, 2.0)
    assert not valid[40:56, 56:64].any() and valid[40:56, 48:52].all() and valid[40:56, 68:72].all()
    assert np.abs(fine[40:56, 48:72][valid[40:56, 48:72]]).max() < 0.3  # nor the step's blurred tails


def test_a_photo_without_a_detail_label_keeps_none_and_its_coarse_label_is_blurred():
    coarse, _, inside = face()
    smooth, fine, valid = split_relief(coarse, np.zeros_like(coarse), inside, np.zeros_like(inside), 2.0)
    assert not valid.any() and not fine.any()
    mid = coarse.shape[0] // 2
    y = np.arange(coarse.shape[0], dtype=np.float32)[:, None]
    dome = split_relief(coarse + 0.5 * np.exp(-((y - mid) ** 2) / 2) * inside, np.zeros_like(coarse), inside,
                        np.zeros_like(inside), 2.0)[0]
    assert dome[mid, mid] - smooth[mid, mid] < 0.25  # under half of the 0.5 px crease is left: it is blurred away


def test_a_trained_network_extended_by_the_full_resolution_stage_starts_where_it_was():
    small = NetworkConfig(backbone_widths=[8, 8, 16, 16, 16], fpn_width=8, ppm_width=8, coarse_widths=[8] * 6,
                          detail_widths=[8] * 7)
    torch.manual_seed(0)
    trained = FaceReconNet(small).eval()
    grown = extended(trained, dataclasses.replace(small, full_res_detail=True, detail_band_px=2.0), print).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(trained(x), grown(x)):
            assert torch.equal(a, b)
    # and the stage does change the detail once trained (its output convolution is no longer zero)
    torch.nn.init.normal_(grown.full_res.out.weight)
    with torch.no_grad():
        assert not torch.equal(trained(x)[2], grown(x)[2])


def test_the_block_stage_re_formed_from_a_trained_network_keeps_mask_and_coarse_and_decides_each_pixel():
    small = NetworkConfig(backbone_widths=[8, 8, 16, 16, 16], fpn_width=8, ppm_width=8, coarse_widths=[8] * 6,
                          detail_widths=[8] * 7, full_res_detail=True)
    torch.manual_seed(0)
    trained = FaceReconNet(small).eval()
    torch.nn.init.normal_(trained.full_res.out.weight)  # a trained stage: it adds a residual
    fast = dataclasses.replace(small, full_res_blocks=True, fpn_smooth_finest=False)
    blocks = extended(trained, fast, print).eval()
    assert blocks.detail_head.out is None  # the stage gives the whole detail map
    assert not any(k.startswith(("detail_head.out.", "fpn.smooth.0.")) for k in blocks.state_dict())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before, after = trained(x), blocks(x)
        for a, b in zip(before[:2], after[:2]):  # the mask and the coarse depth are the trained ones exactly
            assert torch.equal(a, b)
        assert not after[2].any()  # the re-formed stage starts at zero
        # once trained it sets the four pixels of a 2x2 block apart (a map at the crop's resolution, not 1/2's)
        torch.nn.init.normal_(blocks.full_res.out.weight)
        detail = blocks(x)[2]
        # and it reads the pyramid's 1/2 level unsmoothed: the lateral of the stem plus the upsampled 1/4 level
        c = blocks.backbone((x - blocks.rgb_mean) / blocks.rgb_std)
        p2, p1 = blocks.fpn(c)[1:]
        torch.testing.assert_close(p1, blocks.fpn.lateral[0](c[0]) + resize_to(p2, c[0]))
    assert detail.shape == (2, 1, 64, 64)
    assert (detail[..., 0::2, 0::2] - detail[..., 1::2, 1::2]).abs().mean() > 0.1 * detail.abs().mean()
