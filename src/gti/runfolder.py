"""Claiming a run folder, without torch: what may go into it, and what `--overwrite` removes.

A run folder holds one config's stages. `gti run` and `gti compare` may add methods to it as long as the
config is the same; `init.method` aside, which only says which method `gti run` runs (compare chooses its
methods itself). Another config is refused unless `--overwrite`, and then everything the old config made is
removed first (method folders and the results files), so no file of the folder describes the old run; `data/`
and `sids/` stay, since their stages check their own keys and rebuild when the new config needs other ones.
The CLI runs `check_run_folder` before torch is imported, so a refusal costs a fraction of a second.
"""

import shutil
from pathlib import Path

from gti.artifacts import MANIFEST, read_json
from gti.config import RunConfig, to_dict
from gti.config_text import differences
from gti.errors import GtiError
from gti.layout import RunLayout
from gti.methods import METHODS

KEPT = ("data", "sids")
"""Shared stage folders that `--overwrite` keeps (each stage's key decides whether it is reused)."""
RESULTS_FILES = ("results.json", "results.md", "report.html", "metrics.json", "cold_start.json", "diagnostics.json")
"""Files that describe the whole folder's run: rewritten together, removed together."""


def _comparable(config: dict) -> dict:
    """A config as the folder check compares it: without `init.method` (which method `gti run` ran) and `out`."""
    config = {**config, "init": {**config.get("init", {})}}
    config["init"].pop("method", None)
    config.pop("out", None)
    return config


def _previous(root: Path) -> dict | None:
    """The config of the finished stages in `root`, or None when it holds none (nothing to protect)."""
    path = root / "config.json"
    if not path.is_file() or not any(root.glob(f"**/{MANIFEST}")):
        return None
    try:
        before = read_json(path)
    except ValueError:
        return {}
    return before if isinstance(before, dict) else {}


def check_run_folder(config: RunConfig, root: Path, overwrite: bool) -> bool:
    """Whether `root` may hold `config`'s run; True when its finished stages were made with another config
    (then only with `overwrite`, and `clear_replaced` removes them).

    Raises:
        GtiError: `root` is a file, or holds another config's stages and not `overwrite`; one line.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise GtiError(f"{root}: exists and is not a folder; choose another --out")
    before, now = _previous(root), _comparable(to_dict(config))
    if before is None or _comparable(before) == now:
        return False
    if not overwrite:
        changed = differences(_comparable(before), now) if before else "its config.json is unreadable"
        raise GtiError(f"{root}: holds a run with another config ({changed}); pass --overwrite or choose --out")
    return True


def clear_replaced(root: Path) -> list[str]:
    """Remove what another config made in `root` (every method folder, the results files, plots), keeping
    `KEPT`; returns the names removed."""
    removed = []
    for path in sorted(Path(root).iterdir()):
        if path.name in KEPT or path.name == "config.json":
            continue
        if path.is_dir() and (path.name in METHODS or any(path.glob(f"**/{MANIFEST}"))):
            shutil.rmtree(path)
            removed.append(f"{path.name}/")
        elif path.is_file() and (path.name in RESULTS_FILES or path.suffix == ".png"):
            path.unlink()
            removed.append(path.name)
    return removed


def methods_on_disk(root: Path) -> list[str]:
    """The methods with a finished evaluation in `root` (one run per method, no seed folders), in `METHODS` order."""
    return [name for name in METHODS if (RunLayout(root).stage(name, "eval") / MANIFEST).is_file()]


def compare_record(root: Path) -> dict | None:
    """The folder's results.json (a `gti compare` run), or None."""
    path = Path(root) / "results.json"
    if not path.is_file():
        return None
    try:
        found = read_json(path)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def check_adding(root: Path, overwrite: bool) -> None:
    """`gti run` into a `gti compare --seeds` or `--grid`/`--choices` folder is refused (its methods' results are
    per seed or per chosen setting, which one run cannot rewrite); with `overwrite` the folder is replaced anyway."""
    record = compare_record(root)
    if overwrite or record is None:
        return
    if record.get("seeds") or record.get("tuning"):
        how = "--seeds" if record.get("seeds") else "--grid or --choices"
        raise GtiError(f"{root}: holds a `gti compare {how}` run; add a method with the same gti compare command "
                       "(its --methods extended), or choose another --out")


def finished(config: RunConfig, root: Path, methods: list[str], seeds: list[int] | None = None) -> bool:
    """Whether `root` already holds this exact config's finished run of `methods` (stage keys follow from the config
    alone, so every stage would be read back): config.json equal, every method's evaluation finished, and the results
    files written for exactly these methods (and seeds). The CLI then prints them without importing torch."""
    root = Path(root)
    try:
        same = (root / "config.json").is_file() and read_json(root / "config.json") == to_dict(config)
    except ValueError:
        return False
    evaluated = all((RunLayout(root, seed).stage(name, "eval") / MANIFEST).is_file()
                    for name in methods for seed in (seeds or [None]))
    if not same or not evaluated or not (root / "report.html").is_file():
        return False
    record = compare_record(root)
    if record is None:  # a `gti run` folder: one method, its metrics.json
        return len(methods) == 1 and not seeds and (root / "metrics.json").is_file()
    return (list(record.get("methods", {})) == methods and (record.get("seeds") or None) == (seeds or None)
            and not record.get("tuning") and (root / "results.md").is_file())
