"""Training: a step lowers the loss (also in bf16), checkpoints resume exactly, the family recipes run and export."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_viewer.bf16 import cpu_has_native_bf16
from fcn_viewer.data.folder import SegmentationFolder
from fcn_viewer.domain import DOMAINS
from fcn_viewer.errors import WeightsError
from fcn_viewer.evaluation import evaluate_model
from fcn_viewer.model import build_fcn
from fcn_viewer.model.config import vgg16_config
from fcn_viewer.model.upsample import bilinear_weight
from fcn_viewer.train.checkpoint import load_checkpoint
from fcn_viewer.train.family import attach_familiarity, attach_metrics, export_run, train_family
from fcn_viewer.train.trainer import (
    TrainConfig,
    _StageLogits,
    fix_final_upsampling,
    initialise_from,
    load_split,
    median_frequency_weights,
    one_cycle_lr,
    resolve_amp,
    split_holdout,
    stage_loss,
    train,
)
from fcn_viewer.weights.loader import load_weights_file
from tests.helpers import gradient_image, tiny_compact_config, tiny_paper_config


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """Four train and two val 40×48 pictures whose label is a function of the picture."""
    root = tmp_path / "data"
    for split, count in (("train", 4), ("val", 2)):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for index in range(count):
            image = gradient_image(40, 48, seed=index + (10 if split == "val" else 0))
            label = (image[:, :, 0] // 64 + 3 * (image[:, :, 1] > 128)).astype(np.uint8)
            label[:2] = 11
            Image.fromarray(image).save(root / split / f"{split}{index}.png")
            Image.fromarray(label).save(root / f"{split}annot" / f"{split}{index}.png")
    return root


def _config(data: Path, out: Path, **changes: object) -> TrainConfig:
    base = TrainConfig(data=data, out=out, variant="fcn8s", widths=(4, 4, 8, 8, 8), depths=(1, 1, 1, 1, 1),
                       fc_width=16, fc6_kernel=3, padding="same", epochs=2, batch_size=2, crop=32, val_every=1,
                       device="cpu", amp="off")
    return replace(base, **changes)  # type: ignore[arg-type]


def test_one_training_step_lowers_the_loss() -> None:
    torch.manual_seed(0)
    model = build_fcn(tiny_compact_config()).train()
    trainable = _StageLogits(model)
    x = torch.randn(2, 3, 32, 32)
    y = torch.randint(0, 11, (2, 32, 32))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = stage_loss(trainable(x), y, (1.0, 0.4, 0.2), None, 11)
    before.backward()
    optimizer.step()
    with torch.no_grad():
        torch.manual_seed(0)
        after = stage_loss(trainable(x), y, (1.0, 0.4, 0.2), None, 11)
    assert after.item() < before.item()


def test_resumed_training_equals_uninterrupted_training(tiny_dataset: Path, tmp_path: Path) -> None:
    straight = train(_config(tiny_dataset, tmp_path / "straight"))
    interrupted = train(_config(tiny_dataset, tmp_path / "resumed", time_limit_min=1e-9))
    assert (interrupted.finished, interrupted.epoch) == (False, 1)
    resumed = train(_config(tiny_dataset, tmp_path / "resumed"))
    assert resumed.finished and resumed.epoch == 2
    a = torch.load(straight.run_dir / "last.pt", weights_only=True)["model"]
    b = torch.load(resumed.run_dir / "last.pt", weights_only=True)["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = list(csv.DictReader((resumed.run_dir / "log.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[1]["val_miou_8s"]


def test_family_trains_32s_then_16s_then_8s_and_exports(tiny_dataset: Path, tmp_path: Path) -> None:
    base = _config(tiny_dataset, tmp_path / "run", epochs=1)
    results = train_family(base, {"fcn32s": 1, "fcn16s": 1, "fcn8s": 1}, "fcn-viewer train (test)")
    assert [r.run_dir.name for r in results] == ["fcn32s", "fcn16s", "fcn8s"] and all(r.finished for r in results)
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    path = export_run(results[2].run_dir, tmp_path / "models" / "camvid-fcn8s.safetensors", "camvid-fcn8s",
                      "FCN-8s CamVid", "camvid")
    loaded = load_weights_file(path)
    assert loaded.meta.classes[0] == "Sky" and loaded.meta.config.variant == "fcn8s"
    assert loaded.meta.provenance["command"] == "fcn-viewer train (test)"
    assert loaded.meta.provenance["trained_epochs"] == 1
    stored = attach_metrics(path, tiny_dataset, "val", "cpu")
    reloaded = load_weights_file(path)
    assert reloaded.meta.metrics["val"] == stored and set(stored) == {"32s", "16s", "8s"}
    measured = evaluate_model(reloaded, SegmentationFolder(tiny_dataset, "val"), device="cpu")
    assert measured["8s"]["mean_iou"] == stored["8s"]["mean_iou"]
    assert measured["8s"]["boundary_f1"] == stored["8s"]["boundary_f1"]
    assert reloaded.meta.domain == DOMAINS["camvid"]
    familiar = attach_familiarity(path, tiny_dataset, "val", "cpu")  # what train --export does next
    final = load_weights_file(path).meta
    assert final.familiarity == familiar and familiar["images"] == 2 and final.metrics == reloaded.meta.metrics


def test_finer_net_starts_from_the_coarser_one(tiny_dataset: Path, tmp_path: Path) -> None:
    coarse = train(_config(tiny_dataset, tmp_path / "run", variant="fcn32s", epochs=1))
    fine = build_fcn(tiny_compact_config("fcn16s"))
    copied = initialise_from(fine, coarse.run_dir / "last.pt")
    assert "conv1_1.weight" in copied and "score_fr.weight" in copied and "upscore.weight" not in copied
    assert not fine.score_pool4.weight.detach().any()
    source = torch.load(coarse.run_dir / "last.pt", weights_only=True)["model"]
    assert torch.equal(fine.fc6.weight, source["fc6.weight"])


def test_a_time_budget_ends_training_and_exports_a_net_with_the_paper_crops(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    config = _config(tiny_dataset, tmp_path / "run", padding="paper", fc6_kernel=7, epochs=10_000, val_every=10_000,
                     time_budget_min=0.05)
    result = train(config)
    assert result.finished and 1 <= result.epoch < 10_000
    assert "val_miou_8s" in result.history[-1]  # the last epoch is validated
    assert result.history[-1]["lr"] < config.lr  # past the peak of the schedule
    again = train(config)  # the same command again (e.g. to export): the spent budget trains nothing more
    assert again.finished and again.epoch == result.epoch and len(again.history) == len(result.history)
    path = export_run(result.run_dir, tmp_path / "camvid-fcn8s.safetensors", "camvid-fcn8s", "FCN-8s", "camvid")
    loaded = load_weights_file(path)
    with torch.no_grad():
        outputs = loaded.model.forward_stages(torch.zeros(1, 3, 40, 48))
    assert [(c.source, c.offset) for c in outputs.crops if c.source.startswith(("score", "upscore8"))] == [
        ("score_pool4", 5), ("score_pool3", 9), ("upscore8", 31)]


def test_the_one_cycle_schedule_warms_up_then_anneals() -> None:
    assert one_cycle_lr(0.0, 1.0) == pytest.approx(1 / 25)
    assert one_cycle_lr(0.05, 1.0) == pytest.approx(1.0)
    assert one_cycle_lr(1.0, 1.0) == pytest.approx(1 / 25 / 1e4)
    values = [one_cycle_lr(p / 100, 1.0) for p in range(5, 101)]
    assert values == sorted(values, reverse=True)


def test_median_frequency_weights_by_hand() -> None:
    # Image A: 3 px of class 0, 1 px of class 1. Image B: 4 px of class 0 (+ void).
    a = torch.tensor([[0, 0], [0, 1]], dtype=torch.uint8)
    b = torch.tensor([[0, 0, 0, 0, 11]], dtype=torch.uint8)
    # freq(0) = 7 / 8, freq(1) = 1 / 4 (only image A has class 1); median = 9/16.
    weights = median_frequency_weights([a, b], num_classes=3, ignore_index=11, cap=10)
    assert torch.allclose(weights, torch.tensor([(9 / 16) / (7 / 8), (9 / 16) / (1 / 4), 1.0]))
    assert median_frequency_weights([a, b], 3, 11, cap=2.0)[1] == 2.0


def test_a_vgg16_run_on_a_voc_layout_folder_exports_the_voc_classes_and_caffe_preprocessing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One epoch of a VGG16-arch FCN-32s on a one-image VOCdevkit folder. The arch is the paper-exact net (checked
    here); it trains with a few channels per layer in its geometry, as its 136 M parameters took 20 s of the suite."""
    exact = TrainConfig(data=tmp_path, out=tmp_path, variant="fcn32s", arch="vgg16", num_classes=21).fcn_config()
    assert exact == vgg16_config("fcn32s", 21) and exact.fc_width == 4096 and exact.padding == "paper"
    monkeypatch.setattr("fcn_viewer.train.config.vgg16_config", lambda variant, classes: tiny_paper_config(variant, classes))
    root = tmp_path / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    image = gradient_image(36, 36)
    label = Image.fromarray(np.where(image[:, :, 0] > 128, 15, 0).astype(np.uint8)).convert("P")
    label.putpixel((0, 0), 255)
    Image.fromarray(image).save(root / "JPEGImages" / "a.jpg")
    label.save(root / "SegmentationClass" / "a.png")
    for split in ("train", "val"):
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("a\n")
    config = TrainConfig(data=root, out=tmp_path / "run", variant="fcn32s", arch="vgg16", num_classes=21,
                         ignore_index=255, epochs=1, batch_size=1, crop=32, device="cpu", amp="off")
    result = train(config)
    assert result.finished and result.history[0]["val_miou_32s"] >= 0
    path = export_run(result.run_dir, tmp_path / "voc-fcn32s.safetensors", "voc-fcn32s", "FCN-32s VOC", "voc")
    meta = load_weights_file(path).meta
    assert meta.classes[15] == "person" and meta.preprocessing.channel_order == "BGR"
    assert meta.domain == DOMAINS["voc"]
    assert meta.config == tiny_paper_config("fcn32s", 21) and meta.config.padding == "paper"


def test_finer_nets_fine_tune_at_a_lower_learning_rate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[TrainConfig] = []
    monkeypatch.setattr("fcn_viewer.train.family.train", _fake_train(seen))
    train_family(_config(tmp_path, tmp_path / "run", lr=1e-3), {"fcn32s": 3, "fcn16s": 2, "fcn8s": 1}, "", 0.25)
    assert [(c.variant, c.epochs, c.lr) for c in seen] == [("fcn32s", 3, 1e-3), ("fcn16s", 2, 2.5e-4),
                                                           ("fcn8s", 1, 2.5e-4)]
    assert seen[1].init == tmp_path / "run" / "fcn32s" / "last.pt"
    assert seen[2].init == tmp_path / "run" / "fcn16s" / "last.pt"


def _fake_train(seen: list[TrainConfig]):  # type: ignore[no-untyped-def]
    from fcn_viewer.train.trainer import RunResult

    def fake_train(config: TrainConfig, command: str) -> RunResult:
        seen.append(config)
        return RunResult(config.run_dir, True, config.epochs, [])

    return fake_train


def test_the_at_once_recipe_trains_8s_then_fine_tunes_32s_and_16s_from_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[TrainConfig] = []
    monkeypatch.setattr("fcn_viewer.train.family.train", _fake_train(seen))
    init = tmp_path / "warm.safetensors"
    results = train_family(_config(tmp_path, tmp_path / "run", lr=1e-3, init=init),
                           {"fcn32s": 3, "fcn16s": 2, "fcn8s": 1}, "", 0.25, "at-once",
                           {"fcn32s": 5.0, "fcn16s": 6.0, "fcn8s": 90.0})
    assert [r.run_dir.name for r in results] == ["fcn8s", "fcn32s", "fcn16s"]
    assert [(c.variant, c.epochs, c.lr, c.time_budget_min) for c in seen] == [
        ("fcn8s", 1, 1e-3, 90.0), ("fcn32s", 3, 2.5e-4, 5.0), ("fcn16s", 2, 2.5e-4, 6.0)]
    assert seen[0].init == init
    assert seen[1].init == seen[2].init == tmp_path / "run" / "fcn8s" / "last.pt"


def test_a_net_fine_tuned_from_fcn8s_starts_as_that_nets_own_stage(tiny_dataset: Path, tmp_path: Path) -> None:
    """The at-once recipe's premise: FCN-32s and FCN-16s initialised from FCN-8s output its 32s and 16s stages."""
    source = train(_config(tiny_dataset, tmp_path / "run", padding="paper", fc6_kernel=7, epochs=1))
    eight = build_fcn(_config(tiny_dataset, tmp_path, padding="paper", fc6_kernel=7).fcn_config()).eval()
    eight.load_state_dict(torch.load(source.run_dir / "last.pt", weights_only=True)["model"])
    x = torch.rand(1, 3, 40, 48)
    with torch.no_grad():
        stages = eight.forward_stages(x)
        for variant, stage in (("fcn32s", "32s"), ("fcn16s", "16s")):
            net = build_fcn(_config(tiny_dataset, tmp_path, variant=variant, padding="paper", fc6_kernel=7)
                            .fcn_config())
            fix_final_upsampling(net)
            initialise_from(net, source.run_dir / "last.pt")
            assert torch.allclose(net.eval()(x), stages.logits(stage), atol=1e-5), variant


def test_the_final_upsampling_stays_bilinear_while_the_x2_layers_learn(tiny_dataset: Path, tmp_path: Path) -> None:
    result = train(_config(tiny_dataset, tmp_path / "run", padding="paper", fc6_kernel=7, epochs=1, lr=0.05))
    state = torch.load(result.run_dir / "last.pt", weights_only=True)["model"]
    assert torch.equal(state["upscore8.weight"], bilinear_weight(11, 16))
    assert not torch.equal(state["upscore2.weight"], bilinear_weight(11, 4))


def test_held_out_train_images_judge_the_run_and_val_is_never_read(tiny_dataset: Path, tmp_path: Path) -> None:
    pairs = load_split(tiny_dataset, "train")
    kept, held = split_holdout(pairs, 1)
    _, again_held = split_holdout(pairs, 1)
    assert (len(kept), len(held)) == (3, 1)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(held, again_held))  # the same images every time
    assert not any(torch.equal(h[0], k[0]) for h in held for k in kept)
    for path in (tiny_dataset / "val").iterdir():  # training must not need val at all
        path.unlink()
    result = train(_config(tiny_dataset, tmp_path / "run", epochs=1, holdout=1))
    assert set(result.history[0]) >= {"holdout_miou_32s", "holdout_miou_16s", "holdout_miou_8s"}
    assert not any(key.startswith("val_") for key in result.history[0])
    with pytest.raises(ValueError, match="has 4 images"):
        split_holdout(pairs, 4)


def test_amp_auto_picks_bf16_on_the_cpu_only_where_it_is_native() -> None:
    assert resolve_amp("auto", torch.device("cpu")) == cpu_has_native_bf16()
    assert resolve_amp("off", torch.device("cuda")) is False
    assert resolve_amp("bf16", torch.device("cpu")) is True


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16")
def test_a_bf16_training_step_on_the_cpu_tracks_fp32_and_lowers_the_loss() -> None:
    x = torch.randn(2, 3, 32, 32)
    y = torch.randint(0, 11, (2, 32, 32))
    losses = {}
    for bf16 in (False, True):
        torch.manual_seed(0)
        model = build_fcn(tiny_compact_config()).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        steps = []
        for _ in range(3):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = stage_loss(_StageLogits(model)(x), y, (1.0, 0.4, 0.2), None, 11)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps.append(loss.item())
        losses[bf16] = steps
    assert losses[True][-1] < losses[True][0]
    assert losses[True] == pytest.approx(losses[False], rel=0.05)


def test_a_checkpoint_holding_a_python_object_is_refused_without_torchs_unsafe_advice(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    torch.save({"model": {}, "config": Path("x")}, path)  # a pathlib object: not loadable with weights_only
    with pytest.raises(WeightsError) as refused:
        load_checkpoint(path)
    assert str(refused.value).startswith(str(path)) and "weights_only" not in str(refused.value)
