"""Config errors and differences as one-line text: an unknown section or key, where a mistake is (file and
line, or the `--set`) and which keys differ between two configs, with both values.

Every error of `gti.config` starts with the keys it concerns (`finetune.steps: ...`, `unknown section 'x'`),
so `located` can find the line of a TOML file that set them.
"""

import dataclasses
import re
import typing
from pathlib import Path

from gti.errors import GtiError


def unknown_key(cls: type, key: str, where: str) -> GtiError:
    """The error for a key that `cls` (a section, or the whole config when `where` is empty) does not have."""
    fields = [f.name for f in dataclasses.fields(cls)]
    if not where:
        sections = [name for name in fields if dataclasses.is_dataclass(typing.get_type_hints(cls)[name])]
        others = [name for name in fields if name not in sections]
        return GtiError(f"unknown section {key!r}; expected one of {', '.join(sections)} (or the key {', '.join(others)})")
    return GtiError(f"{where}: unknown key {key!r}; expected one of {', '.join(fields)}")


def check_key_path(root: type, keys: list[str], where: str) -> None:
    """Refuse, naming `where` (e.g. `--set finetun.steps=1`), a key path that is not a setting of the config
    dataclass `root`: an unknown section or key, a setting used as a section, or a section given a value."""
    cls, path = root, ""
    for index, part in enumerate(keys):
        if not dataclasses.is_dataclass(cls):
            raise GtiError(f"{where}: {path!r} is a setting, not a section; expected {path}=value")
        if part not in {f.name for f in dataclasses.fields(cls)}:
            raise GtiError(f"{where}: {unknown_key(cls, part, path)}")
        cls, path = typing.get_type_hints(cls)[part], ".".join(keys[: index + 1])
    if dataclasses.is_dataclass(cls):
        raise GtiError(f"{where}: {path!r} is a section; expected {path}.KEY=value")


def key_path(message: str) -> list[str]:
    """The config keys an error message of this module starts with (`section.key: ...`), or []."""
    found = re.match(r"unknown section '([^']+)'", message)
    if found:
        return [found.group(1)]
    found = re.match(r"([a-z_]+): unknown key '([^']+)'", message) or re.match(r"([a-z_]+)(?:\.([a-z_]+))?[:\[]", message)
    return [part for part in found.groups() if part] if found else []


def line_of(text: str, keys: list[str]) -> int | None:
    """The line of a TOML text that sets `keys` (`[section]` then `key =`, a dotted or a top-level key), or None.

    A key not written in the file falls back to its section's header line.
    """
    if not keys:
        return None
    first = re.escape(keys[0])
    section, header = None, None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[] ")
            if section == keys[0]:
                if len(keys) == 1:
                    return number
                header = number
            continue
        if section is None and re.match(rf"{first}\s*[.=]", stripped) and (
                len(keys) == 1 or re.match(rf"{first}\.{re.escape(keys[1])}\s*=", stripped)):
            return number
        if len(keys) > 1 and section == keys[0] and re.match(rf"{re.escape(keys[1])}\s*=", stripped):
            return number
    return header


def located(error: GtiError, path: Path | None, text: str, given: dict[tuple[str, ...], str]) -> GtiError:
    """`error` prefixed with the `--set` that gave its key (`given`: key path -> the override's text), else with
    the file and the line of `text` that set it (`config` without a file)."""
    keys = key_path(str(error))
    if tuple(keys) in given:
        return GtiError(f"--set {given[tuple(keys)]}: {error}")
    if path is None:
        return GtiError(f"config: {error}")
    line = line_of(text, keys)
    return GtiError(f"{path}{'' if line is None else f':{line}'}: {error}")


def flatten(values: dict, prefix: str = "") -> dict[str, object]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}` (lists stay values)."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def differences(before: dict, after: dict, labels: tuple[str, str] = ("there", "here"), limit: int = 4) -> str:
    """The keys whose values differ between two configs (or sections), with both values, on one line.

    E.g. `finetune.steps: 2 there, 3 here; data.text_fields: ['title'] there, ['title', 'brand'] here`.
    """
    old, new = flatten(before), flatten(after)
    keys = [key for key in dict.fromkeys([*old, *new]) if old.get(key, _ABSENT) != new.get(key, _ABSENT)]
    shown = [f"{key}: {_shown(old.get(key, _ABSENT))} {labels[0]}, {_shown(new.get(key, _ABSENT))} {labels[1]}"
             for key in keys[:limit]]
    more = f"; and {len(keys) - limit} more" if len(keys) > limit else ""
    return "; ".join(shown) + more


_ABSENT = object()


def _shown(value: object) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
