"""Progress of long loops, fit for a terminal and for a log file.

- stderr is a terminal: a tqdm bar (as before);
- stderr is a file or a pipe (CI, `nohup`, `2> log`): one plain line every `GTI_PROGRESS_SECONDS`
  seconds (default 30) and one when the loop ends, e.g.
  `ground: step 40/200 (20%), loss 3.412, 185 tokens/s, 1m02s elapsed, ETA 4m08s`;
- quiet (`gti --quiet`, `GTI_QUIET=1` or `TQDM_DISABLE=1`): nothing.

The libraries' own bars (transformers' "Loading weights", sentence-transformers' "Batches") are
shown only on a terminal and never when quiet (`configure`).
"""

import os
import sys
import time
from collections.abc import Iterable, Iterator

DEFAULT_SECONDS = 30.0
_quiet = False


def _true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def quiet() -> bool:
    """No progress output at all: `--quiet`, `GTI_QUIET=1` or `TQDM_DISABLE=1`."""
    return _quiet or _true("GTI_QUIET") or _true("TQDM_DISABLE")


def bars() -> bool:
    """Whether carriage-return progress bars may be drawn: stderr is a terminal and not quiet."""
    return not quiet() and sys.stderr.isatty()


def interval() -> float:
    """Seconds between two plain progress lines (`GTI_PROGRESS_SECONDS`, default 30)."""
    try:
        return max(0.0, float(os.environ.get("GTI_PROGRESS_SECONDS", DEFAULT_SECONDS)))
    except ValueError:
        return DEFAULT_SECONDS


def configure(be_quiet: bool = False) -> None:
    """Set quiet mode for this process and turn the libraries' bars off where bars are not wanted."""
    global _quiet
    _quiet = be_quiet
    if bars():
        return
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read by huggingface_hub and transformers at import
    if "transformers" in sys.modules:
        from transformers.utils import logging

        logging.disable_progress_bar()


def duration(seconds: float) -> str:
    """`3h02m`, `4m08s` or `12s`."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Progress of one loop of `total` units (steps, batches), starting at `initial` (a resumed run).

    Args:
        total: units of the whole loop.
        description: what runs, e.g. `ground`.
        unit: what a unit is called in plain lines (`step`, `batch`).
        initial: units already done before this process started.
        enabled: False shows nothing (e.g. on the processes other than the main one).
    """

    def __init__(self, total: int, description: str, unit: str = "step", initial: int = 0, enabled: bool = True):
        self.total, self.description, self.unit, self.initial = total, description, unit, initial
        self.done = initial
        self.start = self.last = time.monotonic()
        self.fields: dict[str, str] = {}
        self.mode = "off" if not enabled or quiet() else "bar" if sys.stderr.isatty() else "lines"
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=description, leave=False, unit=unit)

    def update(self, done: int, **fields: str) -> None:
        """`done` units are complete; `fields` (e.g. loss="3.412", tokens_per_s="185") describe the latest."""
        self.fields = fields
        if self.bar is not None:
            self.bar.update(done - self.done)
            if fields:
                self.bar.set_postfix(fields, refresh=False)
        self.done = done
        now = time.monotonic()
        if self.mode == "lines" and (now - self.last >= interval() or done >= self.total):
            self.last = now
            print(self.line(now), file=sys.stderr, flush=True)

    def line(self, now: float | None = None) -> str:
        """The plain progress line for the current state."""
        now = time.monotonic() if now is None else now
        elapsed = now - self.start
        parts = [f"{self.description}: {self.unit} {self.done}/{self.total} ({100 * self.done / max(1, self.total):.0f}%)"]
        parts += [f"{name.replace('_', ' ')} {value}" if name != "tokens_per_s" else f"{value} tokens/s"
                  for name, value in self.fields.items()]
        parts.append(f"{duration(elapsed)} elapsed")
        ran = self.done - self.initial
        if 0 < ran and self.done < self.total:
            parts.append(f"ETA {duration(elapsed / ran * (self.total - self.done))}")
        return ", ".join(parts)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable, total: int, description: str, unit: str = "batch", enabled: bool = True) -> Iterator:
    """Iterate `items`, reporting progress as `Progress` does (one unit per item)."""
    progress = Progress(total, description, unit, enabled=enabled)
    try:
        for done, item in enumerate(items, start=1):
            yield item
            progress.update(done)
    finally:
        progress.close()
