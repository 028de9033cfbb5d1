"""Typed, validated configuration for every stage: one schema for TOML files, `--set` and Python.

The schema (a dataclass per stage, each field with its default and a docstring line) is
`gti.config_schema`, re-exported here; the rules beyond types are `gti.config_rules`. A run's
config is a `RunConfig`; `load_config` reads a TOML file, applies `--set section.key=value`
overrides, and rejects unknown keys, wrong types and impossible values with one clear line.
"""

import dataclasses
import tomllib
import types
import typing
from pathlib import Path

from gti.config_rules import CHOICES, validate  # noqa: F401 (CHOICES: part of this module's interface)
from gti.config_schema import (  # noqa: F401 (the schema: part of this module's interface)
    NAMED_MODELS,
    SCRATCH,
    SID_TO_TEXT,
    SMOLLM2,
    TEXT_TO_SID,
    TINY_RANDOM,
    DataConfig,
    EvalConfig,
    FinetuneConfig,
    GroundConfig,
    InitConfig,
    LcrecConfig,
    ModelConfig,
    PromptConfig,
    RunConfig,
    SasrecConfig,
    SidConfig,
    TrainConfig,
)
from gti.config_text import check_key_path, located, unknown_key
from gti.errors import GtiError


def _check_type(value: object, annotation: object, where: str) -> object:
    """Return `value` converted to `annotation` (int -> float only), or raise GtiError."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in typing.get_args(annotation):
            return None
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _check_type(value, inner[0], where)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise GtiError(f"{where}: expected a list, got {value!r}")
        return [_check_type(v, item_type, where) for v in value]
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, bool) or not isinstance(value, annotation):
        raise GtiError(f"{where}: expected {getattr(annotation, '__name__', annotation)}, got {value!r}")
    return value


def _build(cls: type, values: dict, where: str) -> object:
    """Instantiate a config dataclass from a dict, rejecting unknown keys and wrong types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise unknown_key(cls, key, where)
        annotation = typing.get_type_hints(cls)[key]
        path = f"{where}.{key}" if where else key
        if dataclasses.is_dataclass(annotation):
            if not isinstance(value, dict):
                raise GtiError(f"{path}: expected a table of settings, got {value!r}")
            kwargs[key] = _build(annotation, value, path)
        else:
            kwargs[key] = _check_type(value, annotation, path)
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], object]:
    """Split `section.key=value` into a key path and a TOML-parsed value (bare words are strings).

    The key path is checked against the schema here, so a misspelled section or key names the `--set` it came from.
    """
    if "=" not in text:
        raise GtiError(f"--set {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if raw.strip().lower() in ("none", "null"):
        value = None
    keys = [part.strip() for part in key.strip().split(".")]
    check_key_path(RunConfig, keys, f"--set {text}")
    return keys, value


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> RunConfig:
    """Read a TOML config (or the defaults when `path` is None) and apply `--set` overrides.

    Raises:
        GtiError: one line naming the file and line (or the `--set`) and the key, with what was expected.
    """
    values: dict = {}
    text = ""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise GtiError(f"{path}: config file not found")
        try:
            text = path.read_text()
            values = tomllib.loads(text)
        except UnicodeDecodeError as error:
            raise GtiError(f"{path}: not UTF-8 text ({error})") from None
        except tomllib.TOMLDecodeError as error:
            raise GtiError(f"{path}: invalid TOML: {error}") from None
    given: dict[tuple[str, ...], str] = {}
    for override in overrides:
        keys, value = parse_override(override)
        target = values
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise GtiError(f"--set {override!r}: {key!r} is not a section")
        target[keys[-1]] = value
        given[tuple(keys)] = override
    try:
        return validate(_build(RunConfig, values, ""))
    except GtiError as error:
        raise located(error, path, text, given) from None


def from_dict(values: dict, where: str = "config") -> RunConfig:
    """A validated `RunConfig` from plain data (what `to_dict` gives back)."""
    try:
        config = _build(RunConfig, values, "")
    except GtiError as error:
        raise GtiError(f"{where}: {error}") from None
    return validate(config)


def to_dict(config: object) -> dict:
    """The config as plain data (what manifests store)."""
    return dataclasses.asdict(config)


def history_items(config: RunConfig) -> int:
    """The most history items any method of the run reads at test: the LM prompts show the last `prompts.history`
    of a history the split already cut to `data.max_history`, and SASRec reads the same number."""
    return min(config.data.max_history, config.prompts.history)
