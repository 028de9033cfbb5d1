"""Checks that need neither torch nor a model: run by the CLI before anything heavy loads.

A misspelled path, method, seed list or budget is then reported in a fraction of a second
(`gti run` with a config typo answers in about 0.2 s) instead of after torch and the backbone
have loaded. The stages still check everything themselves when called from Python.
"""

import difflib
from pathlib import Path

from gti.config import NAMED_MODELS, RunConfig
from gti.errors import GtiError
from gti.methods import METHODS

DEFAULT_ENCODER = "all-minilm-l6-v2"


def _looks_like_path(name: str) -> bool:
    """A name that can only mean a local folder (a hub name is `name` or `org/name`)."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or "\\" in name


def hub_offline() -> bool:
    """Whether the Hugging Face hub is off (`HF_HUB_OFFLINE`), read by huggingface_hub itself, so gti and the loaders
    never disagree on what the variable means."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _cached_on_hub(name: str) -> bool:
    """Whether the local Hugging Face cache holds a copy of hub model `name` (its config.json), without the network."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # a malformed repo id, an unreadable cache: not cached
        return False
    return isinstance(found, str)


def _on_hub(name: str) -> str | None:
    """Ask the hub once (one download of the model's config.json) whether `name` exists; None when it does, else why not."""
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(name, "config.json", etag_timeout=10)
    except Exception as error:  # not found, gated, unreachable: all mean "cannot use this name now"
        text = str(error).strip().splitlines()
        return text[0] if text else type(error).__name__
    return None


def check_model_name(key: str, name: str, named: tuple[str, ...]) -> None:
    """Resolve a model name before any stage runs, without torch: a named model, a local folder, or a hub model.

    A name written as a path must be a folder. Any other name that is neither named nor a folder is a hub name: with
    `HF_HUB_OFFLINE` set it must be in the local Hugging Face cache (nothing is asked of the network); without it, a
    name close to a named model is taken for a typo and refused, and any other is asked of the hub once.

    Raises:
        GtiError: the name resolves to nothing; the message names the nearest named model.
    """
    if name in named:
        return
    folder = Path(name).expanduser()
    if _looks_like_path(name) and not folder.is_dir():
        problem = "not a folder" if folder.exists() else "no such folder"
        raise GtiError(f"{key}: {name}: {problem}; expected {', '.join(named)}, a Hugging Face model name "
                       "(name or org/name) or a local model folder")
    if folder.is_dir() or _cached_on_hub(name):
        return
    near = difflib.get_close_matches(name.lower(), named, n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]!r}?" if near else f"; expected {', '.join(named)}, a local folder or a hub name"
    if hub_offline():
        raise GtiError(f"{key}: {name!r} is not a named model, a local folder or a model in the Hugging Face cache, and "
                       f"HF_HUB_OFFLINE is set, so the hub is not asked{hint}")
    if near:
        raise GtiError(f"{key}: {name!r} is not a named model or a local folder{hint}")
    why = _on_hub(name)
    if why is not None:
        raise GtiError(f"{key}: {name!r}: not a named model or a local folder, and the Hugging Face hub cannot give it "
                       f"({why}); expected {', '.join(named)}, a local folder or a reachable hub model")


def check_paths(config: RunConfig) -> None:
    """The dataset folder, the backbone and the encoder of a config, where they are local paths."""
    data = config.data
    if not (data.source == "ml-100k" and data.format in (None, "ml-100k")):
        folder = Path(data.source)
        if not folder.is_dir():
            problem = "not a folder" if folder.exists() else "no such folder"
            raise GtiError(f"data.source: {data.source}: {problem}; expected 'ml-100k' or a dataset folder "
                           "(see `gti data stats --help`)")
    check_model_name("model.name", config.model.name, NAMED_MODELS)
    check_model_name("sids.encoder", config.sids.encoder, (DEFAULT_ENCODER,))


def check_out(out: str | Path | None) -> None:
    """An output folder may exist, but not as a file."""
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise GtiError(f"{out}: exists and is not a folder; choose another --out")


def check_sids_dir(folder: str | Path | None) -> None:
    """`--sids DIR` must be a folder written by `gti sids`."""
    if folder is None:
        return
    folder = Path(folder)
    if not (folder / "sids.json").is_file() or not (folder / "manifest.json").is_file():
        problem = "no such folder" if not folder.exists() else "expected sids.json and manifest.json"
        raise GtiError(f"--sids {folder}: not a folder written by `gti sids` ({problem})")


def check_methods(names: list[str], flag: str = "--methods") -> None:
    for name in names:
        if name not in METHODS:
            raise GtiError(f"{flag}: {name!r} is not one of {', '.join(METHODS)}")
    if len(set(names)) != len(names):
        raise GtiError(f"{flag}: a method is named twice in {','.join(names)}")


def check_backbone(model_name: str, names: list[str]) -> None:
    """A decoder trained from nothing (`model.name = "scratch"`) reads no text: methods that read item text are refused."""
    from gti.config import SCRATCH
    from gti.methods import uses_text

    reading = [name for name in names if uses_text(name)]
    if model_name == SCRATCH and reading:
        raise GtiError(f"model.name = {SCRATCH}: {', '.join(reading)} read item text, which a decoder with random weights "
                       "and no word vocabulary cannot read; use text-free methods (mean, random, rows-first, scratch)")


def check_seeds(seeds: list[int] | None) -> None:
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0):
        raise GtiError(f"--seeds: expected distinct non-negative integers, got {seeds}")


def budget_overrides(budgets: list[int] | None) -> list[str]:
    """`--budgets 100,200,350` as config overrides: the largest is `finetune.steps`, the others `eval.at_steps`."""
    if budgets is None:
        return []
    if not budgets or sorted(set(budgets)) != budgets or budgets[0] < 1:
        raise GtiError(f"--budgets: expected increasing distinct positive step counts, got {budgets}")
    return [f"finetune.steps={budgets[-1]}", f"eval.at_steps={budgets[:-1]}"]
