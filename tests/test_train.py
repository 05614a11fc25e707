"""Training: exact resume after an interruption, and data-parallel training under torchrun (gloo, 2 CPU ranks)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facerecon.data.pseudo_labels import forehead_band
from facerecon.data.shards import shard_path, write_shard
from facerecon.model import FaceReconNet, NetworkConfig
from facerecon.model.hub import save_pretrained
from facerecon.preprocess.align import SMILE_STEADY_FRAMING, TEMPLATE_FRAMING
from facerecon.training.losses import mask_loss
from facerecon.training.train import (
    ConfigError,
    ShardData,
    TrainConfig,
    compute_losses,
    data_framing,
    flip_averaged,
    parse_overrides,
)

from .conftest import ROOT

TINY = {"backbone_widths": [8, 8, 16, 16, 16], "fpn_width": 8, "ppm_width": 8, "coarse_widths": [8] * 6,
        "detail_widths": [8] * 7}


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    for k in range(2):
        samples = []
        for _ in range(6):
            mask = np.zeros((64, 64), bool)
            mask[16:48, 16:48] = True
            samples.append({"image": (rng.random((64, 64, 3)) * 255).astype(np.uint8), "mask": mask,
                            "coarse": rng.normal(0, 3, (64, 64)).astype(np.float32) * mask,
                            "detail": rng.normal(0, 0.2, (64, 64)).astype(np.float32) * mask,
                            "valid_coarse": mask, "valid_detail": mask, "params": {}})
        write_shard(shard_path(root / "synth", k), samples, "test noise", SMILE_STEADY_FRAMING)
    photos = [{**s, "mask_unlabelled": np.zeros((64, 64), bool), "valid_detail": np.zeros((64, 64), bool),
               "valid_shading": s["mask"]} for s in samples]  # pseudo-labelled: no detail label, skin to shade
    write_shard(shard_path(root / "real", 0), photos, "test pseudo-labels", SMILE_STEADY_FRAMING)
    (root / "net.json").write_text(json.dumps(TINY))
    torch.manual_seed(1)
    save_pretrained(FaceReconNet(NetworkConfig.from_dict(TINY)).eval(), root / "teacher")
    return root


def train(setup, out, *extra, nproc=1):
    args = [f"synth_dirs={setup / 'synth'}", "real_dirs=", f"out_dir={out}", "init_from=random",
            f"network_config={setup / 'net.json'}", "batch_size=4", "total_samples=48", "res_schedule=64",
            "warmup_steps=2", "log_every=1", "threads=2", "val_fraction=0.2", "device=cpu", *extra]
    cmd = ([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "-m", "facerecon", "train"]
           if nproc > 1 else [sys.executable, "-m", "facerecon", "train"])
    res = subprocess.run(cmd + args, capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res.stdout


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["ema_decay=0.8"], ["real_dirs={real}", "shading_weight=1"],
                                   ["flip_teacher={teacher}"]], ids=["plain", "ema", "shading", "flip-teacher"])
def test_interrupted_training_resumes_exactly(tiny_setup, tmp_path, extra):
    extra = [e.format(real=tiny_setup / "real", teacher=tiny_setup / "teacher") for e in extra]
    straight = train(tiny_setup, tmp_path / "straight", *extra)
    assert ('"shading": ' in straight) == ("shading_weight=1" in extra)  # the loss is on, and logged, when asked
    assert ('"flip": ' in straight) == any(e.startswith("flip_teacher=") for e in extra)
    out = train(tiny_setup, tmp_path / "interrupted", "stop_after_samples=24", *extra)
    assert '"samples": 24' in out and '"samples": 28' not in out
    metrics = json.loads([line for line in out.splitlines() if "val_synth" in line][-1])
    assert metrics["val_synth"].keys() == metrics["train_synth"].keys() == {"mask_iou", "coarse_mae_px", "detail_corr"}
    out = train(tiny_setup, tmp_path / "interrupted", *extra)
    assert "resumed from" in out
    # the network is run on crops framed as its data's were (random init: the template framing before)
    config = json.loads((tmp_path / "straight" / "export" / "config.json").read_text())
    assert config["crop_framing"] == SMILE_STEADY_FRAMING.to_list()
    a = load_file(tmp_path / "straight" / "export" / "model.safetensors")
    b = load_file(tmp_path / "interrupted" / "export" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


@pytest.mark.slow
def test_weight_average_is_exported_and_leaves_the_training_unchanged(tiny_setup, tmp_path):
    train(tiny_setup, tmp_path / "plain", "total_samples=24")
    train(tiny_setup, tmp_path / "ema", "total_samples=24", "ema_decay=0.8")
    plain, ema = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("plain", "ema"))
    assert all((plain["model"][k] == ema["model"][k]).all() for k in plain["model"])
    exported = load_file(tmp_path / "ema" / "export" / "model.safetensors")
    averaged = {k.removeprefix("module."): v for k, v in ema["ema"].items()}
    assert all((exported[k] == averaged[k].to(exported[k].dtype)).all() for k in exported)
    weight = "detail_head.out.weight"
    assert not torch.equal(averaged[weight], plain["model"][weight])


@pytest.mark.slow
def test_batches_built_ahead_on_threads_train_the_same_weights(tiny_setup, tmp_path):
    train(tiny_setup, tmp_path / "inline", "total_samples=24")
    train(tiny_setup, tmp_path / "threads", "total_samples=24", "loader_threads=3")
    a = load_file(tmp_path / "inline" / "export" / "model.safetensors")
    b = load_file(tmp_path / "threads" / "export" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


@pytest.mark.slow
def test_training_one_part_leaves_the_others_exactly_as_they_were(tiny_setup, tmp_path):
    train(tiny_setup, tmp_path / "start", "total_samples=8")
    start = tmp_path / "start" / "export"
    train(tiny_setup, tmp_path / "mask", "total_samples=24", f"init_from={start}", "trainable=mask_head")
    a, b = load_file(start / "model.safetensors"), load_file(tmp_path / "mask" / "export" / "model.safetensors")
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.startswith("mask_head.") for k in changed)  # batch-norm statistics included


def test_an_unknown_trainable_part_is_a_clear_error(tiny_setup, tmp_path):
    res = subprocess.run([sys.executable, "-m", "facerecon", "train", f"synth_dirs={tiny_setup / 'synth'}",
                          "real_dirs=", f"out_dir={tmp_path}", "init_from=random",
                          f"network_config={tiny_setup / 'net.json'}", "trainable=mask_head,decoder"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode != 0 and "unknown network part(s) ['decoder']" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_torchrun_two_ranks_end_with_identical_weights(tiny_setup, tmp_path):
    out = train(tiny_setup, tmp_path / "ddp", nproc=2)
    report = json.loads([line for line in out.splitlines() if "rank_weight_digests" in line][-1])
    assert len(report["rank_weight_digests"]) == 2 and report["ranks_in_sync"]


def test_the_flip_teachers_targets_mirror_with_the_image():
    """flip_averaged is what inference's flip averaging computes: mirror-equivariant, though the network is not."""
    torch.manual_seed(2)
    teacher = FaceReconNet(NetworkConfig.from_dict(TINY)).eval()
    image = torch.rand(2, 3, 64, 64)
    mirrored = image.flip(-1)
    plain = teacher(image)[1]
    assert (plain - teacher(mirrored)[1].flip(-1)).abs().max() > 1e-3  # the network alone is not symmetric
    for a, b in zip(flip_averaged(teacher, image), flip_averaged(teacher, mirrored)):
        torch.testing.assert_close(a, b.flip(-1), rtol=0, atol=1e-5)


def test_a_missing_flip_teacher_is_a_clear_error(tiny_setup, tmp_path):
    res = subprocess.run([sys.executable, "-m", "facerecon", "train", f"synth_dirs={tiny_setup / 'synth'}",
                          "real_dirs=", f"out_dir={tmp_path / 'run'}", "init_from=random",
                          f"network_config={tiny_setup / 'net.json'}", f"flip_teacher={tmp_path / 'no-teacher'}",
                          "device=cpu"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 2 and "flip_teacher=" in res.stderr and "no such model folder" in res.stderr
    assert "Traceback" not in res.stderr


def best_guess_for_half_a_wrinkle(cfg: TrainConfig) -> float:
    """The constant detail that minimises cfg's detail loss when a wrinkle 0.4 px deep is in one of two samples."""
    label = torch.zeros(2, 1, 8, 8)
    label[0] = -0.4
    ones = torch.ones(2, 1, 8, 8)
    batch = {"image": torch.zeros(2, 3, 256, 256), "mask": ones, "mask_labelled": ones,
             "coarse": torch.zeros_like(label), "detail": label, "valid_coarse": ones, "valid_detail": ones}
    guesses = np.linspace(-0.4, 0.0, 81)
    losses = [compute_losses(lambda img, g=g: (ones, torch.zeros_like(label), torch.full_like(label, g)),
                             batch, cfg, torch.ones(2))["detail"].item() for g in guesses]
    return float(guesses[int(np.argmin(losses))])


def test_detail_loss_is_minimised_by_the_mean_of_uncertain_wrinkles():
    """A wrinkle 0.4 px deep in one sample and absent from the other: the best guess is 0.2 px deep, not 0."""
    assert best_guess_for_half_a_wrinkle(TrainConfig()) == pytest.approx(-0.2, abs=0.006)


def test_groove_weight_moves_the_best_guess_for_an_uncertain_wrinkle_towards_it():
    """With the groove weight the wrinkle's pixels count 1 + groove_weight times, so the best guess is the weighted
    mean: 0.4 * 11 / 12 px deep at groove_weight 10."""
    assert best_guess_for_half_a_wrinkle(TrainConfig(groove_weight=10.0)) == pytest.approx(-0.4 * 11 / 12, abs=0.006)


def test_a_folder_without_rendered_shards_is_a_clear_error(tmp_path):
    res = subprocess.run([sys.executable, "-m", "facerecon", "train", f"synth_dirs={tmp_path}", "real_dirs=",
                          f"out_dir={tmp_path / 'run'}", "device=cpu"], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert res.returncode != 0 and "no synthetic training samples" in res.stderr
    assert "Traceback" not in res.stderr


def test_the_band_above_a_pseudo_labelled_face_carries_no_mask_loss(tmp_path):
    """The forehead band above MediaPipe's region is stored unlabelled and drops out of the mask loss and IoU."""
    yy, xx = np.mgrid[:64, :64]
    mask = ((xx - 32) / 14) ** 2 + ((yy - 38) / 18) ** 2 <= 1  # rows 20-56
    band = forehead_band(mask)
    assert not (band & mask).any()
    assert np.flatnonzero(band[:, 32]).tolist() == list(range(20 - 7, 20))  # 0.2 x 37 rows above the top
    assert band[:, :20].sum() == 0  # only over the forehead's width
    write_shard(shard_path(tmp_path, 0), [{"image": np.zeros((64, 64, 3), np.uint8), "mask": mask,
                                           "mask_unlabelled": band, "coarse": np.zeros((64, 64), np.float32),
                                           "detail": np.zeros((64, 64), np.float32), "valid_coarse": mask,
                                           "valid_detail": np.zeros((64, 64), bool), "params": {}}], "test band")
    b = ShardData([str(tmp_path)], 0.0).batch(np.array([0]), 64)
    assert b["mask"][0, 0].bool().numpy().tolist() == mask.tolist()
    assert (b["mask_labelled"][0, 0] == 0).numpy().tolist() == band.tolist()
    logits = torch.where(torch.from_numpy(band | mask), 20.0, -20.0)[None, None]  # "face" up into the band
    assert mask_loss(logits, b["mask"], b["mask_labelled"]) < 1e-6
    assert mask_loss(logits, b["mask"], torch.ones_like(logits)) > 0.5  # 20 per band pixel, averaged


def test_shards_of_two_framings_are_not_trained_on_together(tmp_path):
    mask = np.ones((16, 16), bool)
    sample = {"image": np.zeros((16, 16, 3), np.uint8), "mask": mask, "coarse": np.zeros((16, 16), np.float32),
              "detail": np.zeros((16, 16), np.float32), "valid_coarse": mask, "valid_detail": mask, "params": {}}
    write_shard(shard_path(tmp_path / "template", 0), [sample], "test")  # as every shard before the framing was kept
    write_shard(shard_path(tmp_path / "steady", 0), [sample], "test", SMILE_STEADY_FRAMING)
    template, steady, none = (ShardData([str(tmp_path / d)], 0.0) for d in ("template", "steady", "none"))
    assert data_framing(template, none, print) == TEMPLATE_FRAMING
    assert data_framing(steady, steady, print) == SMILE_STEADY_FRAMING
    with pytest.raises(ConfigError, match="framed 2 ways"):
        data_framing(steady, template, print)


def test_a_recipe_file_sets_the_run_and_later_arguments_override_it(tmp_path):
    recipe = tmp_path / "run.conf"
    recipe.write_text("# a comment\nlr=1e-4  # why\n\nsynth_dirs=~/a,~/b\ntrainable=mask_head\nema_decay=0.99\n")
    cfg = parse_overrides([f"@{recipe}", "lr=2e-4"])
    assert cfg.lr == 2e-4 and cfg.ema_decay == 0.99 and cfg.trainable == ["mask_head"]
    assert cfg.synth_dirs == [str(Path.home() / "a"), str(Path.home() / "b")]
    recipe.write_text("lr 1e-4\n")
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides([f"@{recipe}"])
    with pytest.raises(ConfigError, match="unknown setting 'learning_rate'"):
        parse_overrides(["learning_rate=1"])
    with pytest.raises(ConfigError, match="lr=fast"):
        parse_overrides(["lr=fast"])


@pytest.mark.parametrize("recipe", sorted((ROOT / "configs").glob("*.conf")), ids=lambda p: p.stem)
def test_every_shipped_recipe_reads(recipe):
    cfg = parse_overrides([f"@{recipe}"])
    assert cfg.out_dir.startswith(str(Path.home())) and cfg.init_from and cfg.synth_dirs
    if cfg.network_config:  # what a recipe extends the network to is a valid config too
        NetworkConfig.from_dict(json.loads(Path(cfg.network_config).read_text()))


def test_a_missing_init_from_is_an_error_not_a_random_start(tiny_setup, tmp_path):
    res = subprocess.run([sys.executable, "-m", "facerecon", "train", f"synth_dirs={tiny_setup / 'synth'}",
                          "real_dirs=", f"out_dir={tmp_path / 'run'}", f"init_from={tmp_path / 'no-such-run'}",
                          "device=cpu"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 2 and "no-such-run: no such model folder" in res.stderr
    assert "Traceback" not in res.stderr and "random initialisation" not in res.stdout
