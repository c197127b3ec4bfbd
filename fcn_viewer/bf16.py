"""Whether this machine's CPU computes bf16 natively, so `--amp auto` (and inference) can use it without a slowdown."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

# CPU flags of native bf16 arithmetic: Intel/AMD AVX512-BF16 and AMX-BF16; Arm's BF16 extension.
_LINUX_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True where the CPU has bf16 instructions (AVX512-BF16, AMX or Arm BF16); False where unknown."""
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
