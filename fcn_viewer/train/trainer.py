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

from fcn_viewer.bf16 import cpu_has_native_bf16
from fcn_viewer.data import open_dataset
from fcn_viewer.errors import WeightsError
from fcn_viewer.metrics import ConfusionMatrix
from fcn_viewer.model.fcn import FCN, build_fcn
from fcn_viewer.model.stages import FINAL_STAGE_OF_VARIANT, STAGES
from fcn_viewer.model.upsample import bilinear_weight
from fcn_viewer.train.augment import AugmentConfig, ResidentSplit, augment_batch
from fcn_viewer.train.checkpoint import load_checkpoint, save_checkpoint
from fcn_viewer.train.config import TrainConfig
from fcn_viewer.train.progress import ProgressLine
from fcn_viewer.weights.meta import Preprocessing

# Layers a finer variant adds: zero-initialised when growing from a coarser net, as in the paper.
SKIP_SCORE_LAYERS = ("score_pool4", "score_pool3")


# Train images held out for the in-training check come from this fixed shuffle, the same for every seed.
HOLDOUT_SEED = 20150607


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


def split_holdout(
    pairs: list[tuple[torch.Tensor, torch.Tensor]], count: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[tuple[torch.Tensor, torch.Tensor]]]:
    """(train, held out): ``count`` train images set aside to judge training choices, so val is never used to tune."""
    if not 0 <= count < len(pairs):
        raise ValueError(f"--holdout {count}: the train split has {len(pairs)} images")
    chosen = set(torch.randperm(len(pairs), generator=torch.Generator().manual_seed(HOLDOUT_SEED))[:count].tolist())
    return ([p for i, p in enumerate(pairs) if i not in chosen], [p for i, p in enumerate(pairs) if i in chosen])


def resolve_amp(amp: str, device: torch.device) -> bool:
    """Whether to train in bf16 autocast: 'auto' uses it on GPUs and on CPUs with native bf16 instructions."""
    if amp != "auto":
        return amp == "bf16"
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())


def fix_final_upsampling(model: FCN) -> str:
    """The net's last ×32/×16/×8 deconvolution becomes a fixed bilinear kernel, as in the reference nets
    (``lr_mult: 0``); the ×2 deconvolutions stay learnable. Returns the layer's name."""
    name = STAGES[FINAL_STAGE_OF_VARIANT[model.config.fusion]].final_layer
    layer = getattr(model, name)
    with torch.no_grad():
        layer.weight.copy_(bilinear_weight(layer.in_channels, layer.kernel_size[0]))
    layer.weight.requires_grad_(False)
    return name


def initialise_from(model: FCN, path: Path) -> list[str]:
    """Copies every same-named, same-shaped tensor from a coarser net's checkpoint or weights file, except the
    fixed final upsampling; the skip score layers it lacks start at zero, so the finer net starts as the coarser."""
    from fcn_viewer.weights.loader import FileSource, load_model

    if path.suffix == ".pt":
        source = load_checkpoint(path)["model"]
    else:
        source = load_model(FileSource(Path(path))).model.state_dict()
    target = model.state_dict()
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    copied = [k for k, v in source.items() if k in target and target[k].shape == v.shape and k not in frozen]
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
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
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


@dataclass
class _Run:
    """What one training run works with, set up once by :func:`_start_run` and used by every epoch."""

    config: TrainConfig
    rank: int
    world: int
    device: torch.device
    use_bf16: bool
    preprocessing: Preprocessing
    resident: ResidentSplit
    val_pairs: list[tuple[torch.Tensor, torch.Tensor]]
    # "val", or "holdout" when train images are held out to judge the run (then val is not read).
    check_split: str
    model: FCN
    trainable: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    steps_per_epoch: int
    stage_weights: tuple[float, ...]
    class_weights: torch.Tensor | None
    augment: AugmentConfig
    start_epoch: int
    history: list[dict[str, Any]]
    step_count: int
    # When the run would have started had it never been interrupted (for a time budget).
    session_start: float

    @property
    def last(self) -> Path:
        return self.config.run_dir / "last.pt"

    def progress(self) -> float:
        """How far through the schedule: steps done, or the share of the time budget spent."""
        if self.config.time_budget_min:
            return min(1.0, (time.monotonic() - self.session_start) / (self.config.time_budget_min * 60))
        return min(1.0, self.step_count / (self.steps_per_epoch * self.config.epochs))

    def budget_spent(self) -> bool:
        return bool(self.config.time_budget_min) and self.progress() >= 1.0


def train(config: TrainConfig, command: str = "") -> RunResult:
    """Trains (or resumes) one variant; writes last.pt each epoch, log.csv, and returns the history."""
    run = _start_run(config)
    deadline = time.monotonic() + config.time_limit_min * 60 if config.time_limit_min else math.inf
    epoch = run.start_epoch
    budget_spent = run.budget_spent()  # resumed after its time budget: nothing is left to train
    last_epoch = run.start_epoch if budget_spent else config.epochs
    for epoch in range(run.start_epoch + 1, last_epoch + 1):
        record = _train_epoch(run, epoch)
        budget_spent = run.budget_spent()
        if run.rank == 0 and (epoch % config.val_every == 0 or epoch == config.epochs or budget_spent):
            _validate_epoch(run, record)
        run.history.append(record)
        if run.rank == 0:
            _save_checkpoint(run, epoch, command)
        if budget_spent or (time.monotonic() > deadline and epoch < config.epochs):
            break
    if run.world > 1:
        dist.barrier()
    return RunResult(config.run_dir, epoch >= config.epochs or budget_spent, epoch, run.history)


def _start_run(config: TrainConfig) -> _Run:
    """Data, model and optimiser of a run, resumed from last.pt when there is one."""
    rank, world = _distributed()
    if config.time_budget_min and world > 1:
        raise ValueError("a time budget trains in one process: ranks would stop at different epochs")
    device = _device(config.device, rank)
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    use_bf16 = resolve_amp(config.amp, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    train_pairs = load_split(config.data, "train")
    if config.holdout:
        train_pairs, check_pairs = split_holdout(train_pairs, config.holdout)
    else:
        check_pairs = load_split(config.data, "val") if rank == 0 else []
    weights = median_frequency_weights([p[1] for p in train_pairs], config.num_classes, config.ignore_index,
                                       config.class_weight_cap) if config.class_weight_cap > 0 else None

    resident = ResidentSplit.stack(train_pairs, config.ignore_index).to(device)
    model = build_fcn(config.fcn_config()).to(device).to(memory_format=torch.channels_last)
    fix_final_upsampling(model)
    last = config.run_dir / "last.pt"
    optimizer = torch.optim.AdamW(_parameter_groups(model, config.weight_decay), lr=config.lr)
    steps_per_epoch = max(1, len(train_pairs) // (config.batch_size * world))
    start_epoch, step_count, trained_seconds, history = 0, 0, 0.0, []
    if last.exists():
        state = load_checkpoint(last)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = int(state["epoch"]), list(state["history"])
        step_count, trained_seconds = int(state["step"]), float(state["trained_seconds"])
    elif config.init is not None:
        initialise_from(model, config.init)

    trainable: nn.Module = _StageLogits(model)
    if world > 1:
        if config.fcn_config().batch_norm and device.type == "cuda":  # SyncBatchNorm runs on GPUs only
            trainable = nn.SyncBatchNorm.convert_sync_batchnorm(trainable)
        device_ids = [device.index] if device.index is not None else None
        trainable = nn.parallel.DistributedDataParallel(trainable, device_ids=device_ids)
    return _Run(
        config=config, rank=rank, world=world, device=device, use_bf16=use_bf16,
        preprocessing=config.preprocessing(), resident=resident, val_pairs=check_pairs,
        check_split="holdout" if config.holdout else "val", model=model,
        trainable=trainable, optimizer=optimizer, generator=torch.Generator(),
        steps_per_epoch=steps_per_epoch, stage_weights=(1.0, *config.aux_weights),
        class_weights=weights.to(device) if weights is not None else None,
        augment=AugmentConfig(crop=config.crop, min_scale=config.min_scale, max_scale=config.max_scale),
        start_epoch=start_epoch, history=history, step_count=step_count,
        session_start=time.monotonic() - trained_seconds,
    )


def _train_epoch(run: _Run, epoch: int) -> dict[str, Any]:
    """One pass over this rank's shard of the training set; the epoch's log record."""
    config, device, generator = run.config, run.device, run.generator
    run.model.train()
    # Every random stream is seeded from (seed, epoch[, rank]): the shuffled order is the same on
    # all ranks (each takes its own shard) and a resumed run repeats an uninterrupted one exactly.
    order = torch.randperm(len(run.resident), generator=generator.manual_seed(config.seed * 7919 + epoch))
    order = order[run.rank :: run.world]
    generator.manual_seed((config.seed * 7919 + epoch) * 1009 + run.rank + 1)
    torch.manual_seed((config.seed * 7919 + epoch) * 1013 + run.rank)
    bar = ProgressLine(run.steps_per_epoch, f"{config.variant} epoch {epoch}/{config.epochs}", enabled=run.rank == 0)
    losses = []
    learning_rate = config.lr
    started = time.perf_counter()
    for step in range(run.steps_per_epoch):
        batch = order[step * config.batch_size : (step + 1) * config.batch_size]
        images, y = augment_batch(run.resident, batch, run.augment, generator, config.ignore_index)
        x = run.preprocessing.normalize(images).contiguous(memory_format=torch.channels_last)
        learning_rate = one_cycle_lr(run.progress(), config.lr)
        for group in run.optimizer.param_groups:
            group["lr"] = learning_rate
        with torch.autocast(device.type, dtype=torch.bfloat16) if run.use_bf16 else nullcontext():
            stage_logits = run.trainable(x)
        loss = stage_loss(stage_logits, y, run.stage_weights, run.class_weights, config.ignore_index)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.step_count += 1
        losses.append(loss.item())
        bar.update(step + 1, f"loss {np.mean(losses[-20:]):.3f}")
    return {
        "variant": config.variant, "epoch": epoch, "lr": learning_rate,
        "train_loss": float(np.mean(losses)), "seconds": time.perf_counter() - started,
    }


def _validate_epoch(run: _Run, record: dict[str, Any]) -> None:
    """Adds every stage's mIoU on the check split (val or the held-out train images) to the record; prints it."""
    config = run.config
    scores = validate(run.model, run.val_pairs, run.preprocessing, run.device, config.num_classes, config.ignore_index)
    record.update({f"{run.check_split}_miou_{stage}": value for stage, value in scores.items()})
    print(f"  {run.check_split} mIoU " + "  ".join(f"{stage} {100 * v:.1f}" for stage, v in scores.items()), flush=True)


def _save_checkpoint(run: _Run, epoch: int, command: str) -> None:
    """last.pt (model, optimiser, schedule position, history, config) and log.csv, after each epoch."""
    save_checkpoint(run.last, {
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(), "epoch": epoch,
        "step": run.step_count, "trained_seconds": time.monotonic() - run.session_start,
        "history": run.history, "config": _plain(asdict(run.config)), "command": command,
    })
    write_log(run.config.run_dir / "log.csv", run.history)


def one_cycle_lr(progress: float, peak: float, warmup: float = 0.05) -> float:
    """The one-cycle learning rate at a share ``progress`` of training: a linear warm-up from peak/25
    to ``peak`` over the first ``warmup``, then a cosine down to peak/250 000 (PyTorch's OneCycleLR)."""
    start, end = peak / 25, peak / 25 / 1e4
    if progress < warmup:
        return start + (peak - start) * progress / warmup
    cosine = (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup))) / 2
    return end + (peak - end) * cosine


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
    checks = [f"{split}_miou_{stage}" for split in ("holdout", "val") for stage in ("32s", "16s", "8s")]
    columns = ["variant", "epoch", "lr", "train_loss", *[c for c in checks if any(c in h for h in history)], "seconds"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
