"""What every benchmark result records about where and how it ran: machine, settings, command."""

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from gti.artifacts import MANIFEST, read_json, versions

ROOT = Path(__file__).resolve().parents[1]  # the repository root
# Environment settings that change the speed or the inputs of a run (see docs/design.md, "Measured facts").
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
    """CPU model, cores, its bfloat16 support, RAM, torch threads, the GPU (None: none), library versions, the date (UTC).

    `cpu_native_bf16` is what /proc/cpuinfo says (avx512_bf16 or amx_bf16); `gti_native_bf16_env` is
    the GTI_NATIVE_BF16 override in effect, if any, under which `auto` resolved as on the other kind of CPU.
    """
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    return {
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "cpu_cores": os.cpu_count(),
        "cpu_native_bf16": "avx512_bf16" in flags or "amx_bf16" in flags,
        "cpu_avx512": "avx512f" in flags,
        "gti_native_bf16_env": os.environ.get("GTI_NATIVE_BF16"),
        "ram_gib": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpus": torch.cuda.device_count(),
        "platform": platform.platform(),
        "versions": versions(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def repo_relative(word: str, cwd: str | None = None, root: Path = ROOT) -> str:
    """A command word or setting as a result records it: no absolute path of this machine.

    A path inside the repository's parent folder (the repository itself, or `../shared`
    beside it) becomes relative to the repository root; any other absolute path keeps only
    its last component, as `<outside the repo>/name`. A relative path that exists from
    `cwd` is rebased onto the repository root; other words are kept.

    Args:
        word: one word of a command line, or a setting's value.
        cwd: the folder relative paths are read from (default: the current folder).
        root: the repository root (this one by default).
    """
    cwd = cwd or os.getcwd()
    if not os.path.isabs(word):
        if not word or word.startswith("-") or not os.path.exists(os.path.join(cwd, word)):
            return word
        word = os.path.join(cwd, word)
    path = os.path.normpath(word)
    if os.path.commonpath([path, str(root.parent)]) == str(root.parent):
        return os.path.relpath(path, root)
    return f"<outside the repo>/{os.path.basename(path)}"


def without_paths(value: object, cwd: str | None = None) -> object:
    """`value` (a result, JSON-ready) with every absolute path in its strings written as `repo_relative` writes it."""
    if isinstance(value, dict):
        return {key: without_paths(item, cwd) for key, item in value.items()}
    if isinstance(value, list):
        return [without_paths(item, cwd) for item in value]
    if isinstance(value, str) and value.startswith("/"):
        return repo_relative(value, cwd)
    return value


def relative_command(words: list[str], cwd: str | None = None, root: Path = ROOT) -> str:
    """`words` as one shell line runnable from the repository root; `NAME=value` words keep their name."""
    shown = []
    for word in words:
        name, equals, value = word.partition("=")
        if equals and name.isidentifier() and name.upper() == name:
            shown.append(f"{name}={repo_relative(value, cwd, root)}")
        else:
            shown.append(repo_relative(word, cwd, root))
    return shlex.join(shown)


def code_version(root: Path = ROOT) -> dict | None:
    """The git commit the code ran at and whether tracked files differed from it (`dirty`), or None outside git.

    A dirty run's figures are not exactly that commit's: its uncommitted changes are not recorded.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def invocation() -> dict:
    """The settings in effect (unset ones are null), the command, the folder it ran in (none absolute) and the code's commit.

    The command runs from the repository root (its paths are relative to it; the interpreter
    is written `python`: the one with gti installed); `cwd` is the folder the run was
    started from, relative to the repository root.
    """
    settings = {name: os.environ.get(name) for name in SETTINGS}
    prefix = [f"{name}={value}" for name, value in settings.items() if value is not None]
    return {
        "settings": {name: None if value is None else repo_relative(value) for name, value in settings.items()},
        "command": relative_command([*prefix, "python", *sys.argv]),
        "cwd": os.path.relpath(os.getcwd(), ROOT),
        "code": code_version(),
    }


def stage_seconds(run_dir: Path) -> dict:
    """Seconds every finished stage under the run folder took when it was computed (cached ones included), in all
    and for the grid points: what the benchmark costs from nothing, however many sessions it took."""
    paths = sorted(Path(run_dir).glob(f"**/{MANIFEST}"))
    unique = {path.stat().st_ino: path for path in paths}  # hard links of one stage share an inode
    seconds = {inode: read_json(path)["seconds"] for inode, path in unique.items()}
    in_grid = {path.stat().st_ino for path in paths if "/grid/" in path.as_posix()}
    grid = sum(seconds[inode] for inode in in_grid)
    linked = len(paths) - len(unique)
    return {"total": round(sum(seconds.values()), 1), "grid_points": round(grid, 1), "stages": len(unique),
            "note": f"each stage counted once ({linked} stage folders are hard links of a grid point's or another "
                    "method's stage with the same key, not computed again)"}
