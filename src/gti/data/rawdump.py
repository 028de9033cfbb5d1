"""`gti data dump`: a small raw review dump in the Amazon 2014 layout, made from a normalized dataset folder.

README's "Your own data" starts from a raw dump (`reviews_<Name>.json.gz`, `meta_<Name>.json.gz`), which no
machine without the internet has. This writes one from a normalized set such as `../shared/data/beauty`:
the first N users in file order, their interactions as 2014 review records (JSON: `reviewerID`, `asin`,
`unixReviewTime`, `overall`), and the items they reviewed as 2014 metadata records (one Python literal per
line, single quotes: `asin`, `title`, `categories` as a list of one path, `brand` when known), so that
`gti data prepare amazon` reads it exactly as it reads the published files. Nothing is invented: the review
text fields the published files carry are left out (gti reads none of them).
"""

import gzip
import json
from pathlib import Path

from gti.artifacts import atomic_write
from gti.data.files import find_file
from gti.data.normalized import EXPECTED_FILES, _load_items, _read_interactions
from gti.errors import GtiError


def write_dump(source: Path, out: Path, name: str, users: int | None, overwrite: bool = False) -> tuple[Path, Path, dict]:
    """Write `out/reviews_<name>.json.gz` and `out/meta_<name>.json.gz` (module docstring); returns both paths and the
    counts (users, items, interactions).

    Raises:
        GtiError: not a normalized folder, `users` below 1, or an output file exists and not `overwrite`; one line.
    """
    source, out = Path(source), Path(out)
    if users is not None and users < 1:
        raise GtiError(f"--users: expected a positive integer, got {users}")
    reviews, meta = out / f"reviews_{name}.json.gz", out / f"meta_{name}.json.gz"
    for path in (reviews, meta):
        if path.exists() and not overwrite:
            raise GtiError(f"{path}: already exists; pass --overwrite to replace it")
    interactions, items_file = find_file(source, "interactions.tsv"), find_file(source, "items.jsonl")
    if interactions is None or items_file is None:
        raise GtiError(f"{source}: no interactions.tsv or items.jsonl; expected a normalized dataset folder "
                       f"({EXPECTED_FILES}, see ../shared/data/README.md)")
    catalog = _load_items(items_file)
    rows = list(_read_interactions(interactions, catalog))  # each file read once, every row checked
    kept = list(dict.fromkeys(user for user, _, _ in rows))[:users]
    chosen = set(kept)
    picked = [row for row in rows if row[0] in chosen]
    items = list(dict.fromkeys(item for _, item, _ in picked))
    review_lines = [json.dumps({"reviewerID": user, "asin": item, "overall": 5.0,
                                "unixReviewTime": 0 if stamp is None else int(stamp)}) for user, item, stamp in picked]
    meta_lines = []
    for item_id in items:
        item = catalog[item_id]
        record = {"asin": item_id, "title": item.title, "categories": [list(item.categories)] if item.categories else []}
        if item.brand:
            record["brand"] = item.brand
        meta_lines.append(repr(record))  # a Python literal, as the 2014 metadata files are
    for path, lines in ((reviews, review_lines), (meta, meta_lines)):  # each written whole, then renamed into place
        atomic_write(path, gzip.compress("".join(line + "\n" for line in lines).encode(), mtime=0))
    return reviews, meta, {"users": len(kept), "items": len(items), "interactions": len(picked)}
