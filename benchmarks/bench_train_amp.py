"""Training in bf16 autocast against fp32 on this machine: the same net, batches and seed; loss per step and s/step.

    python benchmarks/bench_train_amp.py --data ../shared/data/camvid --steps 30

Run before trusting `--amp auto` on a new kind of CPU: the two loss curves should stay close (bf16 rounds
activations, so they drift apart slowly, not at once) and the bf16 step should be faster.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from fcn_viewer.bf16 import cpu_has_native_bf16
from fcn_viewer.model.fcn import build_fcn
from fcn_viewer.train.augment import AugmentConfig, ResidentSplit, augment_batch
from fcn_viewer.train.config import TrainConfig
from fcn_viewer.train.trainer import (
    _parameter_groups,
    fix_final_upsampling,
    load_split,
    median_frequency_weights,
    stage_loss,
)


def run(config: TrainConfig, resident: ResidentSplit, weights: torch.Tensor, steps: int, bf16: bool) -> list[float]:
    torch.manual_seed(config.seed)
    model = build_fcn(config.fcn_config()).to(memory_format=torch.channels_last)
    fix_final_upsampling(model)
    model.train()
    optimizer = torch.optim.AdamW(_parameter_groups(model, config.weight_decay), lr=config.lr)
    generator = torch.Generator().manual_seed(1)
    preprocessing = config.preprocessing()
    augment = AugmentConfig(crop=config.crop, min_scale=config.min_scale, max_scale=config.max_scale)
    losses, seconds = [], []
    for step in range(steps):
        batch = torch.arange(step * config.batch_size, (step + 1) * config.batch_size) % len(resident)
        images, y = augment_batch(resident, batch, augment, generator, config.ignore_index)
        x = preprocessing.normalize(images).contiguous(memory_format=torch.channels_last)
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            out = model.forward_stages(x)
            logits = [out.logits(stage) for stage in reversed(out.stages)]
        loss = stage_loss(logits, y, (1.0, *config.aux_weights), weights, config.ignore_index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - started)
        losses.append(loss.item())
    timed = seconds[2:] or seconds  # the first steps pay one-off allocation and kernel selection
    print(f"{'bf16' if bf16 else 'fp32'}: {sum(timed) / len(timed):.2f} s/step (batch {config.batch_size}, "
          f"crop {config.crop}, {torch.get_num_threads()} threads)", flush=True)
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--crop", type=int, default=TrainConfig.crop)
    args = parser.parse_args()
    config = TrainConfig(data=args.data, out=Path("unused"), crop=args.crop)
    pairs = load_split(args.data, "train")
    resident = ResidentSplit.stack(pairs, config.ignore_index)
    weights = median_frequency_weights([p[1] for p in pairs], config.num_classes, config.ignore_index,
                                       config.class_weight_cap)
    print(f"native bf16 on this CPU: {cpu_has_native_bf16()}")
    fp32 = run(config, resident, weights, args.steps, bf16=False)
    bf16 = run(config, resident, weights, args.steps, bf16=True)
    print("step  fp32 loss  bf16 loss  difference")
    for step, (a, b) in enumerate(zip(fp32, bf16), start=1):
        print(f"{step:4d}  {a:9.4f}  {b:9.4f}  {b - a:+9.4f}")
    tail = max(1, args.steps // 3)
    mean_a, mean_b = sum(fp32[-tail:]) / tail, sum(bf16[-tail:]) / tail
    print(f"mean loss of the last {tail} steps: fp32 {mean_a:.4f}, bf16 {mean_b:.4f} "
          f"({100 * (mean_b - mean_a) / mean_a:+.1f} %)")


if __name__ == "__main__":
    main()
