"""A small hyperparameter grid chosen on the validation targets, the same grid for every method.

`gti compare --grid finetune.lr=1e-4,3e-4 --grid finetune.new_rows_lr=same,1e-3` gives each
language-model method every combination of the `finetune.*` values (the product, in the order the
keys and values are given; `same` for `new_rows_lr`: the new rows train at `finetune.lr`), and
`sasrec` its `sasrec.*` values; `mostpop` has no hyperparameters. A method that does not tune
`new_rows_lr` (`mean`: standard practice, see `gti.methods.Method.tunes_rows_lr`) keeps the
config's value in every point.

Each point fine-tunes (or fits) from the method's shared stages (data, SIDs, init, grounding are
computed once for every point) into `<run>/<method>/grid/<point>/` and is evaluated on the
validation targets (`<point>/valid/`: the second-to-last item of the first `train.validate_users`
users, with the evaluation's beam search), never on the test targets; budget points
(`eval.at_steps`) are not evaluated during the search.
The point with the highest validation recall@10 is chosen; ties go to the higher validation
NDCG@10, then MRR, then to the earlier point in grid order. The chosen settings then run as the
method's own run (`<method>/finetune/`, `<method>/eval/`, budget points included), whose test
metrics are reported. When that run's stage has the chosen point's key (no budget points, the
search's seed), the point's folder is hard-linked in and not trained again (`gti.runner.reuse`);
likewise a point equal to a finished run of the method it trains like. With `--seeds`, the search
runs with the first seed, and the choice runs with every seed. Points a method shares with another (`mean-rowlr`'s points with
`new_rows_lr = same` are `mean`'s) are trained once.
"""

import itertools
import re
from collections.abc import Callable
from pathlib import Path

from gti.artifacts import read_json
from gti.config import RunConfig, from_dict, parse_override, to_dict
from gti.errors import GtiError
from gti.methods import METHODS

CHOICE = ("recall@10", "ndcg@10", "mrr")
"""Validation metrics that choose a point, in order of precedence (then the earlier point)."""
TUNABLE = {"finetune": "the language-model methods", "sasrec": "sasrec"}
"""Config sections a grid may vary, and the methods each one concerns."""
SAME = "same"
"""The grid word for `finetune.new_rows_lr` = None (the new rows train at `finetune.lr`)."""


def parse_grid(texts: list[str], config: RunConfig) -> dict[str, list]:
    """`--grid section.key=v1,v2,...` flags -> {"section.key": [values]}, each value checked against the schema.

    Raises:
        GtiError: a malformed flag, a key outside [finetune] and [sasrec], a key given twice, a repeated
            value, a value the config would refuse, or `eval.beams` below 10 (no recall@10 to choose by);
            one line naming the key.
    """
    if config.eval.beams < 10:
        raise GtiError(f"--grid: points are chosen by validation recall@10; set eval.beams to at least 10 "
                       f"(it is {config.eval.beams})")
    grid: dict[str, list] = {}
    for text in texts:
        key, equals, raw = text.partition("=")
        key = key.strip()
        section, _, name = key.partition(".")
        if not equals or not name or "." in name:
            raise GtiError(f"--grid {text!r}: expected section.key=value,value,... (e.g. finetune.lr=1e-4,3e-4)")
        if section not in TUNABLE:
            raise GtiError(f"--grid {key}: only finetune.* and sasrec.* settings can be tuned (the stages before "
                           f"fine-tuning are shared by every grid point)")
        if key in grid:
            raise GtiError(f"--grid {key}: given twice; list all its values in one flag")
        words = [word.strip() for word in raw.split(",")]
        if not all(words):
            raise GtiError(f"--grid {key}: expected comma-separated values, got {raw!r}")
        values = [None if key == "finetune.new_rows_lr" and word == SAME else parse_override(f"{key}={word}")[1]
                  for word in words]
        if len({repr(value) for value in values}) != len(values):
            raise GtiError(f"--grid {key}: a value is repeated in {raw!r}")
        for value in values:
            apply(config, {key: value}, f"--grid {key}")
        grid[key] = values
    return grid


def apply(config: RunConfig, settings: dict[str, object], where: str = "grid point") -> RunConfig:
    """`config` with `settings` ({"section.key": value}) replaced, validated like any config."""
    values = to_dict(config)
    for key, value in settings.items():
        section, name = key.split(".", 1)
        values[section][name] = value
    try:
        return from_dict(values, where)
    except GtiError as error:
        if str(error).startswith(where):
            raise
        raise GtiError(f"{where}: {error}") from None


def axes(name: str, grid: dict[str, list]) -> dict[str, list]:
    """The grid keys `name` tunes, with their values (empty: nothing to tune, e.g. `mostpop`)."""
    method = METHODS[name]
    tuned = {}
    for key, values in grid.items():
        section = key.split(".", 1)[0]
        if section == "finetune" and method.kind == "lm" and (key != "finetune.new_rows_lr" or method.tunes_rows_lr):
            tuned[key] = values
        elif section == "sasrec" and name == "sasrec":
            tuned[key] = values
    return tuned


def _word(key: str, value: object) -> str:
    if value is None:
        return SAME if key == "finetune.new_rows_lr" else "none"
    return re.sub(r"[^A-Za-z0-9.+-]", "-", str(value))


def label(settings: dict[str, object]) -> str:
    """A point's folder name, e.g. `lr-0.0001_new_rows_lr-same` (every grid key of its section, tuned or fixed)."""
    return "_".join(f"{key.split('.', 1)[1]}-{_word(key, value)}" for key, value in settings.items())


def choose(points: list[dict]) -> int:
    """The index of the best point by its validation metrics (`CHOICE` in order; ties: the earlier point)."""
    best = 0
    for index, point in enumerate(points):
        if tuple(point["valid"][m] for m in CHOICE) > tuple(points[best]["valid"][m] for m in CHOICE):
            best = index
    return best


def tune(name: str, config: RunConfig, grid: dict[str, list], folder: Callable[[str], Path],
         run_point: Callable[[RunConfig, Path], dict], root: Path) -> dict | None:
    """Run `name`'s grid points on the validation targets and choose one.

    Args:
        name: the method.
        config: the run's config (with the search's seed).
        grid: `parse_grid`'s result.
        folder: a point's label -> its folder.
        run_point: (the point's config, its folder) -> {"valid": validation metrics, "compute": {...}}.
        root: the run folder (the record's folders are relative to it).

    Returns:
        The record {"tuned": keys, "fixed": {key: value kept}, "points": [{"settings", "folder", "valid",
        "compute"}], "chosen": index, "settings": the chosen point's settings (`apply` them to the run's
        config for the method's own run), "search": {"points", "train_seconds", "train_tokens"} summed
        over the points (LM tokens; null for an anchor; a point shared with another method counts in
        both)}; None when the method tunes nothing.
    """
    tuned = axes(name, grid)
    if not tuned:
        return None
    section = next(iter(tuned)).split(".", 1)[0]
    fixed = {key: _current(config, key) for key in grid if key.startswith(section + ".") and key not in tuned}
    record = {"tuned": list(tuned), "fixed": fixed, "points": []}
    combinations = list(itertools.product(*tuned.values()))
    for number, values in enumerate(combinations, start=1):
        tried = dict(zip(tuned, values))
        settings = {key: tried[key] if key in tried else fixed[key] for key in grid if key in tried or key in fixed}
        point = apply(apply(config, settings), {"eval.at_steps": []})  # the search evaluates the final model only
        place = folder(label(settings))
        print(f"== {name}: grid point {number}/{len(combinations)} ({label(settings)}), on the validation targets")
        outcome = run_point(point, place)
        record["points"].append({"settings": settings, "folder": place.relative_to(root).as_posix(), **outcome})
    record["chosen"] = choose(record["points"])
    record["settings"] = record["points"][record["chosen"]]["settings"]
    computes = [point["compute"] for point in record["points"]]
    record["search"] = {"points": len(computes), "train_seconds": round(sum(c["train_seconds"] for c in computes), 3),
                        "train_tokens": None if computes[0].get("train_tokens") is None
                        else sum(c["train_tokens"] for c in computes)}
    return record


def _current(config: RunConfig, key: str) -> object:
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)


def description(config: RunConfig) -> dict:
    """How points are chosen, as results.json records it."""
    return {"split": "valid", "users": config.train.validate_users, "metric": CHOICE[0],
            "ties": f"higher validation {', then '.join(CHOICE[1:])}, then the earlier point in grid order"}


def settings_source(grid: list[str] | None, choices: str | None, config: RunConfig,
                    methods: list[str]) -> tuple[dict[str, list] | None, dict | None]:
    """Where the methods' tuned settings come from: (`parse_grid`'s axes, None) for a grid, (None,
    `read_choices`'s record) for an earlier run's choices, (None, None) for neither.

    Raises:
        GtiError: both given, or what `parse_grid` / `read_choices` refuse; one line.
    """
    if grid and choices:
        raise GtiError("--grid and --choices: give one (a grid chooses here; --choices reuses an earlier run's choice)")
    return (parse_grid(grid, config) if grid else None), (read_choices(choices, config, methods) if choices else None)


PROTOCOL = ("grid", "split", "users", "metric", "ties")
"""What two tunings must share for their choices to be used side by side (`read_choices` with several files)."""


def _tuning(path: str) -> dict:
    """The `tuning` section of one results JSON; one-line GtiError when it is missing or unreadable."""
    where = f"--choices {path}"
    if not Path(path).is_file():
        raise GtiError(f"{where}: no such file (expected the results.json of a `gti compare --grid` run)")
    try:
        data = read_json(Path(path))
    except (ValueError, OSError) as error:
        raise GtiError(f"{where}: not a JSON file ({error})") from None
    tuning = data.get("tuning") if isinstance(data, dict) else None
    if not isinstance(tuning, dict) or not isinstance(tuning.get("methods"), dict) or "grid" not in tuning:
        raise GtiError(f"{where}: holds no grid record (`tuning`); expected the results.json of a `gti compare --grid` run")
    return tuning


def read_choices(path: str, config: RunConfig, methods: list[str]) -> dict:
    """The grid record of earlier `gti compare --grid` runs, to run each method at its choice (`--choices`).

    Args:
        path: that run's results.json (or a benchmark JSON that holds its `tuning` section), or several,
            comma-separated: runs that tuned different methods with the same protocol (grid, validation split
            and users, metric, tie rule), e.g. a method tuned later beside the others.
        config: this run's config; every choice must be a valid setting of it.
        methods: this run's methods; records of other methods are left out.

    Returns:
        The earlier `tuning` section (the first file's protocol), its methods restricted to `methods`, with
        `choices_from` (the path as given) and `untuned` (the methods here with no record there: they run at the
        config's settings).

    Raises:
        GtiError: a missing or unreadable file, no grid record in it, files whose protocols differ, a method
            chosen in two files, or a choice this config refuses; one line.
    """
    paths = [part.strip() for part in path.split(",") if part.strip()]
    if not paths:
        raise GtiError("--choices: expected a results.json path (or several, comma-separated)")
    tunings = [_tuning(one) for one in paths]
    first, owner, records = tunings[0], {}, {}
    for one, tuning in zip(paths, tunings):
        where = f"--choices {one}"
        differs = [key for key in PROTOCOL if tuning.get(key) != first.get(key)]
        if differs:
            raise GtiError(f"{where}: its tuning differs from {paths[0]}'s in {', '.join(differs)}; "
                           "expected choices made by the same protocol")
        for name, record in tuning["methods"].items():
            if name not in methods:
                continue
            if name in owner:
                raise GtiError(f"{where}: tuning.methods.{name} is also chosen in {owner[name]}; give each method's choice once")
            if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
                raise GtiError(f"{where}: tuning.methods.{name}.settings: expected an object of section.key -> value")
            for key in record["settings"]:
                if key.split(".", 1)[0] not in TUNABLE:
                    raise GtiError(f"{where}: tuning.methods.{name}.settings: {key} is not a finetune.* or sasrec.* setting")
            apply(config, record["settings"], f"{where}: {name}")
            owner[name], records[name] = one, record
    untuned = [name for name in methods if name not in records and axes(name, first["grid"])]
    return {**{key: value for key, value in first.items() if key != "methods"}, "methods": records,
            "choices_from": path, "untuned": untuned}
