"""The LC-Rec format: `<name>.inter.json[.gz]` plus `<name>.item.json[.gz]`."""

import re
from pathlib import Path

from gti.data.dataset import Dataset, Item
from gti.data.files import find_pair, read_json, require_sequences, require_text, shown, text_field
from gti.errors import GtiError

EXPECTED_FILES = "<name>.inter.json[.gz] + <name>.item.json[.gz]"
# Categories are joined by "," alone; a ", " inside one is part of its name ("Tapes, Adhesives").
_CATEGORY_SEPARATOR = re.compile(r",(?! )")


def matches(folder: Path) -> bool:
    """Whether `folder` holds both files of this format."""
    return find_pair(folder, ".inter.json", ".item.json") is not None


def load(folder: Path) -> Dataset:
    """Load an LC-Rec dataset.

    `<name>.item.json` maps an item index to an object with `title` (a string) and,
    optionally, `description`, `brand` and `categories` (strings or null; categories
    joined by commas, most general first). `<name>.inter.json` maps a user index to the
    list of their item indices, already in chronological order. Indices become string ids.

    Args:
        folder: The dataset folder.

    Raises:
        GtiError: a file is missing or malformed, a sequence names an unknown item, no
            item has text, or no user has 3 items.
    """
    pair = find_pair(folder, ".inter.json", ".item.json")
    if pair is None:
        raise GtiError(f"{folder}: the lcrec format expects {EXPECTED_FILES}")
    interactions_path, items_path = pair
    items = _load_items(items_path)
    require_text(items, items_path)
    sequences = _load_sequences(interactions_path, items)
    require_sequences(sequences, interactions_path)
    return Dataset(name=folder.resolve().name, items=items, sequences=sequences)


def _load_items(path: Path) -> dict[str, Item]:
    records = read_json(path)
    if not isinstance(records, dict):
        raise GtiError(f"{path}: expected a JSON object mapping item index to item fields")
    items = {}
    for item_id, record in records.items():
        where = f"{path}: item {shown(item_id)}"
        if not item_id:
            raise GtiError(f"{path}: an item has the empty index \"\"")
        if not isinstance(record, dict):
            raise GtiError(f"{where}: expected a JSON object, got {type(record).__name__}")
        categories = _CATEGORY_SEPARATOR.split(text_field(record, "categories", where))
        items[item_id] = Item(
            item_id=item_id,
            title=text_field(record, "title", where, required=True),
            description=text_field(record, "description", where),
            categories=tuple(category.strip() for category in categories if category.strip()),
            brand=text_field(record, "brand", where),
        )
    return items


def _load_sequences(path: Path, items: dict[str, Item]) -> dict[str, list[str]]:
    records = read_json(path)
    if not isinstance(records, dict):
        raise GtiError(f"{path}: expected a JSON object mapping user index to a list of item indices")
    sequences = {}
    for user_id, indices in records.items():
        where = f"{path}: user {shown(user_id)}"
        if not isinstance(indices, list):
            raise GtiError(f"{where}: expected a list of item indices, got {type(indices).__name__}")
        sequence = []
        for position, index in enumerate(indices):
            if isinstance(index, bool) or not isinstance(index, (int, str)):
                kind = type(index).__name__
                raise GtiError(f"{where}, position {position}: expected an item index, got {kind}")
            if str(index) not in items:
                raise GtiError(f"{where}, position {position}: unknown item id {shown(str(index))}")
            sequence.append(str(index))
        sequences[user_id] = sequence
    return sequences
