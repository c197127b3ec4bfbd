"""One prepared GPU session: train the bundled family, export and evaluate it, and benchmark the GPU path.

A GPU is lent only now and then, for a few minutes, on a machine whose Python is not this one (torch
2.11, no PySide6, no platformdirs, no network). This script uses such a window whole, in at most
8½ minutes of wall time, and writes everything it measured to one folder:

    python benchmarks/device_run.py --prepare          # here, once: CamVid into data/camvid, wheels into .whl/
    python3 benchmarks/device_run.py --out OUT          # there: train, export, evaluate, benchmark
    python benchmarks/device_run.py --smoke --out /tmp/smoke   # the same end to end on the CPU, tiny (CI)

The three nets (FCN-32s, 16s, 8s: the bundled recipe, compact widths in the paper's geometry) train
at once on the one GPU, each in its own process with the same time budget; each is exported as fp16
safetensors with its val metrics exactly as ``fcn-viewer train --export`` does; ``fcn-viewer
evaluate`` then scores the family on val, and ``benchmarks/bench_inference.py`` times the paper's
FCN-8s (500×500) and the new bundled net against the eager-fp32 baseline, without and with
``--compile``. Output: ``OUT/report.json``, ``OUT/log.txt`` and ``OUT/models/*.safetensors`` (five
files: the device tool brings back at most eight); checkpoints and per-step logs stay in a scratch
folder (``--work``). Steps that no longer fit in the time left are skipped and say so in the report.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_CAMVID = ROOT.parent / "shared" / "data" / "camvid"
LOCAL_CAMVID = ROOT / "data" / "camvid"
WHEELS = ROOT / ".whl"
# Packages the GPU machine's Python lacks (it has torch, numpy, pillow, safetensors, matplotlib).
MISSING_THERE = ("platformdirs==4.3.6",)
VARIANTS = ("fcn32s", "fcn16s", "fcn8s")
DEVICE_COMMAND = ("python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && "
                  "PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 python3 benchmarks/device_run.py --out $OUT")


@dataclass(frozen=True)
class Plan:
    """What one run does: the recipe and the time given to each part."""

    data: Path
    device: str
    train_minutes: float
    recipe: tuple[str, ...]
    val_every: int
    evaluate_seconds: float
    bench: tuple[tuple[str, ...], ...]
    bench_seconds: float
    total_seconds: float


def gpu_plan(data: Path) -> Plan:
    """The real run: 4 minutes of training per net (all three at once), then scoring and timing."""
    recipe = ("--crop", "320", "--scale", "0.5,2", "--batch-size", "16", "--lr", "2e-3", "--weight-decay", "1e-4")
    bench = (
        ("--device", "cuda", "--nets", "paper", "--runs", "50"),
        ("--device", "cuda", "--nets", "bundled", "--runs", "50"),
        ("--device", "cuda", "--nets", "paper", "--runs", "50", "--compile"),
    )
    return Plan(data, "cuda", 4.0, recipe, 50, 90, bench, 150, 8.5 * 60)


def smoke_plan(data: Path) -> Plan:
    """The same steps on the CPU with tiny nets, images and budgets, so CI proves the script runs."""
    recipe = ("--crop", "32", "--scale", "0.75,1.25", "--batch-size", "2", "--widths", "4,4,8,8,8",
              "--depths", "1,1,1,1,1", "--fc-width", "8")
    bench = (("--device", "cpu", "--nets", "bundled", "--runs", "2", "--batch", "2", "--size", "40x48"),)
    return Plan(data, "cpu", 0.05, recipe, 1000, 120, bench, 120, 300)


@dataclass
class Session:
    """The scratch folder, the log, the deadline, and the report as it grows."""

    work: Path
    deadline: float
    log: IO[str]
    report: dict[str, Any] = field(default_factory=dict)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def say(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def step(self, name: str, commands: list[list[str]], budget: float, env: dict[str, str]) -> bool:
        """Runs the commands at once (logs in WORK/<name>-<i>.log, their tails in the log) and records how it went."""
        timeout = min(budget, self.left() - 5)
        record: dict[str, Any] = {"name": name, "commands": [" ".join(c) for c in commands]}
        self.report.setdefault("steps", []).append(record)
        if timeout < budget / 2:
            record["status"] = f"skipped: {self.left():.0f} s left, the step needs about {budget:.0f} s"
            self.say(f"{name}: {record['status']}")
            return False
        self.say(f"{name}: {len(commands)} process(es), at most {timeout:.0f} s")
        started = time.monotonic()
        processes = []
        for index, command in enumerate(commands):
            log = (self.work / f"{name}-{index}.log").open("w")
            processes.append((subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
        codes = []
        for process, log in processes:
            try:
                codes.append(process.wait(timeout=max(1.0, started + timeout - time.monotonic())))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
            log.close()
        record |= {"seconds": round(time.monotonic() - started, 1), "exit_codes": codes}
        record["status"] = "ok" if all(code == 0 for code in codes) else "failed"
        self.say(f"{name}: {record['status']} in {record['seconds']} s (exit codes {codes})")
        for index in range(len(commands)):
            self.log.write(f"--- {name}-{index}.log (tail) ---\n")
            self.log.write("".join((self.work / f"{name}-{index}.log").read_text(errors="replace").splitlines(True)[-40:]))
        return record["status"] == "ok"


def run(out: Path, work: Path, plan: Plan) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    models = work / "models"
    with (out / "log.txt").open("w") as log:
        session = Session(work, time.monotonic() + plan.total_seconds, log)
        session.report["environment"] = environment()
        session.say(f"environment: {session.report['environment']}")
        env = dict(os.environ, FCN_VIEWER_RESOURCES=str(work), PYTHONPATH=_python_path(), PYTHONUNBUFFERED="1")
        if plan.device == "cpu":
            env["OMP_NUM_THREADS"] = "1"  # three trainings share the cores
        python = sys.executable

        train = [[python, "-m", "fcn_viewer", "train", "--data", str(plan.data), "--out", str(work / "runs"),
                  "--variant", variant, "--device", plan.device, "--time-budget", str(plan.train_minutes),
                  "--epochs", "100000", "--val-every", str(plan.val_every), "--export", str(models), *plan.recipe]
                 for variant in VARIANTS]
        # Training itself, then the export and its val scoring (about a minute on the CPU for CamVid).
        session.step("train", train, plan.train_minutes * 60 + 90, env)
        session.report["training"] = {variant: read_log(work / "runs" / variant / "log.csv") for variant in VARIANTS}
        session.report["models"] = stored_metrics(models)

        if all((models / f"camvid-{v}.safetensors").exists() for v in VARIANTS):
            session.step("evaluate", [[python, "-m", "fcn_viewer", "evaluate", "--data", str(plan.data), "--split",
                                       "val", "--device", plan.device, "--json", str(work / "evaluate.json")]],
                         plan.evaluate_seconds, env)
            session.report["evaluate"] = _read_json(work / "evaluate.json")
        benchmarks: list[Any] = []
        for index, arguments in enumerate(plan.bench):
            target = work / f"bench-{index}.json"
            command = [python, str(ROOT / "benchmarks" / "bench_inference.py"), *arguments, "--json", str(target)]
            session.step(f"bench-{index}", [command], plan.bench_seconds, env)
            benchmarks.append({"arguments": list(arguments), "results": _read_json(target)})
        session.report["benchmarks"] = benchmarks
        (out / "models").mkdir(exist_ok=True)
        for path in sorted(models.glob("*.safetensors")):
            shutil.copy2(path, out / "models" / path.name)
        session.report["wall_seconds"] = round(plan.total_seconds - session.left(), 1)
        session.say(f"done in {session.report['wall_seconds']} s")
    (out / "report.json").write_text(json.dumps(session.report, indent=2) + "\n")
    return session.report


def environment() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "commit": _git_commit(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    if torch.cuda.is_available():
        info |= {"gpu": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    else:
        info["cpu_threads"] = torch.get_num_threads()
    return info


def read_log(path: Path) -> list[dict[str, str]]:
    """A run's log.csv, one row per epoch (the train curves)."""
    if not path.exists():
        return []
    with path.open() as handle:
        return [{k: v for k, v in row.items() if v} for row in csv.DictReader(handle)]


def stored_metrics(models: Path) -> dict[str, Any]:
    """Each exported file's stored val metrics and provenance, read back from the file."""
    from fcn_viewer.weights.native import load_native

    found: dict[str, Any] = {}
    for path in sorted(models.glob("*.safetensors")):
        _, meta = load_native(path)
        found[path.stem] = {"bytes": path.stat().st_size, "metrics": meta.metrics, "provenance": meta.provenance,
                            "config": meta.config.to_dict()}
    return found


def make_tiny_dataset(root: Path) -> Path:
    """Six 40×48 pictures in the SegNet layout whose labels follow the picture (for --smoke)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(exist_ok=True)
        for index in range(count):
            label = np.kron(rng.integers(0, 11, (5, 6)), np.ones((8, 8), dtype=np.int64)).astype(np.uint8)
            value = label.astype(np.int64)
            image = np.stack([value * 20, 255 - value * 20, (value * 37) % 256], axis=-1).astype(np.uint8)
            Image.fromarray(image).save(root / split / f"{split}{index}.png")
            Image.fromarray(label).save(root / f"{split}annot" / f"{split}{index}.png")
    return root


def prepare() -> None:
    """Here, before a GPU session: the data and the wheels that must travel with the working tree."""
    if not SHARED_CAMVID.is_dir():
        sys.exit(f"no CamVid at {SHARED_CAMVID}")
    for name in ("train", "trainannot", "val", "valannot", "train.txt", "val.txt"):
        source, target = SHARED_CAMVID / name, LOCAL_CAMVID / name
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        elif source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "-d", str(WHEELS), *MISSING_THERE],
                   check=True)
    print(f"copied CamVid to {LOCAL_CAMVID}; wheels in {WHEELS}: {sorted(p.name for p in WHEELS.glob('*.whl'))}")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    sizes = [(ROOT / name.decode()).stat().st_size for name in tracked if name and (ROOT / name.decode()).is_file()]
    carried = [p.stat().st_size for folder in (LOCAL_CAMVID, WHEELS) for p in folder.rglob("*") if p.is_file()]
    total = (sum(sizes) + sum(carried)) / 2**20
    print(f"the working tree that travels: {total:.1f} MiB of at most 64" + ("  <-- TOO LARGE" if total > 63 else ""))
    print(f"device command (carry data/camvid and .whl): {DEVICE_COMMAND}")


def _python_path() -> str:
    parts = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return os.pathsep.join(dict.fromkeys(parts))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _git_commit() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output folder (report.json, log.txt, models/)")
    parser.add_argument("--work", type=Path, help="scratch folder for checkpoints and step logs (default: a new temp folder)")
    parser.add_argument("--data", type=Path, default=LOCAL_CAMVID, help="CamVid in the SegNet layout")
    parser.add_argument("--smoke", action="store_true", help="tiny end-to-end run on the CPU (about a minute on an idle 2-core machine)")
    parser.add_argument("--prepare", action="store_true", help="copy CamVid and fetch wheels for the GPU machine")
    parser.add_argument("--train-minutes", type=float, help="override the training budget per net")
    args = parser.parse_args()
    if args.prepare:
        prepare()
        return
    if args.out is None:
        parser.error("--out is required")
    work = args.work or Path(tempfile.mkdtemp(prefix="fcn-device-run-"))
    if args.smoke:
        plan = smoke_plan(make_tiny_dataset(work / "data"))
    else:
        if not (args.data / "train").is_dir():
            parser.error(f"no dataset at {args.data}: run --prepare here first, and carry data/camvid")
        plan = gpu_plan(args.data)
    if args.train_minutes is not None:
        plan = replace(plan, train_minutes=args.train_minutes)
    report = run(args.out, work, plan)
    failed = [step["name"] for step in report.get("steps", []) if step.get("status") != "ok"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
