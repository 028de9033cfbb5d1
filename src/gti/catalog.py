"""What a trained folder holds, read without torch: its config, its model folder, its catalog of item ids;
and requests checked against that catalog.

`gti recommend`, `gti export` and `gti serve` check their input here first, so a wrong id, a bad
`k` or a missing model is reported in a fraction of a second, before torch or the model loads.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from gti.config import RunConfig, from_dict
from gti.data.files import shown
from gti.errors import GtiError
from gti.layout import RunLayout

SETTINGS_FILE = "gti_config.json"
"""An exported folder's settings; its presence tells an export from a run folder."""
ITEMS_FILE = "items.jsonl"
SIDS_FILE = "sids.json"
MAX_K = 1000
REQUEST_FIELDS = ("history", "k", "user_id", "exclude_history")


def is_export(path: Path) -> bool:
    return (Path(path) / SETTINGS_FILE).is_file()


def read_run_config(run_dir: Path) -> RunConfig:
    """The resolved config a run folder was made with."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise GtiError(f"{run_dir}: not a run folder (no config.json); give the --out folder of gti run or compare")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise GtiError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise GtiError(f"{path}: expected a JSON object")
    return from_dict(data, str(path))


def model_folder(run_dir: Path, method: str, seed: int | None) -> Path:
    """`<run>/<method>[/seed-<s>]/finetune/model`, checked to be a finished stage."""
    run_dir = Path(run_dir)
    stage = RunLayout(run_dir, seed).stage(method, "finetune")
    folder = stage / "model"
    if not (stage / "manifest.json").is_file() or not folder.is_dir():
        found = sorted(str(p.parent.parent.relative_to(run_dir)) for p in run_dir.glob("**/finetune/model"))
        hint = f"fine-tuned models here: {', '.join(found)}" if found else "it holds no fine-tuned model yet"
        raise GtiError(f"{folder}: no fine-tuned model for method {method!r}"
                       + ("" if seed is None else f" seed {seed}") + f"; {hint}")
    return folder


def which_model(path: Path, method: str, seed: int | None) -> str | None:
    """For a run folder with several fine-tuned methods, the line that says which one answers (None: an export, or
    a folder with one model)."""
    path = Path(path)
    if is_export(path):
        return None
    found = sorted(str(p.parent.parent.relative_to(path)) for p in path.glob("**/finetune/model"))
    if len(found) < 2:
        return None
    chosen = str(model_folder(path, method, seed).parent.parent.relative_to(path))
    others = ", ".join(name for name in found if name != chosen)
    return f"answering with method {method}" + ("" if seed is None else f" seed {seed}") + \
        f" ({chosen}/finetune/model); the folder also has {others}: --method chooses"


def check_trained_folder(path: Path, method: str, seed: int | None) -> None:
    """Refuse, in one line, a path that is neither an export nor a run folder with that method's model."""
    path = Path(path)
    if is_export(path):
        return
    if not path.is_dir():
        raise GtiError(f"{path}: no such folder; expected a run folder or a folder written by gti export")
    read_run_config(path)
    model_folder(path, method, seed)


def catalog_ids(path: Path) -> frozenset[str] | None:
    """The item ids of a run folder's (`sids/sids.json`) or an export's (`sids.json`) catalog.

    None when the file is missing or not the expected shape: the full loader then reports it.
    """
    path = Path(path)
    file = path / SIDS_FILE if is_export(path) else path / "sids" / SIDS_FILE
    try:
        sids = json.loads(file.read_text())["sids"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return frozenset(sids) if isinstance(sids, dict) else None


@dataclass(frozen=True)
class Request:
    """One history to recommend for."""

    history: tuple[str, ...]
    k: int = 10
    exclude_history: bool = False


def check_k(k: object, where: str | None = None, max_k: int = MAX_K, name: str = "k") -> int:
    """`k` when it is an integer from 1 to `max_k`; else a one-line GtiError (`where` prefixes it)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_k:
        raise GtiError(f"{where + ': ' if where else ''}{name}: expected an integer from 1 to {max_k}, got {shown(k)}")
    return k


def check_request(catalog: frozenset[str] | None, history: object, k: object = 10, where: str | None = None,
                  max_k: int = MAX_K, max_history: int | None = None) -> Request:
    """A validated request; ids may be strings or integers; `where` prefixes error messages (e.g. `file:line`).

    Args:
        catalog: the item ids a history may hold (None: ids are not checked).
        max_k, max_history: the largest `k` and history length accepted.

    Raises:
        GtiError: an empty or non-list history, an id not in the catalog (named), or a bad k.
    """
    prefix = f"{where}: " if where else ""
    check_k(k, where, max_k)
    if not isinstance(history, list | tuple) or not history:
        raise GtiError(f"{prefix}history: expected a non-empty list of item ids, got {shown(history)}")
    if max_history is not None and len(history) > max_history:
        raise GtiError(f"{prefix}history: {len(history)} items, more than the limit of {max_history}")
    ids = []
    for value in history:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise GtiError(f"{prefix}history: item ids must be strings, got {shown(value)}")
        ids.append(value)
    if catalog is not None:
        unknown = [item for item in dict.fromkeys(ids) if item not in catalog]
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise GtiError(f"{prefix}history: unknown item id {shown(unknown[0])}{more}: not in the catalog")
    return Request(tuple(ids), k)


def parse_history(text: str) -> list[str]:
    """`--history ID,ID,...` as a list of ids (blanks dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def read_requests(catalog: frozenset[str] | None, path: Path, k: int, exclude_history: bool) -> list[tuple[Request, object]]:
    """Every line of a JSONL file `{"history": [...], "k": 10, "user_id": ..., "exclude_history": false}`, checked.

    Returns:
        (request, user_id or None) per non-blank line.
    """
    from gti.data.files import parse_json_line, read_lines

    path = Path(path)
    if not path.is_file():
        raise GtiError(f"{path}: no such file")
    requests = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        record = parse_json_line(line, where)
        unknown = [key for key in record if key not in REQUEST_FIELDS]
        if unknown:
            raise GtiError(f"{where}: unknown field {unknown[0]!r}; expected {', '.join(REQUEST_FIELDS)}")
        if "history" not in record:
            raise GtiError(f"{where}: missing field 'history'")
        exclude = record.get("exclude_history", exclude_history)
        if not isinstance(exclude, bool):
            raise GtiError(f"{where}: exclude_history: expected true or false, got {shown(exclude)}")
        request = check_request(catalog, record["history"], record.get("k", k), where)
        requests.append((Request(request.history, request.k, exclude), record.get("user_id")))
    if not requests:
        raise GtiError(f"{path}: holds no requests")
    return requests
