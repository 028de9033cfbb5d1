"""What every loader shares: finding plain or gzipped files, reading them, chronological order."""

import gzip
import json
import math
import zlib
from collections.abc import Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from gti.errors import GtiError


def find_file(folder: Path, name: str) -> Path | None:
    """The file `name` in `folder`, plain or gzipped (`name.gz`); None when neither exists.

    Raises:
        GtiError: both the plain and the gzipped file exist, so the choice would be a guess.
    """
    plain, packed = folder / name, folder / f"{name}.gz"
    if plain.is_file() and packed.is_file():
        raise GtiError(f"{folder}: both {name} and {name}.gz exist; keep only one")
    for path in (plain, packed):
        if path.is_file():
            return path
    return None


def find_pair(folder: Path, first_suffix: str, second_suffix: str) -> tuple[Path, Path] | None:
    """Files `<stem><first_suffix>` and `<stem><second_suffix>` (either may be gzipped) in `folder`.

    Args:
        folder: Where to look.
        first_suffix: Suffix of the file that names the stem, e.g. `.inter`.
        second_suffix: Suffix of its partner, e.g. `.item`.

    Returns:
        The two paths, or None when no stem has both files.

    Raises:
        GtiError: several stems have both files.
    """
    try:
        names = [path.name.removesuffix(".gz") for path in folder.iterdir()]
    except OSError as error:
        raise GtiError(f"{folder}: cannot list the folder: {error.strerror or error}") from error
    stems = sorted({name.removesuffix(first_suffix) for name in names if name.endswith(first_suffix)})
    pairs = []
    for stem in stems:
        first = find_file(folder, stem + first_suffix)
        second = find_file(folder, stem + second_suffix)
        if first and second:
            pairs.append((first, second))
    if len(pairs) > 1:
        found = ", ".join(first.name for first, _ in pairs)
        raise GtiError(f"{folder}: several {first_suffix} datasets ({found}); expected one per folder")
    return pairs[0] if pairs else None


def shown(value: object, limit: int = 40) -> str:
    """`repr(value)`, cut to about `limit` characters so an error message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path) if path.suffix == ".gz" else path.open("rb")


def read_lines(path: Path, ended: bool = False) -> Iterator[tuple[int, str]]:
    """Yield `(line_number, line)` pairs, numbered from 1, without the line ending.

    A byte order mark at the start of the file is dropped.

    Args:
        path: The file, plain or gzipped.
        ended: Refuse a last line that has text but no line ending. Tab-separated rows
            are not self-delimiting: a file cut inside its last row would otherwise load
            that row with a shortened id or timestamp, so such a file is refused as cut short.

    Raises:
        GtiError: the file cannot be read, is not UTF-8 text, (for `.gz`) is not valid gzip,
            or, with `ended`, its last line has text but no line ending.
    """
    number = 0
    try:
        with _open(path) as handle:
            # Bytes decoded line by line, so an encoding error names its own line.
            for number, raw in enumerate(handle, start=1):
                line = raw.decode("utf-8").rstrip("\r\n")
                if ended and not raw.endswith(b"\n") and line.strip():
                    raise GtiError(
                        f"{path}:{number}: the last line has no line ending, so the file looks cut short "
                        f"(a complete file ends with a newline)"
                    )
                yield number, line.removeprefix("\ufeff") if number == 1 else line
    except UnicodeDecodeError as error:
        raise GtiError(f"{path}:{number}: not UTF-8 text ({error.reason} at byte {error.start + 1})") from error
    except (OSError, EOFError, zlib.error) as error:
        # BadGzipFile is an OSError; a damaged deflate stream raises zlib.error, a cut one EOFError.
        kind = "gzip file" if path.suffix == ".gz" else "file"
        raise GtiError(f"{path}: cannot read this {kind}: {error or type(error).__name__}") from error


def _loads(text: str, where: str, line_offset: bool) -> Any:
    """`json.loads`, every failure as a GtiError; `line_offset` names the line within `text`."""

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # json.loads alone keeps the last of two equal keys, silently dropping data.
        record: dict[str, Any] = {}
        for key, value in pairs:
            if key in record:
                raise GtiError(f"{where}: invalid JSON: key {shown(key)} appears twice in one object")
            record[key] = value
        return record

    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as error:
        at = f":{error.lineno}" if line_offset else ""
        raise GtiError(f"{where}{at}: invalid JSON: {error.msg} (column {error.colno})") from error
    except RecursionError:
        raise GtiError(f"{where}: invalid JSON: nested too deeply") from None
    except ValueError as error:  # an integer beyond int()'s digit limit
        raise GtiError(f"{where}: invalid JSON: a number too long to read") from error


def read_json(path: Path) -> Any:
    """Parse a whole (possibly gzipped) JSON file.

    Raises:
        GtiError: the file is unreadable or not valid JSON (naming the line).
    """
    return _loads("\n".join(line for _, line in read_lines(path)), str(path), line_offset=True)


def parse_json_line(line: str, where: str) -> dict:
    """Parse one JSON-lines record, which must be an object.

    Args:
        line: The text of the line.
        where: `file:line`, for error messages.

    Raises:
        GtiError: the line is not valid JSON or not an object.
    """
    record = _loads(line, where, line_offset=False)
    if not isinstance(record, dict):
        raise GtiError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record


def text_field(record: dict, key: str, where: str, required: bool = False) -> str:
    """A string field of a JSON record; a missing or null optional field reads as "".

    Args:
        record: The parsed JSON object.
        key: The field's name.
        where: `file:line` or `file: item ...`, for error messages.
        required: Whether the field must be present (and a string).

    Raises:
        GtiError: the field is not a string (or null, when optional).
    """
    value = record.get(key)
    if value is None and not required:
        return ""
    if key not in record:
        raise GtiError(f"{where}: missing field {key!r}")
    if not isinstance(value, str):
        expected = "a string" if required else "a string or null"
        raise GtiError(f"{where}: field {key!r}: expected {expected}, got {type(value).__name__}")
    return value


def parse_timestamp(value: str, path: Path, number: int) -> float | None:
    """A timestamp field as a number; None for an empty field (unknown time).

    Args:
        value: The field's text.
        path: The file, for error messages.
        number: The line number, for error messages.

    Raises:
        GtiError: the field is neither empty nor a finite number.
    """
    if not value or value.isspace():
        return None
    try:
        timestamp = float(value)
    except ValueError:
        timestamp = math.nan
    if not math.isfinite(timestamp):
        raise GtiError(f"{path}:{number}: expected a numeric timestamp, got {shown(value)}")
    return timestamp


def chronological(rows: Iterable[tuple[str, str, float | None]]) -> dict[str, list[str]]:
    """Group `(user_id, item_id, timestamp)` rows into each user's chronological sequence.

    A user whose rows all carry a timestamp gets them sorted by timestamp with a stable
    sort, so rows with equal timestamps keep their file order. A user with any unknown
    (None) timestamp keeps file order for all of their rows. Users appear in the order
    of their first row.

    Args:
        rows: Interactions in file order.

    Returns:
        User id -> item ids, oldest first.
    """
    rows_by_user: dict[str, list[tuple[float | None, str]]] = {}
    for user_id, item_id, timestamp in rows:
        rows_by_user.setdefault(user_id, []).append((timestamp, item_id))
    sequences = {}
    for user_id, user_rows in rows_by_user.items():
        if all(timestamp is not None for timestamp, _ in user_rows):
            user_rows.sort(key=itemgetter(0))  # list.sort is stable: ties keep file order
        sequences[user_id] = [item_id for _, item_id in user_rows]
    return sequences


def require_text(items: dict, path: Path) -> None:
    """Refuse a catalog in which no item has any text: semantic ids and prompts are built from it.

    Args:
        items: Item id -> `Item`, as loaded from `path`.
        path: The items file, for the message.

    Raises:
        GtiError: the catalog is empty, or every item's title, description, categories,
            brand and extra fields are all empty.
    """
    if not items:
        raise GtiError(f"{path}: holds no items")
    for item in items.values():
        fields = (item.title, item.description, item.brand, *item.categories, *item.extra.values())
        if any(value.strip() for value in fields):
            return
    raise GtiError(
        f"{path}: no item has any text (title, description, categories, brand and extra fields are empty "
        f"for all {len(items)} items); semantic ids are built from item text"
    )


def require_sequences(sequences: dict[str, list[str]], path: Path) -> None:
    """Refuse interactions that no leave-one-out split can use.

    Args:
        sequences: User id -> item ids, as loaded from `path`.
        path: The interactions file, for the message.

    Raises:
        GtiError: there are no interactions, or every user has fewer than 3 items (a user
            needs one training item, one validation item and one test item).
    """
    if not any(sequences.values()):
        raise GtiError(f"{path}: no interactions; a dataset needs users with at least 3 items each")
    longest = max(len(sequence) for sequence in sequences.values())
    if longest < 3:
        raise GtiError(
            f"{path}: every user has fewer than 3 items (the most, among {len(sequences)} users, is {longest}); "
            f"the leave-one-out split needs 3 (training, validation, test)"
        )
