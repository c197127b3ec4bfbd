"""The training loop: one FCN variant per run, resumable, mixed precision, optionally distributed.

The paper's staged recipe is three runs: FCN-32s, then FCN-16s initialised from it, then
FCN-8s initialised from the 16s (see :func:`fcn_viewer.train.family.train_family`).
"""

from __future__ import annotations

import csv
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from fcn_viewer.data import open_dataset
from fcn_viewer.errors import WeightsError
from fcn_viewer.metrics import ConfusionMatrix
from fcn_viewer.model.fcn import FCN, build_fcn
from fcn_viewer.train.augment import AugmentConfig, augment_pair
from fcn_viewer.train.checkpoint import load_checkpoint, save_checkpoint
from fcn_viewer.train.config import TrainConfig
from fcn_viewer.train.progress import ProgressLine
from fcn_viewer.weights.meta import Preprocessing

# Layers a finer variant adds: zero-initialised when growing from a coarser net, as in the paper.
SKIP_SCORE_LAYERS = ("score_pool4", "score_pool3")


@dataclass
class RunResult:
    run_dir: Path
    finished: bool
    epoch: int
    history: list[dict[str, Any]]


class _StageLogits(nn.Module):
    """Training view of an FCN: returns the logits of every stage, finest first (DDP wraps this)."""

    def __init__(self, fcn: FCN) -> None:
        super().__init__()
        self.fcn = fcn

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.fcn.forward_stages(x)
        return [out.logits(stage) for stage in reversed(out.stages)]


def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _device(choice: str, rank: int) -> torch.device:
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        index = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device(choice)


def load_split(data: Path, split: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The whole split in memory as (3×H×W uint8, H×W uint8) tensors: CamVid is ~200 MB."""
    dataset = open_dataset(data, split)
    pairs = []
    for index in range(len(dataset)):
        image, label = dataset[index]
        pairs.append((torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(label)))
    return pairs


def median_frequency_weights(
    labels: list[torch.Tensor], num_classes: int, ignore_index: int, cap: float
) -> torch.Tensor:
    """SegNet's median-frequency balancing: median(freq) / freq(c), where freq(c) counts only the
    images that contain c; capped so rare classes don't dominate."""
    pixels = torch.zeros(num_classes, dtype=torch.float64)
    image_pixels = torch.zeros(num_classes, dtype=torch.float64)
    for label in labels:
        valid = label[label != ignore_index].long()
        counts = torch.bincount(valid.flatten(), minlength=num_classes)[:num_classes].double()
        pixels += counts
        image_pixels += (counts > 0).double() * valid.numel()
    frequency = pixels / image_pixels.clamp(min=1)
    present = frequency > 0
    weights = torch.ones(num_classes, dtype=torch.float64)
    weights[present] = frequency[present].quantile(0.5) / frequency[present]
    return weights.clamp(max=cap).float()


def initialise_from(model: FCN, path: Path) -> list[str]:
    """Copies every same-named, same-shaped tensor from a coarser net's checkpoint or weights file;
    the skip score layers it lacks start at zero, so the finer net starts as the coarser one."""
    from fcn_viewer.weights.loader import load_weights_file

    if path.suffix == ".pt":
        source = load_checkpoint(path)["model"]
    else:
        source = load_weights_file(path).model.state_dict()
    target = model.state_dict()
    copied = [k for k, v in source.items() if k in target and target[k].shape == v.shape]
    if not any(k.startswith("conv1_1") for k in copied):
        raise WeightsError(f"{path}: none of its layers fit this network")
    with torch.no_grad():
        for name in SKIP_SCORE_LAYERS:
            layer = getattr(model, name, None)
            if layer is not None and f"{name}.weight" not in copied:
                layer.weight.zero_()
                layer.bias.zero_()
        model.load_state_dict({**target, **{k: source[k] for k in copied}})
    return copied


def _parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases, BatchNorm and the (bilinear-initialised) deconvolutions."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        plain = parameter.ndim <= 1 or name.split(".")[-2].startswith("upscore")
        (no_decay if plain else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.inference_mode()
def validate(
    model: FCN, pairs: list[tuple[torch.Tensor, torch.Tensor]], preprocessing: Preprocessing, device: torch.device,
    num_classes: int, ignore_index: int,
) -> dict[str, float]:
    """Mean IoU of every stage on full-size images."""
    model.eval()
    matrices = {stage: ConfusionMatrix(num_classes, ignore_index) for stage in model.config.stages}
    for image, label in pairs:
        x = preprocessing.normalize(image.to(device).float().unsqueeze(0) / 255.0)
        out = model.forward_stages(x)
        for stage, matrix in matrices.items():
            matrix.update(out.logits(stage)[0].argmax(0).cpu(), label)
    return {stage: float(m.summary()["mean_iou"]) for stage, m in matrices.items()}


def train(config: TrainConfig, command: str = "") -> RunResult:
    """Trains (or resumes) one variant; writes last.pt each epoch, log.csv, and returns the history."""
    rank, world = _distributed()
    device = _device(config.device, rank)
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    use_bf16 = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    preprocessing = config.preprocessing()
    train_pairs = load_split(config.data, "train")
    val_pairs = load_split(config.data, "val") if rank == 0 else []
    weights = median_frequency_weights([p[1] for p in train_pairs], config.num_classes, config.ignore_index,
                                       config.class_weight_cap) if config.class_weight_cap > 0 else None

    model = build_fcn(config.fcn_config()).to(device).to(memory_format=torch.channels_last)
    run_dir = config.run_dir
    last = run_dir / "last.pt"
    generator = torch.Generator()
    optimizer = torch.optim.AdamW(_parameter_groups(model, config.weight_decay), lr=config.lr)
    steps_per_epoch = max(1, len(train_pairs) // (config.batch_size * world))
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=0.05, anneal_strategy="cos"
    )
    start_epoch, history = 0, []
    if last.exists():
        state = load_checkpoint(last)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history = int(state["epoch"]), list(state["history"])
    elif config.init is not None:
        initialise_from(model, config.init)

    trainable: nn.Module = _StageLogits(model)
    if world > 1:
        if config.fcn_config().batch_norm and device.type == "cuda":  # SyncBatchNorm runs on GPUs only
            trainable = nn.SyncBatchNorm.convert_sync_batchnorm(trainable)
        trainable = nn.parallel.DistributedDataParallel(trainable, device_ids=[device.index] if device.index is not None else None)
    stage_weights = (1.0, *config.aux_weights)
    class_weights = weights.to(device) if weights is not None else None
    augment = AugmentConfig(crop=config.crop, min_scale=config.min_scale, max_scale=config.max_scale)
    deadline = time.monotonic() + config.time_limit_min * 60 if config.time_limit_min else math.inf

    epoch = start_epoch
    for epoch in range(start_epoch + 1, config.epochs + 1):
        model.train()
        # Every random stream is seeded from (seed, epoch[, rank]): the shuffled order is the same on
        # all ranks (each takes its own shard) and a resumed run repeats an uninterrupted one exactly.
        order = torch.randperm(len(train_pairs), generator=generator.manual_seed(config.seed * 7919 + epoch))
        order = order[rank::world]
        generator.manual_seed((config.seed * 7919 + epoch) * 1009 + rank + 1)
        torch.manual_seed((config.seed * 7919 + epoch) * 1013 + rank)
        bar = ProgressLine(steps_per_epoch, f"{config.variant} epoch {epoch}/{config.epochs}", enabled=rank == 0)
        losses = []
        started = time.perf_counter()
        for step in range(steps_per_epoch):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            images, labels = zip(*(augment_pair(*train_pairs[i], augment, generator, config.ignore_index) for i in batch))
            x = preprocessing.normalize(torch.stack(images).to(device, non_blocking=True)).contiguous(
                memory_format=torch.channels_last)
            y = torch.stack(labels).to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext():
                stage_logits = trainable(x)
            loss = stage_loss(stage_logits, y, stage_weights, class_weights, config.ignore_index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.update(step + 1, f"loss {np.mean(losses[-20:]):.3f}")
        record: dict[str, Any] = {
            "variant": config.variant, "epoch": epoch, "lr": scheduler.get_last_lr()[0],
            "train_loss": float(np.mean(losses)), "seconds": time.perf_counter() - started,
        }
        if rank == 0 and (epoch % config.val_every == 0 or epoch == config.epochs):
            record.update({f"val_miou_{s}": v for s, v in validate(
                model, val_pairs, preprocessing, device, config.num_classes, config.ignore_index).items()})
            print("  val mIoU " + "  ".join(f"{k[9:]} {100 * v:.1f}" for k, v in record.items()
                                             if k.startswith("val_miou_")), flush=True)
        history.append(record)
        if rank == 0:
            save_checkpoint(last, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch,
                "history": history, "config": _plain(asdict(config)), "command": command,
            })
            write_log(run_dir / "log.csv", history)
        if time.monotonic() > deadline and epoch < config.epochs:
            break
    if world > 1:
        dist.barrier()
    return RunResult(run_dir, epoch >= config.epochs, epoch, history)


def stage_loss(
    stage_logits: list[torch.Tensor], target: torch.Tensor, stage_weights: tuple[float, ...],
    class_weights: torch.Tensor | None, ignore_index: int,
) -> torch.Tensor:
    """Cross-entropy of the finest output plus weighted auxiliary losses of the coarser stages."""
    losses = [
        weight * F.cross_entropy(logits.float(), target, weight=class_weights, ignore_index=ignore_index)
        for weight, logits in zip(stage_weights, stage_logits)
        if weight > 0
    ]
    return torch.stack(losses).sum()


def _plain(value: Any) -> Any:
    """Config values as str/int/float/list/dict only, so checkpoints stay loadable with weights_only."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_log(path: Path, history: list[dict[str, Any]]) -> None:
    columns = ["variant", "epoch", "lr", "train_loss", "val_miou_32s", "val_miou_16s", "val_miou_8s", "seconds"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
