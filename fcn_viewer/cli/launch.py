"""`--nproc N`: a sharded command run as N local processes (ranks), ending with one summary and our exit codes."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from fcn_viewer.cli.common import positive_count
from fcn_viewer.errors import UsageError
from fcn_viewer.sharding import EXIT_RANK_LOST, LAUNCHED_ENV, launched

GRACE_S = 30.0  # after a rank fails, how long the others may take to end before they are stopped
STOP_S = 5.0  # after SIGTERM, before SIGKILL
EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED = 3, 130, 143  # as in cli/boundary.py
QUIET_RANK_CODES = {EXIT_INTERRUPTED: "interrupted", EXIT_TERMINATED: "terminated"}  # said here, not by the rank


def add_nproc_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nproc", type=positive_count, metavar="N",
                        help="run as N processes on this machine, each taking every N-th image (one per GPU when "
                             "there are GPUs); ends with one summary and the usual exit codes, unlike torchrun")


def wants_ranks(args: argparse.Namespace) -> bool:
    """Whether this process should start ``--nproc`` ranks (not when it is one of them)."""
    if args.nproc is None or args.nproc == 1 or launched():
        return False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError("--nproc: this process is already one rank of a torchrun job; give one or the other")
    return True


def run_ranks(argv: Sequence[str], nproc: int, program: Sequence[str] = (sys.executable, "-m", "fcn_viewer")) -> int:
    """Runs ``program argv`` as ranks 0 … nproc − 1 of one job on this machine (the environment torch.distributed
    reads, gloo rendezvous on a free local port) and returns the job's exit code: that of the first rank to fail,
    else 0. Their stderr passes through line by line, an error line already shown by another rank only once; the
    ranks that stop because that one failed say nothing (EXIT_RANK_LOST), and any still running GRACE_S after it
    are stopped. Ctrl-C or SIGTERM stops them all."""
    port = _free_port()
    ranks = [_start(program, argv, rank, nproc, port) for rank in range(nproc)]
    relay = _Relay()
    readers = [threading.Thread(target=relay.copy, args=(rank.stderr,), daemon=True) for rank in ranks]
    for reader in readers:
        reader.start()
    try:
        code = _wait(ranks)
    except BaseException:  # Ctrl-C, SIGTERM: the ranks stop too (quietly: this process says it once)
        _stop(ranks)
        raise
    finally:
        for reader in readers:
            reader.join(STOP_S)
    return code


def _start(program: Sequence[str], argv: Sequence[str], rank: int, world: int, port: int) -> subprocess.Popen[bytes]:
    package_root = str(Path(__file__).resolve().parents[2])  # the fcn_viewer this process runs
    env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
               GROUP_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), **{LAUNCHED_ENV: "1"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_root, os.environ.get("PYTHONPATH"))))
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // world)))  # as torchrun: no oversubscription
    return subprocess.Popen([*program, *argv], env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(ranks: list[subprocess.Popen[bytes]]) -> int:
    """The first failing rank's exit code (0 if none); the others are given GRACE_S to end after it."""
    failed: int | None = None
    deadline = float("inf")
    while any(rank.poll() is None for rank in ranks):
        if failed is None:
            failed = next((code for code in (rank.poll() for rank in ranks) if code not in (None, 0, EXIT_RANK_LOST)),
                          None)
            deadline = time.monotonic() + GRACE_S if failed is not None else deadline
        if time.monotonic() > deadline:
            _stop(ranks)
        time.sleep(0.05)
    codes = [rank.returncode for rank in ranks]
    if failed is None:
        failed = next((code for code in codes if code not in (0, EXIT_RANK_LOST)), None)
    if failed is None:
        return EXIT_INTERNAL if EXIT_RANK_LOST in codes else 0  # a rank lost its peers, and none said why
    rank = codes.index(failed)
    if failed < 0:
        print(f"error: rank {rank} of {len(ranks)} was killed by {_signal_name(-failed)}", file=sys.stderr)
        return EXIT_INTERNAL
    if failed in QUIET_RANK_CODES:
        print(f"{QUIET_RANK_CODES[failed]} (rank {rank} of {len(ranks)})", file=sys.stderr)
    return failed


def _stop(ranks: list[subprocess.Popen[bytes]]) -> None:
    for rank in ranks:
        if rank.poll() is None:
            rank.terminate()
    for rank in ranks:
        try:
            rank.wait(STOP_S)
        except subprocess.TimeoutExpired:
            rank.kill()
            rank.wait()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Relay:
    """Copies the ranks' stderr to this one's, a line at a time; an error line another rank already gave is
    dropped (each rank meets the same bad --weights, say, and would repeat it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: set[bytes] = set()

    def copy(self, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        with stream:
            for line in iter(stream.readline, b""):
                self._write(line)

    def _write(self, line: bytes) -> None:
        with self._lock:
            if line.startswith((b"error:", b"internal error:")):
                if line in self._errors:
                    return
                self._errors.add(line)
            sys.stderr.write(line.decode("utf-8", "backslashreplace"))
            sys.stderr.flush()
