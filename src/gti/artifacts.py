"""Atomic artifacts and stage folders with manifests.

A stage writes into a temporary sibling folder and renames it into place only after its
manifest is written, so a run folder never holds a partial stage under its final name.
A stage whose manifest records the same key (hash of its config and its inputs' keys)
is not recomputed.
"""

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from gti.distributed import is_main, wait

MANIFEST = "manifest.json"
_VERSIONED = ("gti", "torch", "transformers", "accelerate", "peft", "sentence-transformers", "numpy")


def atomic_write(path: Path, data: str | bytes) -> Path:
    """Write text or bytes to `path` atomically: a temporary name in the same folder, then a rename.

    A reader (or a killed writer) never sees a partial file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; artifacts are meant to be shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, data: object) -> None:
    """Write JSON (indented, newline-terminated) to `path` atomically."""
    atomic_write(path, json.dumps(data, indent=2) + "\n")


def read_json(path: Path) -> object:
    """Read a JSON artifact written by `write_json`."""
    return json.loads(Path(path).read_text())


def versions() -> dict[str, str]:
    """Python and library versions, recorded in every manifest."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def stage_key(config: object, inputs: dict[str, str]) -> str:
    """Hash of a stage's config and its inputs' keys."""
    text = json.dumps({"config": config, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_manifest(folder: Path, key: str) -> dict | None:
    """The stage's manifest when it exists and matches `key`, else None."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = read_json(path)
    except json.JSONDecodeError:
        return None
    return manifest if manifest.get("key") == key else None


def work_dir(folder: Path, config: object, inputs: dict[str, str]) -> Path:
    """Where an unfinished stage keeps checkpoints and logs: `<stage>.checkpoints/<key>/` beside its folder.

    Keyed like the stage, so a changed config never resumes another config's checkpoint.
    """
    return folder.parent / f"{folder.name}.checkpoints" / stage_key(config, inputs)


def run_stage(
    folder: Path, config: object, inputs: dict[str, str], build: Callable[[Path], dict | None], collective: bool = False
) -> tuple[dict, bool]:
    """Run `build(temporary_folder)` unless `folder` already holds this stage's result.

    Args:
        folder: the stage's final folder.
        config: the stage's own settings (JSON-ready).
        inputs: upstream stage name -> key.
        build: writes the stage's files into the folder it is given; returns extra manifest fields.
        collective: under a multi-process launcher, every process runs `build` (training) and the
            main process's folder is kept; otherwise only the main process builds and the others wait.

    Returns:
        The manifest, and whether it came from the cache.
    """
    key = stage_key(config, inputs)
    wait()  # every process looks at the folder in the same state
    manifest = cached_manifest(folder, key)
    if manifest is not None:
        return manifest, True
    if is_main():
        folder.parent.mkdir(parents=True, exist_ok=True)
        for stale in folder.parent.glob(f".{folder.name}.tmp-*"):  # left by a killed process
            shutil.rmtree(stale, ignore_errors=True)
    wait()
    if is_main() or collective:
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            start = time.perf_counter()
            extra = build(staging) or {}
            manifest = {
                "stage": folder.name, "key": key, "config": config, "inputs": inputs,
                "versions": versions(), "seconds": round(time.perf_counter() - start, 3), **extra,
            }
            if is_main():
                write_json(staging / MANIFEST, manifest)
                if folder.exists():
                    shutil.rmtree(folder)
                os.replace(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
    wait()
    return read_json(folder / MANIFEST), False
