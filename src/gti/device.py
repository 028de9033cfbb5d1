"""What the hardware supports: the precision `auto` resolves to.

bfloat16 autocast halves the time of the matrix products where the hardware has native
bf16 (CUDA GPUs from Ampere on; x86 CPUs with AVX512-BF16 or AMX). Elsewhere it is
emulated and slower than float32, so `auto` keeps float32 there.
"""

import contextlib
import functools
import os
from pathlib import Path

import torch

from gti.errors import GtiError

PRECISIONS = ("auto", "float32", "bfloat16")


NATIVE_BF16_ENV = "GTI_NATIVE_BF16"
"""Set to 0 (or 1) to tell gti the CPU has no (or has) native bfloat16, whatever /proc/cpuinfo says: `auto`
then resolves as on such a CPU (the test suite sets 0, so every machine runs the same tests)."""


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when /proc/cpuinfo lists avx512_bf16 or amx_bf16 (False where that file does not exist).

    `GTI_NATIVE_BF16=0` or `=1` in the environment overrides the answer.
    """
    forced = os.environ.get(NATIVE_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if forced:
        raise GtiError(f"{NATIVE_BF16_ENV}={forced!r}: expected 0 or 1")
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


@contextlib.contextmanager
def deterministic(setting: bool | None, device: torch.device | str):
    """Run the body with deterministic algorithms on or off; yields the resolved choice.

    `None` resolves to on for a CPU and off for a GPU. On a CPU torch's kernels already give
    bit-identical results run after run, so switching checks on costs nothing. On a GPU it sets
    `torch.use_deterministic_algorithms` (embedding backward then uses its sorted, deterministic
    kernel instead of atomic adds), `CUBLAS_WORKSPACE_CONFIG=:4096:8` when unset (needed for
    deterministic cuBLAS; set before the first matrix product), cuDNN's deterministic mode; ops that
    have no deterministic CUDA kernel warn (warn_only) rather than stop the run, so such a run is
    byte-identical only when no warning was printed. It costs GPU speed, so it is off by default
    there. The previous global settings are restored afterwards.
    """
    kind = torch.device(device).type
    on = kind == "cpu" if setting is None else bool(setting)
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    if on and kind == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=kind != "cpu")
    torch.backends.cudnn.deterministic = on or before[2]
    torch.backends.cudnn.benchmark = before[3] and not on
    try:
        yield on
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]
