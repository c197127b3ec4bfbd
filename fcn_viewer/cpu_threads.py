"""Keeps torch's CPU passes at full speed when several threads use torch: one OpenMP team of workers at a time.

On Linux torch runs its parallel ops on libgomp, which gives every thread that ever ran one a team of workers, kept
for good. Once the teams' threads outnumber the cores, libgomp stops spinning between parallel regions, and each of
the pass's hundreds of hand-overs waits on a sleeping worker: on 2 cores a pass on a second thread took 50 ms against
40 ms while the first thread's idle team lived (the Sequence tab's net, 87 against 64 ms). So a worker thread hands its team back when its work is
done (:func:`release_idle_workers`), and threads that only run small torch ops run them alone
(:func:`run_serially_here`). Other OpenMP runtimes (macOS's libomp, Windows') are left as they are.
"""

from __future__ import annotations

import ctypes
import functools
import sys

OMP_PAUSE_SOFT = 1  # omp_pause_resource_kind: end the workers, keep the settings


def _libgomp() -> ctypes.CDLL | None:
    """The process's libgomp when torch runs on it; None before torch is imported (no thread has a team yet)."""
    return _loaded_libgomp() if "torch" in sys.modules else None


@functools.cache
def _loaded_libgomp() -> ctypes.CDLL | None:
    """Looked up once torch is loaded (LLVM's libomp exports GOMP_ names too, and __kmpc ones)."""
    if not sys.platform.startswith("linux"):  # torch's wheels use libgomp on Linux only (and CDLL(None) is POSIX's)
        return None
    process = ctypes.CDLL(None)
    if not hasattr(process, "GOMP_parallel") or hasattr(process, "__kmpc_fork_call"):
        return None
    if not hasattr(process, "omp_pause_resource_all"):  # OpenMP 5.0: GCC 9 and later
        return None
    return process


def uses_libgomp() -> bool:
    """Whether torch's parallel ops run on libgomp here (so the two functions below act)."""
    return _libgomp() is not None


def release_idle_workers() -> None:
    """Ends the calling thread's OpenMP workers; its next parallel op starts new ones (tens of microseconds).
    Call it when a thread's torch work is done for now, outside any parallel region."""
    library = _libgomp()
    if library is not None:
        library.omp_pause_resource_all(OMP_PAUSE_SOFT)


def run_serially_here() -> None:
    """The calling thread runs torch's parallel ops alone from now on and keeps no workers: for threads whose torch
    ops are small (drawing on the GUI thread, writing outputs beside the pass). Other threads keep their width."""
    library = _libgomp()
    if library is None:
        return
    import torch  # here: the command line's start-up imports this module, not torch

    torch.get_num_threads()  # torch sets a thread's OpenMP width on its first parallel op: let it, then narrow it
    library.omp_set_num_threads(1)
    library.omp_pause_resource_all(OMP_PAUSE_SOFT)
