"""Command-line flags made from the config dataclasses, so no setting is declared twice."""

import argparse
import ast
import dataclasses
import inspect
import types
import typing

from gti.config import CHOICES

MISSING = object()
"""The default of every section flag: the flag was not given, so the config's default applies."""


def field_help(cls: type) -> dict[str, str]:
    """Each field's docstring (the string literal under it in the class body), first line only."""
    body = ast.parse(inspect.getsource(cls)).body[0].body
    found = {}
    for statement, following in zip(body, body[1:]):
        if isinstance(statement, ast.AnnAssign) and isinstance(following, ast.Expr) \
                and isinstance(following.value, ast.Constant) and isinstance(following.value.value, str):
            found[statement.target.id] = " ".join(following.value.value.split())
    return found


def choices(section: str, key: str) -> tuple | None:
    """The allowed values of `section.key`, when it has a fixed set."""
    values = CHOICES.get((section, key))
    return None if values is None else tuple(v for v in values if v is not None)


def _parser_type(annotation: object):
    """(argparse type, nargs) for a config field's annotation."""
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return item, "+"
    if annotation is bool:
        return lambda text: text.lower() in ("1", "true", "yes"), None
    return annotation, None


def add_section_flags(parser: argparse.ArgumentParser, cls: type, section: str, rename: dict[str, str] | None = None,
                      skip: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """Add `--<field>` for every field of a config dataclass, with its docstring as help and its choices.

    Unset flags stay unset (the config's default applies, and the help shows it). Returns (section, field, dest)
    of each flag.
    """
    helps, hints, added = field_help(cls), typing.get_type_hints(cls), []
    for item in dataclasses.fields(cls):
        if item.name in skip:
            continue
        flag = (rename or {}).get(item.name, item.name).replace("_", "-")
        kind, nargs = _parser_type(hints[item.name])
        dest = f"{section}__{item.name}"
        default = item.default if item.default is not dataclasses.MISSING else item.default_factory()
        shown = "unset" if default is None else " ".join(map(str, default)) if isinstance(default, list) else default
        parser.add_argument(f"--{flag}", dest=dest, type=kind, nargs=nargs, default=MISSING, metavar=item.name.upper(),
                            choices=choices(section, item.name),
                            help=f"{helps.get(item.name, '')} [{section}.{item.name}; default: {shown}]")
        added.append((section, item.name, dest))
    return added


def section_values(args: argparse.Namespace, flags: list[tuple[str, str, str]]) -> dict[str, dict]:
    """The flags the user gave, as {section: {field: value}}."""
    values: dict[str, dict] = {}
    for section, name, dest in flags:
        value = getattr(args, dest)
        if value is not MISSING:
            values.setdefault(section, {})[name] = value
    return values
