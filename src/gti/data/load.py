"""`load_dataset`: pick a dataset's format (given or detected from its files) and read it."""

from pathlib import Path

from gti.data import lcrec, normalized, recbole
from gti.data.dataset import Dataset
from gti.errors import GtiError

_FOLDER_FORMATS = {"normalized": normalized, "lcrec": lcrec, "recbole": recbole}
FORMATS = ("ml-100k", *_FOLDER_FORMATS)


def load_dataset(source: str, format: str | None = None) -> Dataset:
    """Load a dataset by name or from a folder.

    Each user's sequence is chronological: when all of a user's interactions have a
    timestamp they are sorted by it with a stable sort (ties keep file order); when any is
    unknown, that user's interactions keep file order.

    Args:
        source: `ml-100k` for the MovieLens-100k copy shipped in the recbole wheel, or a
            dataset folder (write `./ml-100k` for a local folder of that name).
        format: One of `FORMATS`: `ml-100k`, `normalized` (interactions.tsv + items.jsonl),
            `lcrec` (LC-Rec json) or `recbole` (atomic files); None detects the format
            from the folder's files.

    Returns:
        The dataset, named after the folder.

    Raises:
        GtiError: unknown format, missing or unrecognized folder, or malformed files.
    """
    if format is not None and format not in FORMATS:
        raise GtiError(f"unknown dataset format {format!r}; expected one of {', '.join(FORMATS)}")
    if source == "ml-100k" and format in (None, "ml-100k"):
        return recbole.load(recbole.ml100k_folder())
    if format == "ml-100k":
        raise GtiError(f"format 'ml-100k' is the wheel's copy; source must be 'ml-100k', got {source!r}")
    folder = Path(source)
    if not folder.is_dir():
        problem = "not a folder" if folder.exists() else "no such folder"
        raise GtiError(f"{source}: {problem}; {_expected()}")
    if format is None:
        found = [name for name, loader in _FOLDER_FORMATS.items() if loader.matches(folder)]
        if not found:
            raise GtiError(f"{source}: no dataset files found; {_expected()}")
        if len(found) > 1:
            raise GtiError(f"{source}: holds files of several formats ({', '.join(found)}); pass format")
        format = found[0]
    return _FOLDER_FORMATS[format].load(folder)


def _expected() -> str:
    """What `source` may be, with the files each folder format expects, on one line."""
    formats = ", ".join(f"{name} ({loader.EXPECTED_FILES})" for name, loader in _FOLDER_FORMATS.items())
    return f"expected 'ml-100k' or a folder holding the files of one format: {formats}"
