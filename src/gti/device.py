"""What the hardware supports: the precision `auto` resolves to.

bfloat16 autocast halves the time of the matrix products where the hardware has native
bf16 (CUDA GPUs from Ampere on; x86 CPUs with AVX512-BF16 or AMX). Elsewhere it is
emulated and slower than float32, so `auto` keeps float32 there.
"""

import functools
import os
from pathlib import Path

import torch

from gti.errors import GtiError

PRECISIONS = ("auto", "float32", "bfloat16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when /proc/cpuinfo lists avx512_bf16 or amx_bf16 (False where that file does not exist)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """`float32` or `bfloat16` for `precision` (`auto`, `float32`, `bfloat16`) on `device`."""
    if precision not in PRECISIONS:
        raise GtiError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    kind = torch.device(device).type
    if kind == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if kind == "cpu":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return "float32"


def compute_device() -> torch.device:
    """This process's GPU when there is one (its LOCAL_RANK under a launcher), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def autocast(precision: str, device: torch.device | str):
    """A context that runs matrix products in bfloat16 when `precision` resolves to it on `device`."""
    enabled = resolve_precision(precision, device) == "bfloat16"
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)
