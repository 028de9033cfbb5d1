"""Readers for public review dumps as published: Amazon 2014, 2018, 2023 and the Yelp open dataset.

Each file is read line by line, gzipped or plain (told apart by its first bytes, not its name).
A file's syntax is detected from its first record: JSON lines, or (Amazon 2014 metadata) one
Python literal per line with single quotes, parsed with `ast.literal_eval` and never `eval`.
The edition is then told by the record's keys:

| edition | reviews | metadata |
|---|---|---|
| Amazon 2014 | JSON: `reviewerID`, `asin`, `unixReviewTime` (s) | Python literals: `asin`, `title`, `categories` (list of lists), `brand`, `description` |
| Amazon 2018 | JSON: the same fields as 2014 | JSON: `asin`, `title`, `category` (list), `brand`, `description` (list) |
| Amazon 2023 | JSON: `user_id`, `parent_asin`, `timestamp` (ms) | JSON: `parent_asin`, `title`, `main_category`, `categories`, `store`, `description` (list) |
| Yelp | JSON: `user_id`, `business_id`, `date` ("YYYY-MM-DD HH:MM:SS", UTC) | JSON: `business_id`, `name`, `categories` ("A, B"), `city`, `state` |

Written as: title (HTML entities undone, whitespace collapsed), categories (most general first;
2014: the first category path; 2023: `main_category` then `categories`; Yelp: the string split at
commas), brand (`brand`; 2023: `store`), description (list entries joined; Yelp: "city, state").

Every malformed line or missing field raises a one-line `GtiError` naming the file and line.
"""

import ast
import datetime
import gzip
import html
import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gti.data.files import parse_json_line, shown
from gti.errors import GtiError

Row = tuple[str, str, float]
"""(user id, item id, unix seconds) of one interaction."""


@dataclass(frozen=True)
class ItemText:
    """An item's text as the normalized format stores it."""

    title: str
    categories: tuple[str, ...] = ()
    brand: str = ""
    description: str = ""


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield `(line number, text)` of the non-blank lines of a plain or gzipped UTF-8 file, numbered from 1.

    Raises:
        GtiError: the file is missing, unreadable, not UTF-8, or a damaged gzip stream.
    """
    path = Path(path)
    if not path.is_file():
        raise GtiError(f"{path}: no such file")
    number, packed = 0, False
    try:
        with path.open("rb") as probe:
            packed = probe.read(2) == b"\x1f\x8b"
        with gzip.open(path) if packed else path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.decode("utf-8").rstrip("\r\n")
                if number == 1:
                    line = line.removeprefix("\ufeff")
                if line.strip():
                    yield number, line
    except UnicodeDecodeError as error:
        raise GtiError(f"{path}:{number}: not UTF-8 text ({error.reason} at byte {error.start + 1})") from error
    except (OSError, EOFError, zlib.error) as error:
        kind = "gzip file" if packed else "file"
        raise GtiError(f"{path}: cannot read this {kind}: {error or type(error).__name__}") from error


def _literal(line: str, where: str) -> dict:
    """One Python-literal record (Amazon 2014 metadata), parsed safely."""
    try:
        record = ast.literal_eval(line)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
        raise GtiError(f"{where}: not a Python literal record ({type(error).__name__})") from None
    if not isinstance(record, dict):
        raise GtiError(f"{where}: expected a dict record, got {type(record).__name__}")
    return record


def records(path: Path) -> Iterator[tuple[str, dict, str]]:
    """Yield `(where, record, syntax)` for each line; `syntax` ("json" or "literal") is fixed by the first line."""
    parse: Callable[[str, str], dict] | None = None
    syntax = ""
    for number, line in numbered_lines(path):
        where = f"{path}:{number}"
        if parse is None:
            try:
                first = parse_json_line(line, where)
                parse, syntax = parse_json_line, "json"
            except GtiError:
                try:
                    first = _literal(line, where)
                except GtiError:
                    raise GtiError(f"{where}: expected a JSON object or a Python dict literal per line") from None
                parse, syntax = _literal, "literal"
            yield where, first, syntax
            continue
        yield where, parse(line, where), syntax


def _id(record: dict, key: str, where: str) -> str:
    if key not in record:
        raise GtiError(f"{where}: missing field {key!r}")
    value = record[key]
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise GtiError(f"{where}: field {key!r}: expected a non-empty string, got {shown(value)}")
    if any(char in value for char in "\t\r\n"):
        raise GtiError(f"{where}: field {key!r}: ids cannot hold tabs or line breaks, got {shown(value)}")
    return value


def _number(record: dict, key: str, where: str) -> float:
    if key not in record:
        raise GtiError(f"{where}: missing field {key!r}")
    value = record[key]
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GtiError(f"{where}: field {key!r}: expected a numeric timestamp, got {shown(value)}")
    return float(value)


def _yelp_date(record: dict, key: str, where: str) -> float:
    if key not in record:
        raise GtiError(f"{where}: missing field {key!r}")
    value = record[key]
    try:
        moment = datetime.datetime.strptime(str(value).strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise GtiError(f"{where}: field {key!r}: expected 'YYYY-MM-DD HH:MM:SS', got {shown(value)}") from None
    return moment.replace(tzinfo=datetime.UTC).timestamp()


REVIEW_FIELDS = {
    "amazon-2014/2018": ("reviewerID", "asin", "unixReviewTime"),
    "amazon-2023": ("user_id", "parent_asin", "timestamp"),
    "yelp": ("user_id", "business_id", "date"),
}


def _review_edition(source: str, record: dict, where: str) -> str:
    if source == "yelp":
        return "yelp"
    if "parent_asin" in record or ("user_id" in record and "reviewerID" not in record):
        return "amazon-2023"
    if "reviewerID" in record or "asin" in record:
        return "amazon-2014/2018"
    raise GtiError(f"{where}: not an Amazon review record: expected reviewerID/asin/unixReviewTime (2014, 2018) "
                   "or user_id/parent_asin/timestamp (2023)")


def read_reviews(source: str, path: Path) -> tuple[str, list[Row]]:
    """The interactions of a review file, in file order.

    Args:
        source: `amazon` or `yelp`.
        path: the review file.

    Returns:
        The edition (a key of `REVIEW_FIELDS`) and the `(user, item, seconds)` rows.
    """
    rows: list[Row] = []
    edition = ""
    for where, record, syntax in records(path):
        if not edition:
            if syntax != "json":
                raise GtiError(f"{where}: review files are JSON lines, this line is a Python literal")
            edition = _review_edition(source, record, where)
            user_key, item_key, time_key = REVIEW_FIELDS[edition]
        user, item = _id(record, user_key, where), _id(record, item_key, where)
        if edition == "yelp":
            seconds = _yelp_date(record, time_key, where)
        else:
            seconds = _number(record, time_key, where)
            if edition == "amazon-2023":
                seconds /= 1000.0  # milliseconds
        rows.append((user, item, seconds))
    if not edition:
        raise GtiError(f"{path}: holds no reviews")
    return edition, rows


def _clean(text: str) -> str:
    return " ".join(html.unescape(text).split())


def _texts(record: dict, key: str, where: str) -> list[str]:
    """A field that may be absent, null, a string or a list of strings (2014 categories: a list of such lists)."""
    value = record.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(part, list) for part in value):  # 2014: several category paths, keep the first
            value = value[0]
        if all(isinstance(part, str) for part in value):
            return list(value)
    raise GtiError(f"{where}: field {key!r}: expected a string or a list of strings, got {shown(value)}")


def _distinct(parts: list[str]) -> tuple[str, ...]:
    cleaned = [_clean(part) for part in parts]
    return tuple(dict.fromkeys(part for part in cleaned if part))


def _amazon_item(record: dict, where: str, edition: str) -> tuple[str, ItemText]:
    item_id = _id(record, "parent_asin" if edition == "amazon-2023" else "asin", where)
    title = _texts(record, "title", where)
    if edition == "amazon-2023":
        categories = _texts(record, "main_category", where) + _texts(record, "categories", where)
        brand = _texts(record, "store", where)
    else:
        categories = _texts(record, "categories", where) + _texts(record, "category", where)
        brand = _texts(record, "brand", where)
    description = " ".join(_clean(part) for part in _texts(record, "description", where))
    return item_id, ItemText(_clean(" ".join(title)), _distinct(categories), _clean(" ".join(brand)), description.strip())


def _yelp_item(record: dict, where: str) -> tuple[str, ItemText]:
    item_id = _id(record, "business_id", where)
    name = _texts(record, "name", where)
    categories = [part for text in _texts(record, "categories", where) for part in text.split(",")]
    place = ", ".join(_clean(text) for key in ("city", "state") for text in _texts(record, key, where) if text.strip())
    return item_id, ItemText(_clean(" ".join(name)), _distinct(categories), "", place)


def read_items(source: str, path: Path, wanted: set[str]) -> tuple[str, dict[str, ItemText], int]:
    """The metadata of the items in `wanted`, in file order (other records are checked, then skipped).

    Returns:
        The edition (`amazon-2014`, `amazon-2018`, `amazon-2023` or `yelp`), item id -> text,
        and how many records repeated the id of an item already kept (the first one is kept).
    """
    items: dict[str, ItemText] = {}
    repeats = 0
    edition = ""
    for where, record, syntax in records(path):
        if not edition:
            if source == "yelp":
                edition = "yelp"
            elif syntax == "literal":
                edition = "amazon-2014"
            elif "parent_asin" in record:
                edition = "amazon-2023"
            elif "asin" in record:
                edition = "amazon-2018"
            else:
                raise GtiError(f"{where}: not an Amazon metadata record: expected 'asin' (2014, 2018) "
                               "or 'parent_asin' (2023)")
        item_id, text = _yelp_item(record, where) if edition == "yelp" else _amazon_item(record, where, edition)
        if item_id in items:
            repeats += 1
        elif item_id in wanted:
            items[item_id] = text
    if not edition:
        raise GtiError(f"{path}: holds no item records")
    return edition, items, repeats
