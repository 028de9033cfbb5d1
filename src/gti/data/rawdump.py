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
import os
import tempfile
from pathlib import Path

from gti.data.load import load_dataset
from gti.errors import GtiError


def _interactions(folder: Path) -> list[tuple[str, str, str]]:
    """(user, item, timestamp text) rows of a normalized folder's interactions file, in file order."""
    for name in ("interactions.tsv.gz", "interactions.tsv"):
        path = folder / name
        if path.is_file():
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as handle:
                lines = handle.read().splitlines()
            return [tuple((line.split("\t") + ["", ""])[:3]) for line in lines[1:] if line.strip()]
    raise GtiError(f"{folder}: no interactions.tsv[.gz]; expected a normalized dataset folder (see ../shared/data/README.md)")


def _write_gzip(path: Path, lines: list[str]) -> None:
    """Write gzipped text atomically (a temporary sibling, then renamed)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        with gzip.open(temporary, "wt", encoding="utf-8") as file:
            file.writelines(line + "\n" for line in lines)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_dump(source: Path, out: Path, name: str, users: int | None, overwrite: bool = False) -> tuple[Path, Path, dict]:
    """Write `out/reviews_<name>.json.gz` and `out/meta_<name>.json.gz` (module docstring); returns both paths and the
    counts (users, items, interactions).

    Raises:
        GtiError: not a normalized folder, `users` below 1, or an output file exists and not `overwrite`; one line.
    """
    import json

    source, out = Path(source), Path(out)
    if users is not None and users < 1:
        raise GtiError(f"--users: expected a positive integer, got {users}")
    reviews, meta = out / f"reviews_{name}.json.gz", out / f"meta_{name}.json.gz"
    for path in (reviews, meta):
        if path.exists() and not overwrite:
            raise GtiError(f"{path}: already exists; pass --overwrite to replace it")
    rows = _interactions(source)
    dataset = load_dataset(str(source), "normalized")
    kept = list(dict.fromkeys(user for user, _, _ in rows))[:users]
    chosen = set(kept)
    picked = [row for row in rows if row[0] in chosen]
    items = list(dict.fromkeys(item for _, item, _ in picked))
    review_lines = [json.dumps({"reviewerID": user, "asin": item, "overall": 5.0,
                                "unixReviewTime": int(float(stamp)) if stamp else 0}) for user, item, stamp in picked]
    meta_lines = []
    for item_id in items:
        item = dataset.items[item_id]
        record = {"asin": item_id, "title": item.title, "categories": [list(item.categories)] if item.categories else []}
        if item.brand:
            record["brand"] = item.brand
        meta_lines.append(repr(record))  # a Python literal, as the 2014 metadata files are
    out.mkdir(parents=True, exist_ok=True)
    _write_gzip(reviews, review_lines)
    _write_gzip(meta, meta_lines)
    return reviews, meta, {"users": len(kept), "items": len(items), "interactions": len(picked)}
