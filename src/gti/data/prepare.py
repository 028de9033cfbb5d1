"""`gti data prepare`: public review dumps -> the normalized format (`interactions.tsv` + `items.jsonl`).

Steps, each printing its counts: read the reviews; drop exact repeats of a (user, item, time) row;
read the metadata of the reviewed items; drop items without metadata or without a title (and
their interactions); iterative k-core on users and items; sort each user's rows by time with a
stable sort (file order on ties); write both files into a temporary folder renamed into place.
"""

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from gti.data.dumps import ItemText, Row, read_items, read_reviews
from gti.errors import GtiError
from gti.folders import check_output, staged_folder

SOURCES = ("amazon", "yelp")


def k_core(rows: list[Row], k: int) -> tuple[list[Row], int]:
    """Drop users and items with fewer than `k` interactions, repeatedly, until every one left has `k`.

    Returns:
        The rows kept (file order) and the number of filtering rounds that removed something.
    """
    rounds = 0
    while True:
        users = Counter(user for user, _, _ in rows)
        items = Counter(item for _, item, _ in rows)
        kept = [row for row in rows if users[row[0]] >= k and items[row[1]] >= k]
        if len(kept) == len(rows):
            return rows, rounds
        rows, rounds = kept, rounds + 1


def chronological_rows(rows: list[Row]) -> list[Row]:
    """Rows grouped by user (in order of each user's first row), each user's sorted by time, ties in file order."""
    by_user: dict[str, list[Row]] = {}
    for row in rows:
        by_user.setdefault(row[0], []).append(row)
    ordered = []
    for user_rows in by_user.values():
        ordered.extend(sorted(user_rows, key=lambda row: row[2]))  # sorted is stable
    return ordered


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(value, 3))


def _counts(rows: list[Row]) -> str:
    users = len({row[0] for row in rows})
    items = len({row[1] for row in rows})
    return f"{len(rows):,} interactions, {users:,} users, {items:,} items"


def write_normalized(rows: list[Row], items: dict[str, ItemText], out: Path, overwrite: bool) -> None:
    """Write `interactions.tsv` and `items.jsonl` (items in `items` order) atomically into `out`."""
    with staged_folder(out, overwrite) as staging:
        with (staging / "interactions.tsv").open("w", encoding="utf-8") as file:
            file.write("user_id\titem_id\ttimestamp\n")
            for user, item, seconds in rows:
                file.write(f"{user}\t{item}\t{_seconds(seconds)}\n")
        used = {item for _, item, _ in rows}
        with (staging / "items.jsonl").open("w", encoding="utf-8") as file:
            for item_id, text in items.items():
                if item_id in used:
                    record = {"item_id": item_id, "title": text.title, "categories": list(text.categories),
                              "brand": text.brand or None, "description": text.description or None}
                    file.write(json.dumps(record, ensure_ascii=False) + "\n")


def prepare(
    source: str, reviews: Path, meta: Path, out: Path, kcore: int = 5, overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Build a normalized dataset folder from a source's review and metadata files.

    Args:
        source: `amazon` (2014, 2018 or 2023 dumps, detected from the content) or `yelp`.
        reviews: the review file (JSON lines, gzipped or plain).
        meta: the metadata file (Amazon) or the business file (Yelp).
        out: the folder to write; an existing non-empty one is refused unless `overwrite`.
        kcore: every user and item left has at least this many interactions (1: no filtering).
        log: where each step's counts go.

    Returns:
        The counts of every step.

    Raises:
        GtiError: bad arguments, a malformed line or missing field (naming file and line), editions
            that do not match, or nothing left after filtering.
    """
    if source not in SOURCES:
        raise GtiError(f"source {source!r}: expected one of {', '.join(SOURCES)}")
    if kcore < 1:
        raise GtiError(f"--kcore: expected a positive integer, got {kcore}")
    out = Path(out)
    check_output(out, overwrite)  # before reading files that may take minutes
    edition, rows = read_reviews(source, Path(reviews))
    log(f"reviews ({edition}, {reviews}): {_counts(rows)}")
    stats = {"source": source, "reviews_edition": edition, "read": len(rows)}

    seen: set[Row] = set()
    unique = [row for row in rows if not (row in seen or seen.add(row))]
    stats["duplicates"] = len(rows) - len(unique)
    if stats["duplicates"]:
        log(f"dropped {stats['duplicates']:,} exact duplicate rows (same user, item and time): {_counts(unique)}")
    rows = unique

    reviewed = {item for _, item, _ in rows}
    meta_edition, items, repeats = read_items(source, Path(meta), reviewed)
    if (edition == "amazon-2023") != (meta_edition == "amazon-2023"):
        raise GtiError(f"{meta}: {meta_edition} metadata does not match the {edition} reviews of {reviews} "
                       "(2023 items are keyed by parent_asin, older ones by asin)")
    log(f"metadata ({meta_edition}, {meta}): {len(items):,} of the {len(reviewed):,} reviewed items"
        + (f" ({repeats:,} repeated records ignored)" if repeats else ""))
    usable = {item_id for item_id, text in items.items() if text.title}
    without_meta = len(reviewed - set(items))
    without_title = len(set(items) - usable)
    kept = [row for row in rows if row[1] in usable]
    log(f"dropped {without_meta + without_title:,} items without metadata ({without_meta:,}) or title "
        f"({without_title:,}) and their {len(rows) - len(kept):,} interactions: {_counts(kept)}")
    stats.update(meta_edition=meta_edition, items_without_metadata=without_meta, items_without_title=without_title)
    rows = kept

    rows, rounds = k_core(rows, kcore)
    log(f"{kcore}-core ({rounds} filtering rounds): {_counts(rows)}")
    if not rows:
        raise GtiError(f"no interactions left after the {kcore}-core filter; try a smaller --kcore")
    rows = chronological_rows(rows)
    write_normalized(rows, items, out, overwrite)
    stats.update(kcore=kcore, kcore_rounds=rounds, interactions=len(rows), users=len({r[0] for r in rows}),
                 items=len({r[1] for r in rows}))
    log(f"wrote {out / 'interactions.tsv'} and {out / 'items.jsonl'}")
    return stats
