"""Output folders written whole: into a temporary sibling, then renamed into place.

A folder that already holds something is never replaced unless the caller says so
(`--overwrite`), and a failed write leaves neither a partial folder nor a temporary one.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gti.errors import GtiError


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse an output path that is a file, or a non-empty folder unless `overwrite`."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GtiError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise GtiError(f"{out}: already exists and is not empty; pass --overwrite to replace it")


@contextmanager
def staged_folder(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary folder beside `out`; when the block ends without error it becomes `out`.

    Raises:
        GtiError: `out` is a file, or a non-empty folder and not `overwrite` (checked before the block).
    """
    out = Path(out)
    check_output(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield staging
        os.chmod(staging, 0o755)  # mkdtemp creates 0700
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(staging, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
