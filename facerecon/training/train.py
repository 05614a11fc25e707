"""Training: one readable loop (nanoGPT style). Settings are the TrainConfig fields; a run is a recipe file of
key=value lines (configs/), and key=value arguments after it override its lines.

    facerecon train @configs/stage12.conf
    facerecon train @configs/finetune.conf total_samples=20000 max_minutes=45
    torchrun --nproc_per_node=2 -m facerecon train ...   (data-parallel, gloo on CPU / nccl on GPU, one per rank)

Data: synthetic shards (all three maps) and pseudo-labelled real photos (mask and coarse depth only), held in
memory as rendered (256x256) and resized per batch to the current resolution of the schedule. A checkpoint is
written every few minutes and on exit; a run restarted with the same out_dir resumes exactly where it stopped
(batches are drawn from an RNG seeded by the step, so no data-order state is lost). With no checkpoint, training
starts from init_from: "bundled" (the package's weights, the default), "random", or a model folder, which must
exist: a typo never falls back to a random start.
"""
from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..data.augment import add_thin_occluders, draw_creases
from ..data.relief import CAVITY_PX, split_relief
from ..data.shards import (
    MASK_UNLABELLED,
    VALID_COARSE,
    VALID_DETAIL,
    VALID_SHADING,
    list_shards,
    shard_framing,
    shard_source,
)
from ..model import FaceReconNet, NetworkConfig
from ..model.backends import pick_device
from ..preprocess.align import Framing
from .losses import mask_loss, masked_smooth_l1, shading_loss

CACHE = Path.home() / ".cache" / "facerecon"


@dataclass
class TrainConfig:
    synth_dirs: list[str] = field(default_factory=lambda: [str(CACHE / "data" / "synth_v1")])
    real_dirs: list[str] = field(default_factory=lambda: [str(CACHE / "data" / "real_v5")])
    out_dir: str = str(CACHE / "runs" / "main")
    init_from: str = "bundled"  # used only when out_dir has no checkpoint: bundled, random, or a model folder
    network_config: str = ""  # a config.json: the network of a random start, or of a trained one extended (new
    # parts, another detail band); "" = the shipped network, or the one of init_from
    val_fraction: float = 0.03  # last part of each source, never trained on
    batch_size: int = 16
    real_fraction: float = 0.25  # share of each batch drawn from real photos
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    total_samples: int = 100_000  # length of the cosine schedule
    res_schedule: str = "128:70000,256"  # resolution 128 for the first 70000 samples, then 256
    coarse_weight: float = 1.0
    detail_weight: float = 8.0
    # Smooth-L1 is quadratic for errors below beta. Detail labels are sparse (90% of valid pixels ~0, wrinkles
    # 0.1-0.6 crop px deep): in the linear zone the loss is minimised by the conditional median, which is ~0 where a
    # wrinkle's place is uncertain: with beta 0.05 px the deepest wrinkles came out at a fifth of their depth. A beta
    # that covers the wrinkles' depths makes it the conditional mean, the estimate that maximises correlation.
    detail_beta_px: float = 0.5  # at 256x256; scales with the resolution like the labels
    # Grooves are a few per cent of the skin (the renders' deeper than 0.3 px: 0.07%), and the rest of the detail
    # loss outweighs them: a fine-tune on drawn creases barely learns to read them (docs/quality.md, "Creases drawn
    # with their grooves"). The detail loss weighs a pixel 1 + groove_weight * min(its label's depth / groove_depth_px,
    # 1) where the label lies below 0
    groove_weight: float = 0.0
    groove_depth_px: float = 0.25  # at 256x256
    real_coarse_weight: float = 0.5
    # The real photos' detail signal (losses.shading_loss): the final depth's normals must explain the photo's
    # luminance finer than a Gaussian of shading_band_px (at 256x256) on the skin their pseudo-labels mark (real_v6)
    shading_weight: float = 0.0
    shading_band_px: float = 2.0
    # ... and, where > 0, the light a crease loses by lying below its surroundings (losses.shading_loss's occlusion;
    # the renders' faces draw theirs from SceneConfig.occlusion, 0.3-1), so that a dark line reads as a groove
    shading_occlusion: float = 0.0
    thin_occluders: float = 0.25  # share of crops with hair strands drawn over them, half that with glasses rims
    drawn_creases: float = 0.0  # share of the rendered crops with creases drawn on the skin, their grooves in the
    # label (facerecon.data.augment.draw_creases)
    coarse_shift_invariant: bool = True  # coarse loss ignores each sample's depth offset
    # Flip distillation (issue 27): a model folder (or "bundled") whose flip-averaged outputs (flip_averaged) the
    # network is also pulled towards, with the labels' losses and weights, at flip_teacher_weight: one pass learns
    # what inference's second, mirrored pass adds (docs/speed.md). "" = none
    flip_teacher: str = ""
    flip_teacher_weight: float = 1.0
    trainable: list[str] = field(default_factory=list)  # top-level parts to train (e.g. mask_head); the others
    # stay frozen in eval mode (their batch-norm statistics too); empty = the whole network
    ema_decay: float = 0.0  # >0: also keep an exponential moving average of the weights (this decay per step),
    # which validation and the export then use
    ckpt_minutes: float = 5.0
    max_minutes: float = 0.0  # stop (with a checkpoint) after this long; 0 = run to total_samples
    stop_after_samples: int = 0  # stop (with a checkpoint) once this many samples are seen; 0 = never
    log_every: int = 20
    device: str = "auto"  # auto = cuda when torch sees one (each torchrun rank takes GPU LOCAL_RANK), else cpu
    threads: int = 2  # torch's CPU threads, shared by the ranks
    loader_threads: int = 0  # >0: that many threads build the next batches while the GPU trains on this one
    seed: int = 0
    limit_samples: int = 0  # load at most this many samples per source (tests); 0 = all


class ConfigError(ValueError):
    """A training setting or recipe file that cannot be used; the message says which and why."""


# "~" is expanded in these
PATH_SETTINGS = ("synth_dirs", "real_dirs", "out_dir", "init_from", "network_config", "flip_teacher")


def read_recipe(path: str) -> list[str]:
    """The key=value lines of a recipe file; blank lines and # comments are skipped."""
    try:
        lines = Path(path).expanduser().read_text().splitlines()
    except OSError as e:
        raise ConfigError(f"recipe {path}: {e.strerror or e}") from None
    items = [line.split("#", 1)[0].strip() for line in lines]
    bad = [item for item in items if item and "=" not in item]
    if bad:
        raise ConfigError(f"recipe {path}: lines must be key=value, not {bad[0]!r}")
    return [item for item in items if item]


def parse_overrides(overrides: list[str]) -> TrainConfig:
    """TrainConfig from key=value items; an item @FILE stands for the lines of that recipe file."""
    cfg = TrainConfig()
    names = [f.name for f in dataclasses.fields(cfg)]
    items = [line for item in overrides for line in (read_recipe(item[1:]) if item.startswith("@") else [item])]
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in names:
            raise ConfigError(f"unknown setting {key!r} (settings are key=value; keys: {', '.join(names)})")
        current = getattr(cfg, key)
        try:
            if isinstance(current, bool):
                if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
                    raise ValueError("not a yes/no value")
                parsed = value.lower() in ("1", "true", "yes")
            elif isinstance(current, list):
                parsed = [v.strip() for v in value.split(",") if v.strip()]
            else:
                parsed = type(current)(value.strip())
        except ValueError as e:
            raise ConfigError(f"{key}={value}: {e}") from None
        if key in PATH_SETTINGS:
            parsed = [str(Path(v).expanduser()) for v in parsed] if isinstance(parsed, list) else \
                (str(Path(parsed).expanduser()) if parsed.startswith("~") else parsed)
        setattr(cfg, key, parsed)
    return cfg


def resolution_at(schedule: str, samples_seen: int) -> int:
    for part in schedule.split(","):
        res, _, until = part.partition(":")
        if not until or samples_seen < int(until):
            return int(res)
    return int(schedule.split(",")[-1].split(":")[0])


class ShardData:
    """All samples of some shard folders in memory (uint8 / float16), split into train and validation."""

    def __init__(self, dirs: list[str], val_fraction: float, limit: int = 0):
        parts = {k: [] for k in ("image", "mask", "coarse", "detail", "valid")}
        self.sources: set[str] = set()  # what made the shards (engine or label versions), for the log
        self.framings: set[Framing] = set()  # how their crops were framed: the network learns it
        for d in dirs:
            for path in list_shards(Path(d)):
                self.sources.add(shard_source(path))
                self.framings.add(shard_framing(path))
                with np.load(path) as z:
                    for k in parts:
                        parts[k].append(z[k])
                if limit and sum(len(a) for a in parts["image"]) >= limit:
                    break
        self.arrays = {k: np.concatenate(v)[:limit or None] if v else None for k, v in parts.items()}
        n = len(self.arrays["image"]) if parts["image"] else 0
        n_val = int(round(n * val_fraction))
        self.train_idx, self.val_idx = np.arange(n - n_val), np.arange(n - n_val, n)

    def __len__(self) -> int:
        return len(self.train_idx)

    def batch(self, idx: np.ndarray, res: int, rng: np.random.Generator | None = None,
              thin_occluders: float = 0.0, band_px: float = 0.0, creases: float = 0.0,
              wrinkles_whole: bool = False) -> dict[str, torch.Tensor]:
        """Tensors at resolution res (depth values rescaled with it); rng given = augment (flip, colour, and
        facerecon.data.augment's creases on a share `creases` of the images whose detail is labelled, then its thin
        occluders on a share thin_occluders); band_px > 0 = the depth labels split by frequency there
        (facerecon.data.relief; wrinkles_whole as split_relief takes it)."""
        a = self.arrays
        face, labelled = a["mask"][idx] == 1, a["mask"][idx] != MASK_UNLABELLED
        photos = a["image"][idx]
        coarse, detail = a["coarse"][idx].astype(np.float32), a["detail"][idx].astype(np.float32)
        valid_coarse, valid_detail = (a["valid"][idx] & VALID_COARSE) > 0, (a["valid"][idx] & VALID_DETAIL) > 0
        images = photos
        if rng is not None:
            images, detail = draw_creases(rng, images, detail, face & valid_detail, creases)
            images = add_thin_occluders(rng, images, face, thin_occluders)
        valid_shading = (a["valid"][idx] & VALID_SHADING) > 0
        if rng is not None:  # the shading loss reads the skin only: not the strands and rims drawn over it
            valid_shading &= (images == photos).all(-1)
        image = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        if band_px > 0:
            for k in range(len(idx)):
                coarse[k], detail[k], valid_detail[k] = split_relief(coarse[k], detail[k], valid_coarse[k],
                                                                     valid_detail[k], band_px, wrinkles_whole)
        maps = torch.from_numpy(np.stack([face, coarse, detail, labelled, valid_coarse, valid_detail, valid_shading],
                                         1).astype(np.float32))
        if rng is not None:
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            image[flip], maps[flip] = image[flip].flip(-1), maps[flip].flip(-1)
            gain = torch.from_numpy(rng.normal(1, 0.08, (len(idx), 3, 1, 1)).astype(np.float32))
            gamma = torch.from_numpy(rng.uniform(0.8, 1.25, (len(idx), 1, 1, 1)).astype(np.float32))
            image = (image.clamp(0, 1) ** gamma * gain).clamp(0, 1)
        size = image.shape[-1]
        if res != size:
            image = F.interpolate(image, size=(res, res), mode="area")
            maps = F.interpolate(maps, size=(res, res), mode="area")
            maps[:, 1:3] *= res / size  # depth is in crop pixels: it scales with the crop
            maps[:, 3:] = (maps[:, 3:] > 0.999).float()  # valid only where every source pixel was valid
        return {"image": image, "mask": maps[:, 0:1], "coarse": maps[:, 1:2], "detail": maps[:, 2:3],
                "mask_labelled": maps[:, 3:4], "valid_coarse": maps[:, 4:5], "valid_detail": maps[:, 5:6],
                "valid_shading": maps[:, 6:7]}


class BatchPrefetcher:
    """Builds the batches of the coming steps on `threads` threads while the current step trains; threads=0 builds
    each when it is asked for. Threads are enough: NumPy, OpenCV and torch's CPU kernels release the GIL."""

    def __init__(self, make: Callable[[int, int], dict[str, torch.Tensor]], threads: int):
        self.make, self.threads = make, threads
        self.pool = ThreadPoolExecutor(threads) if threads else None
        self.pending: dict[int, Future] = {}

    def get(self, step: int, res_ahead: Callable[[int], int]) -> dict[str, torch.Tensor]:
        """The batch of `step`; res_ahead(k) is the resolution k steps after it."""
        if self.pool is None:
            return self.make(step, res_ahead(0))
        for k in range(2 * self.threads):
            if step + k not in self.pending:
                self.pending[step + k] = self.pool.submit(self.make, step + k, res_ahead(k))
        return self.pending.pop(step).result()


@torch.no_grad()
def flip_averaged(teacher: torch.nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What inference's flip averaging makes of images B x 3 x H x W: teacher's outputs (mask logits, coarse depth,
    detail; B x 1 x H x W each) on the images and on their mirrors, the latter mirrored back, averaged."""
    n = len(image)
    outs = teacher(torch.cat([image, image.flip(-1)]))
    return tuple((o[:n] + o[n:].flip(-1)) / 2 for o in outs)


def map_losses(logits: torch.Tensor, coarse: torch.Tensor, detail: torch.Tensor, b: dict[str, torch.Tensor],
               cfg: TrainConfig, coarse_weights: torch.Tensor, res: int) -> tuple[torch.Tensor, ...]:
    """The mask, coarse and detail losses of the outputs against the maps of b (labels, or a teacher's) at the
    input resolution res (the depths' units)."""
    lm = mask_loss(logits, b["mask"], b["mask_labelled"])
    lc = masked_smooth_l1(coarse, b["coarse"], b["valid_coarse"] * coarse_weights.view(-1, 1, 1, 1), scale=res / 64,
                          shift_invariant=cfg.coarse_shift_invariant)
    unit_px = 0.05  # at 256x256: the detail loss sees O(1) numbers
    weight = b["valid_detail"]
    if cfg.groove_weight:
        weight = weight * (1 + cfg.groove_weight * (-b["detail"] / (cfg.groove_depth_px * res / 256)).clamp(0, 1))
    ld = masked_smooth_l1(detail, b["detail"], weight, beta=cfg.detail_beta_px / unit_px, scale=unit_px * res / 256)
    return lm, lc, ld


def compute_losses(model: torch.nn.Module, b: dict[str, torch.Tensor], cfg: TrainConfig,
                   coarse_weights: torch.Tensor, teacher: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    logits, coarse, detail = model(b["image"])
    res = b["image"].shape[-1]
    lm, lc, ld = map_losses(logits, coarse, detail, b, cfg, coarse_weights, res)
    total = lm + cfg.coarse_weight * lc + cfg.detail_weight * ld
    losses = {"mask": lm, "coarse": lc, "detail": ld}
    if teacher is not None:
        # the teacher's maps stand in for every sample's labels, over its face (real photos get a detail target)
        t_logits, t_coarse, t_detail = flip_averaged(teacher, b["image"])
        face, everywhere = (t_logits > 0).float(), torch.ones_like(t_logits)
        taught = {"mask": torch.sigmoid(t_logits), "mask_labelled": everywhere, "coarse": t_coarse,
                  "valid_coarse": face, "detail": t_detail, "valid_detail": face}
        tm, tc, td = map_losses(logits, coarse, detail, taught, cfg, torch.ones(len(logits), device=logits.device),
                                res)
        losses["flip"] = tm + cfg.coarse_weight * tc + cfg.detail_weight * td
        total = total + cfg.flip_teacher_weight * losses["flip"]
    if cfg.shading_weight:
        # it trains the detail alone: through the coarse head it bent the real faces' coarse shape (a first run of
        # stage 14: their coarse error against the pseudo-labels 0.83 -> 3.72 px), which their labels decide
        losses["shading"] = shading_loss(b["image"], coarse, coarse.detach() + detail, b["valid_shading"],
                                         cfg.shading_band_px * res / 256, occlusion=cfg.shading_occlusion,
                                         cavity_px=CAVITY_PX * res / 256)
        total = total + cfg.shading_weight * losses["shading"]
    return {"loss": total, **losses}


@torch.no_grad()
def validate(model: torch.nn.Module, data: ShardData, idx: np.ndarray, res: int,
             batch_size: int = 32) -> dict[str, float]:
    """Mask IoU (where labelled), coarse MAE (crop px at 256) and detail correlation (per face, then averaged, as
    `evaluate` does: pooled over all pixels, the faces with deep wrinkles would outweigh the rest) on the samples idx,
    unaugmented. The model's train / eval modes are left as they were."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    device = next(model.parameters()).device
    inter = union = mae_sum = mae_n = 0.0
    corrs = []
    for i in range(0, len(idx), batch_size):
        b = {k: v.to(device) for k, v in data.batch(idx[i:i + batch_size], res,
                                                    band_px=model.config.detail_band_px,
                                                    wrinkles_whole=model.config.detail_wrinkles_whole).items()}
        logits, coarse, detail = model(b["image"])
        pred = (logits > 0) & (b["mask_labelled"] > 0)
        gt = b["mask"] > 0.5
        inter += float((pred & gt).sum())
        union += float((pred | gt).sum())
        v = b["valid_coarse"] > 0
        # compare shapes, not offsets: both maps zero-mean over the valid region of each sample
        for k in range(len(coarse)):
            if v[k].any():
                p, t = coarse[k][v[k]], b["coarse"][k][v[k]]
                mae_sum += float(((p - p.mean()) - (t - t.mean())).abs().sum()) * 256 / res
                mae_n += float(v[k].sum())
        vd = b["valid_detail"] > 0
        for k in range(len(detail)):
            p, t = detail[k][vd[k]], b["detail"][k][vd[k]]
            if len(p) > 100 and p.std() > 0 and t.std() > 0:
                corrs.append(float(torch.corrcoef(torch.stack([p, t]))[0, 1]))
    for m, training in modes.items():
        m.train(training)
    return {"mask_iou": inter / max(union, 1), "coarse_mae_px": mae_sum / max(mae_n, 1),
            "detail_corr": float(np.mean(corrs)) if corrs else float("nan")}


def freeze_all_but(model: FaceReconNet, trainable: list[str]) -> None:
    """Only the named top-level parts (backbone, fpn, mask_head, coarse_head, detail_head) keep gradients; the
    others are put in eval mode, so that their outputs are exactly those of inference. No names: all train."""
    parts = dict(model.named_children())
    unknown = set(trainable) - set(parts)
    if unknown:
        raise ConfigError(f"trainable: unknown network part(s) {sorted(unknown)}; parts: {sorted(parts)}")
    model.train()
    for name, part in parts.items():
        if trainable and name not in trainable:
            part.eval()
            part.requires_grad_(False)


def model_folder(setting: str, value: str) -> Path:
    """The model folder a setting names: "bundled" (the package's weights) or a folder, which must exist."""
    from ..model.hub import BUNDLED_WEIGHTS

    source = BUNDLED_WEIGHTS if value == "bundled" else Path(value)
    if not value or not source.is_dir():
        raise ConfigError(f"{setting}={value}: no such model folder (config.json + model.safetensors); "
                          f"train the stage it names first, or say {setting}=bundled")
    return source


def initial_model(cfg: TrainConfig, ckpt: dict | None, log: Callable[[str], None]) -> FaceReconNet:
    """The network a run starts from: its checkpoint's, else init_from's (bundled, random or a model folder)."""
    from ..model.hub import load_pretrained

    if ckpt:
        model = FaceReconNet(NetworkConfig.from_dict(ckpt["network_config"]))
        model.load_state_dict(ckpt["model"])
        log(f"resumed from {cfg.out_dir} at step {ckpt['step']} ({ckpt['samples_seen']} samples)")
        return model
    if cfg.init_from == "random":
        config = NetworkConfig()
        if cfg.network_config:
            config = NetworkConfig.from_dict(json.loads(Path(cfg.network_config).read_text()))
        log("random initialisation")
        return FaceReconNet(config)
    source = model_folder("init_from", cfg.init_from)
    log(f"initialised from {source}")
    trained = load_pretrained(source, dtype=torch.float32)
    if not cfg.network_config:
        return trained
    return extended(trained, NetworkConfig.from_dict(json.loads(Path(cfg.network_config).read_text())), log)


def extended(trained: FaceReconNet, config: NetworkConfig, log: Callable[[str], None]) -> FaceReconNet:
    """A network of `config` holding `trained`'s weights, where config only adds parts (e.g. the full-resolution
    stage), changes what the outputs mean (detail_band_px, detail_wrinkles_whole), gives the full-resolution stage
    its other form (full_res_blocks, which also takes the detail U-Net's own output convolution's place) or drops
    the feature pyramid's finest smoothing (fpn_smooth_finest); the added and re-formed parts keep their
    initialisation."""
    model = FaceReconNet(config)
    reformed = trained.config.full_res_detail and config.full_res_blocks != trained.config.full_res_blocks
    dropped = tuple(prefix for prefix, drop in (("full_res.", reformed),
                                                ("detail_head.out.", model.detail_head.out is None),
                                                ("fpn.smooth.0.", not config.fpn_smooth_finest)) if drop)
    state = trained.state_dict()
    kept = {k: v for k, v in state.items() if not k.startswith(dropped)}
    gone = sorted({prefix for prefix in dropped for k in state if k.startswith(prefix)})
    try:
        missing, unexpected = model.load_state_dict(kept, strict=False)
    except RuntimeError as e:  # a tensor of another shape: config changes a trained part
        raise ConfigError(f"network_config changes trained parts of the network: {e}") from None
    if unexpected:
        raise ConfigError(f"network_config drops trained parts of the network: {unexpected[:5]}")
    log(f"network extended by {sorted({k.split('.')[0] for k in missing})}{' (full_res re-formed)' * reformed}, "
        f"detail band {config.detail_band_px} px{' (wrinkles whole)' * config.detail_wrinkles_whole}"
        f"{f', dropped {gone}' if gone else ''}")
    return model


def data_framing(synth: ShardData, real: ShardData, log: Callable[[str], None]) -> Framing:
    """The one framing of all training shards, which the trained network is then run with (its config says it)."""
    framings = synth.framings | real.framings
    if len(framings) > 1:
        raise ConfigError(f"the training shards were framed {len(framings)} ways ({', '.join(map(str, framings))}): "
                          "train on shards of one framing (re-render or re-label the older ones)")
    framing = framings.pop()
    log(f"crops framed with landmark weights {framing.weights}, scale {framing.scale}")
    return framing


def save_checkpoint(out: Path, cfg: TrainConfig, model: FaceReconNet, optimizer: torch.optim.Optimizer,
                    ema: AveragedModel | None, step: int, samples_seen: int) -> None:
    """out/checkpoint.pt (written atomically: everything a resume needs) and out/export/ (the weights that are
    shipped: the moving average when there is one)."""
    from ..model.hub import save_pretrained

    ckpt_path = out / "checkpoint.pt"
    tmp = ckpt_path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "samples_seen": samples_seen, "network_config": model.config.to_dict(),
                "train_config": dataclasses.asdict(cfg), **({"ema": ema.state_dict()} if ema else {})}, tmp)
    os.replace(tmp, ckpt_path)
    save_pretrained(ema.module if ema else model, out / "export",
                    notes={"samples_seen": samples_seen, "step": step})


def lr_at(cfg: TrainConfig, step: int, samples_seen: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(samples_seen / cfg.total_samples, 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def main(overrides: list[str] | None = None) -> int:
    cfg = parse_overrides(overrides or [])
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = torch.device(pick_device(cfg.device))
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    torch.set_num_threads(max(1, cfg.threads // world))
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = (lambda msg: print(msg, flush=True)) if rank == 0 else (lambda msg: None)

    synth = ShardData(cfg.synth_dirs, cfg.val_fraction, cfg.limit_samples)
    if not len(synth):
        raise ConfigError(f"no synthetic training samples in {cfg.synth_dirs} (shard_*.npz): render them with "
                         "`python -m facerecon synth --out DIR ...` and pass synth_dirs=DIR")
    real = ShardData([d for d in cfg.real_dirs if d and Path(d).exists()], cfg.val_fraction, cfg.limit_samples)
    log(f"data: {len(synth)} synthetic ({', '.join(sorted(synth.sources))}) + {len(real)} real training samples "
        f"({', '.join(sorted(real.sources)) or 'none'})")

    ckpt_path = out / "checkpoint.pt"
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True) if ckpt_path.exists() else None
    model = initial_model(cfg, ckpt, log)
    model.config.crop_framing = data_framing(synth, real, log).to_list()
    teacher = None
    if cfg.flip_teacher:
        from ..model.hub import load_pretrained

        teacher = load_pretrained(model_folder("flip_teacher", cfg.flip_teacher), dtype=torch.float32)
        teacher.to(device).eval().requires_grad_(False)
        log(f"flip teacher: {cfg.flip_teacher}")
    step, samples_seen = (ckpt["step"], ckpt["samples_seen"]) if ckpt else (0, 0)
    model.to(device)
    freeze_all_but(model, cfg.trainable)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True) \
        if cfg.ema_decay else None  # a run resumed without one starts it from the weights it resumes
    if ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema and "ema" in ckpt:
            ema.load_state_dict(ckpt["ema"])
    shipped = ema.module if ema else model  # the weights that are validated and exported
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None) \
        if distributed else model

    n_real = int(round(cfg.batch_size * cfg.real_fraction)) if len(real) else 0
    n_synth = cfg.batch_size - n_real
    coarse_w = torch.tensor([1.0] * n_synth + [cfg.real_coarse_weight] * n_real, device=device)

    def make_batch(step: int, res: int) -> dict[str, torch.Tensor]:
        """The batch of a step depends on nothing but (seed, step, rank): a resumed run draws the same batches."""
        rng = np.random.default_rng([cfg.seed, step, rank])
        band, whole = model.config.detail_band_px, model.config.detail_wrinkles_whole
        parts = [synth.batch(rng.choice(synth.train_idx, n_synth), res, rng, cfg.thin_occluders, band,
                             cfg.drawn_creases, whole)]
        if n_real:
            parts.append(real.batch(rng.choice(real.train_idx, n_real), res, rng, cfg.thin_occluders, band))
        b = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        return {k: v.pin_memory() for k, v in b.items()} if device.type == "cuda" else b

    # as many training samples as the validation split holds, spread over the training split: the two splits'
    # metrics side by side tell overfitting (train better) from underfitting (alike)
    fit_idx = synth.train_idx[np.linspace(0, len(synth) - 1, len(synth.val_idx)).astype(int)]
    batches = BatchPrefetcher(make_batch, cfg.loader_threads)
    t_start = last_ckpt = time.time()
    while samples_seen < cfg.total_samples:
        res = resolution_at(cfg.res_schedule, samples_seen)
        b = batches.get(step, lambda k, seen=samples_seen: resolution_at(cfg.res_schedule,
                                                                         seen + k * cfg.batch_size * world))
        b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
        for g in optimizer.param_groups:
            g["lr"] = lr_at(cfg, step, samples_seen)
        losses = compute_losses(net, b, cfg, coarse_w, teacher)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if ema:
            ema.update_parameters(model)
        step += 1
        samples_seen += cfg.batch_size * world
        elapsed = (time.time() - t_start) / 60
        if step % cfg.log_every == 0:
            log(json.dumps({"step": step, "samples": samples_seen, "res": res, "minutes": round(elapsed, 2),
                            "lr": round(lr_at(cfg, step, samples_seen), 6),
                            **{k: round(v.item(), 4) for k, v in losses.items()}}))
        stop = (cfg.max_minutes and elapsed >= cfg.max_minutes) or (
            cfg.stop_after_samples and samples_seen >= cfg.stop_after_samples)
        if time.time() - last_ckpt > cfg.ckpt_minutes * 60 or stop or samples_seen >= cfg.total_samples:
            if rank == 0:
                save_checkpoint(out, cfg, model, optimizer, ema, step, samples_seen)
            last_ckpt = time.time()
            if rank == 0:
                log(json.dumps({"step": step, "val_synth": validate(shipped, synth, synth.val_idx, res),
                                "train_synth": validate(shipped, synth, fit_idx, res),
                                "val_real": validate(shipped, real, real.val_idx, res) if len(real) else None}))
        if stop:
            break
    if distributed:
        # every rank must hold the same weights: gather a digest of each rank's parameters and log them
        digest = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in model.parameters())).hexdigest()
        digests = [None] * world
        dist.all_gather_object(digests, digest)
        log(json.dumps({"rank_weight_digests": digests, "ranks_in_sync": len(set(digests)) == 1}))
        dist.barrier()  # no rank tears gloo down while another is still inside the gather
        # DDP's reducer holds the process group too: drop it first, so gloo's threads stop now and not during
        # interpreter shutdown, where they abort the process ("terminate called without an active exception")
        del net
        gc.collect()
        dist.destroy_process_group()
    return 0
