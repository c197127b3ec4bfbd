"""Whether this machine's CPU computes bf16 natively, so `--amp auto` and inference's auto precision can use it.

Asked of torch first, which asks cpuinfo, the library its own kernels dispatch on: AVX512-BF16 or AMX tiles on
x86, the BF16 extension on Arm (through oneDNN's bf16 check). The CPU's flags are read only where this torch
build lacks those calls. Never guessed from the CPU's name.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path

# CPU flags of native bf16 arithmetic: Intel/AMD AVX512-BF16 and AMX-BF16; Arm's BF16 extension.
_LINUX_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True where the CPU has bf16 instructions (AVX512-BF16, AMX or Arm BF16); False where unknown."""
    answer = _torch_says()
    return answer if answer is not None else _flags_say()


def _torch_says() -> bool | None:
    """torch's own answer (cpuinfo), or None where this build cannot give one."""
    import torch  # here, not at the top: the command line's --help must not wait for torch

    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686"):
        checks: list[Callable[[], bool] | None] = [getattr(torch.cpu, "_is_avx512_bf16_supported", None),
                                                   getattr(torch.cpu, "_is_amx_tile_supported", None)]
        known = [check for check in checks if check is not None]
        return any(check() for check in known) if known else None
    if machine in ("arm64", "aarch64"):
        # On Arm, oneDNN's bf16 check is cpuinfo's BF16 extension flag (on x86 it also accepts emulation).
        check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(check()) if check is not None and torch.backends.mkldnn.is_available() else None  # type: ignore[no-untyped-call]
    return None


def _flags_say() -> bool:
    system = platform.system()
    if system == "Linux":
        try:
            text = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return bool(_LINUX_FLAGS & set(value.split()))
        return False
    if system == "Darwin":
        try:
            result = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True,
                                    timeout=5, check=False)
        except (OSError, subprocess.SubprocessError):
            return False
        return result.stdout.strip() == "1"
    return False
