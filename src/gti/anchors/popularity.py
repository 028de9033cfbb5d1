"""`mostpop`: every user gets the items most often in the training sequences."""

from collections.abc import Mapping, Sequence

import numpy as np


def popularity_counts(train: Mapping[str, Sequence[str]], catalog: Sequence[str]) -> np.ndarray:
    """(N,) int64 count of each catalog item over the training sequences (every occurrence counts).

    Args:
        train: user -> training items (leave-one-out: all but the last two); held-out targets never count.
        catalog: item ids in catalog-row order; items nobody trained on count 0.
    """
    rows = {item: row for row, item in enumerate(catalog)}
    counts = np.zeros(len(catalog), dtype=np.int64)
    for sequence in train.values():
        for item in sequence:
            counts[rows[item]] += 1
    return counts
