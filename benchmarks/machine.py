"""What every benchmark result records about where and how it ran: machine, settings, command."""

import datetime
import os
import platform
import shlex
import sys

import torch

from gti.artifacts import versions

# Environment settings that change the speed or the inputs of a run (see DESIGN.md, "Facts measured").
SETTINGS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "HF_HUB_OFFLINE",
    "GTI_CACHE",
    "OMP_NUM_THREADS",
)


def _proc_field(path: str, name: str) -> str | None:
    """The value of the first `name: value` line of a /proc file, or None."""
    try:
        with open(path) as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        return None
    return None


def machine() -> dict:
    """CPU model, cores, RAM, torch threads, library versions and the date (UTC)."""
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")
    return {
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "cpu_cores": os.cpu_count(),
        "ram_gib": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "versions": versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def invocation() -> dict:
    """The settings in effect (unset ones are null) and the exact command, runnable as one shell line from `cwd`."""
    settings = {name: os.environ.get(name) for name in SETTINGS}
    prefix = [f"{name}={value}" for name, value in settings.items() if value is not None]
    return {"settings": settings, "command": shlex.join([*prefix, sys.executable, *sys.argv]), "cwd": os.getcwd()}
