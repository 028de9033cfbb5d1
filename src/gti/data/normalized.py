"""The normalized format: `interactions.tsv[.gz]` plus `items.jsonl[.gz]`."""

from collections.abc import Iterator
from pathlib import Path

from gti.data.dataset import Dataset, Item
from gti.data.files import (
    chronological,
    find_file,
    parse_json_line,
    parse_timestamp,
    read_lines,
    require_sequences,
    require_text,
    shown,
    text_field,
)
from gti.errors import GtiError

EXPECTED_FILES = "interactions.tsv[.gz] + items.jsonl[.gz]"
_HEADER = ("user_id", "item_id", "timestamp")


def matches(folder: Path) -> bool:
    """Whether `folder` holds both files of this format."""
    return bool(find_file(folder, "interactions.tsv") and find_file(folder, "items.jsonl"))


def load(folder: Path) -> Dataset:
    """Load a normalized dataset.

    `items.jsonl` holds one object per line with `item_id` and `title` (strings),
    optionally `categories` (a list of strings, most general first; a single string is
    read as one category), `brand` and `description` (strings or null); other keys are
    ignored. `interactions.tsv` starts with the header `user_id<TAB>item_id<TAB>timestamp`;
    an empty timestamp means unknown. See `files.chronological` for the ordering rule.

    Args:
        folder: The dataset folder.

    Raises:
        GtiError: a file is missing, malformed or cut short (see `read_lines`), an
            interaction names an unknown item, no item has text, or no user has 3 items.
    """
    interactions_path = find_file(folder, "interactions.tsv")
    items_path = find_file(folder, "items.jsonl")
    if interactions_path is None or items_path is None:
        raise GtiError(f"{folder}: the normalized format expects {EXPECTED_FILES}")
    items = _load_items(items_path)
    require_text(items, items_path)
    sequences = chronological(_read_interactions(interactions_path, items))
    require_sequences(sequences, interactions_path)
    return Dataset(name=folder.resolve().name, items=items, sequences=sequences)


def _load_items(path: Path) -> dict[str, Item]:
    items: dict[str, Item] = {}
    for number, line in read_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        record = parse_json_line(line, where)
        item = Item(
            item_id=text_field(record, "item_id", where, required=True),
            title=text_field(record, "title", where, required=True),
            description=text_field(record, "description", where),
            categories=_categories(record, where),
            brand=text_field(record, "brand", where),
        )
        if not item.item_id:
            raise GtiError(f"{where}: empty item_id")
        if item.item_id in items:
            raise GtiError(f"{where}: duplicate item id {shown(item.item_id)}")
        items[item.item_id] = item
    return items


def _categories(record: dict, where: str) -> tuple[str, ...]:
    value = record.get("categories")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if not isinstance(value, list) or not all(isinstance(category, str) for category in value):
        raise GtiError(f"{where}: field 'categories': expected a list of strings")
    return tuple(category for category in value if category.strip())


def _read_interactions(
    path: Path, items: dict[str, Item]
) -> Iterator[tuple[str, str, float | None]]:
    """Yield `(user_id, item_id, timestamp)` rows, checking each against the catalog."""
    lines = read_lines(path, ended=True)
    header = next(lines, None)
    if header is None or tuple(header[1].split("\t")) != _HEADER:
        found = "an empty file" if header is None else repr(header[1][:60])
        raise GtiError(f"{path}:1: expected the header 'user_id<TAB>item_id<TAB>timestamp', got {found}")
    for number, line in lines:
        fields = line.split("\t")
        if len(fields) != 3:
            if not line.strip():
                continue
            raise GtiError(
                f"{path}:{number}: expected 3 tab-separated fields (user_id, item_id, timestamp), "
                f"got {len(fields)}"
            )
        user_id, item_id, timestamp = fields
        if not user_id or not item_id:
            raise GtiError(f"{path}:{number}: empty {'user_id' if not user_id else 'item_id'}")
        if item_id not in items:
            raise GtiError(f"{path}:{number}: unknown item id {shown(item_id)}")
        yield user_id, item_id, parse_timestamp(timestamp, path, number)
