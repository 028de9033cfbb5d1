"""RecBole atomic files (`<name>.inter` + `<name>.item`), and the MovieLens-100k copy in the recbole wheel."""

import importlib.util
from collections.abc import Iterator
from pathlib import Path

from gti.data.dataset import Dataset, Item
from gti.data.files import (
    chronological,
    find_pair,
    parse_timestamp,
    read_lines,
    require_sequences,
    require_text,
    shown,
)
from gti.errors import GtiError

EXPECTED_FILES = "<name>.inter[.gz] + <name>.item[.gz]"
_TYPES = ("token", "token_seq", "float", "float_seq")
_TITLE_FIELDS = ("title", "movie_title")
_CATEGORY_FIELDS = ("categories", "class", "genre")
_INSTALL = "pip install --no-deps recbole==1.2.1"


def matches(folder: Path) -> bool:
    """Whether `folder` holds both files of this format."""
    return find_pair(folder, ".inter", ".item") is not None


def ml100k_folder() -> Path:
    """The MovieLens-100k atomic files shipped inside the installed `recbole` wheel (never imported).

    Raises:
        GtiError: recbole is not installed, or its copy lacks the dataset.
    """
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise GtiError(f"ml-100k ships inside the recbole wheel, which is not installed: {_INSTALL}")
    folder = Path(spec.submodule_search_locations[0]) / "dataset_example" / "ml-100k"
    if not folder.is_dir():
        raise GtiError(f"{folder}: not found in the installed recbole; reinstall it: {_INSTALL}")
    return folder


def load(folder: Path) -> Dataset:
    """Load a RecBole dataset from its `.inter` and `.item` atomic files.

    Both are tab-separated with a header of `name:type` fields (type one of token,
    token_seq, float, float_seq). The `.item` file needs `item_id` and a title field
    (`title` or `movie_title`); categories come from `categories`, `class` or `genre`
    (a token_seq is split on spaces), and `brand` and `description` are read when present;
    every other token or token_seq field goes to `Item.extra`. The `.inter` file needs
    `user_id` and `item_id`; `timestamp` is optional. See `files.chronological` for the
    ordering rule.

    Args:
        folder: The dataset folder.

    Raises:
        GtiError: a file is missing, malformed or cut short (see `read_lines`), an
            interaction names an unknown item, no item has text, or no user has 3 items.
    """
    pair = find_pair(folder, ".inter", ".item")
    if pair is None:
        raise GtiError(f"{folder}: the recbole format expects {EXPECTED_FILES}")
    interactions_path, items_path = pair
    items = _load_items(items_path)
    require_text(items, items_path)
    sequences = chronological(_read_interactions(interactions_path, items))
    require_sequences(sequences, interactions_path)
    return Dataset(name=folder.resolve().name, items=items, sequences=sequences)


def _load_items(path: Path) -> dict[str, Item]:
    columns, rows = _read_table(path)
    item_column = _require(columns, ("item_id",), path)
    title_column = _require(columns, _TITLE_FIELDS, path)
    category_column = _first(columns, _CATEGORY_FIELDS)
    brand_column = _first(columns, ("brand",))
    description_column = _first(columns, ("description",))
    used = {item_column, title_column, category_column, brand_column, description_column}
    extra_columns = [
        index
        for index, (_, kind) in enumerate(columns)
        if index not in used and kind in ("token", "token_seq")
    ]
    items: dict[str, Item] = {}
    for number, fields in rows:
        where = f"{path}:{number}"
        item_id = fields[item_column]
        if not item_id:
            raise GtiError(f"{where}: empty item_id")
        if item_id in items:
            raise GtiError(f"{where}: duplicate item id {shown(item_id)}")
        categories: tuple[str, ...] = ()
        if category_column is not None:
            value = fields[category_column]
            categories = tuple(value.split()) if columns[category_column][1] == "token_seq" else (value,)
        items[item_id] = Item(
            item_id=item_id,
            title=fields[title_column],
            description=fields[description_column] if description_column is not None else "",
            categories=tuple(category for category in categories if category),
            brand=fields[brand_column] if brand_column is not None else "",
            extra={columns[index][0]: fields[index] for index in extra_columns},
        )
    return items


def _read_interactions(
    path: Path, items: dict[str, Item]
) -> Iterator[tuple[str, str, float | None]]:
    """Yield `(user_id, item_id, timestamp)` rows, checking each against the catalog."""
    columns, rows = _read_table(path)
    user_column = _require(columns, ("user_id",), path)
    item_column = _require(columns, ("item_id",), path)
    time_column = _first(columns, ("timestamp",))
    for number, fields in rows:
        user_id, item_id = fields[user_column], fields[item_column]
        if not user_id or not item_id:
            raise GtiError(f"{path}:{number}: empty {'user_id' if not user_id else 'item_id'}")
        if item_id not in items:
            raise GtiError(f"{path}:{number}: unknown item id {shown(item_id)}")
        timestamp = parse_timestamp(fields[time_column], path, number) if time_column is not None else None
        yield user_id, item_id, timestamp


def _read_table(path: Path) -> tuple[list[tuple[str, str]], Iterator[tuple[int, list[str]]]]:
    """Parse the typed header; return its `(name, type)` columns and the rows as `(line_number, fields)`."""
    lines = read_lines(path, ended=True)
    header = next(lines, None)
    if header is None:
        raise GtiError(f"{path}:1: expected a header of name:type fields, got an empty file")
    columns = []
    for field in header[1].split("\t"):
        name, _, kind = field.partition(":")
        if not name or kind not in _TYPES:
            types = ", ".join(_TYPES)
            raise GtiError(f"{path}:1: header field {shown(field)}: expected name:type, type one of {types}")
        if any(name == seen for seen, _ in columns):
            raise GtiError(f"{path}:1: header field {shown(name)} appears twice")
        columns.append((name, kind))

    def rows() -> Iterator[tuple[int, list[str]]]:
        for number, line in lines:
            fields = line.split("\t")
            if len(fields) != len(columns):
                if not line.strip():
                    continue
                names = ", ".join(name for name, _ in columns)
                raise GtiError(
                    f"{path}:{number}: expected {len(columns)} tab-separated fields ({names}), "
                    f"got {len(fields)}"
                )
            yield number, fields

    return columns, rows()


def _first(columns: list[tuple[str, str]], names: tuple[str, ...]) -> int | None:
    """The index of the first of `names` present among `columns`, or None."""
    present = [name for name, _ in columns]
    return next((present.index(name) for name in names if name in present), None)


def _require(columns: list[tuple[str, str]], names: tuple[str, ...], path: Path) -> int:
    """Like `_first`, but a missing field is an error."""
    index = _first(columns, names)
    if index is None:
        wanted = " or ".join(names)
        found = ", ".join(f"{name}:{kind}" for name, kind in columns)
        raise GtiError(f"{path}:1: expected a {wanted} field in the header, got {found}")
    return index
