"""Top-k catalog rows from scores, with the project's tie rule."""

import numpy as np
import torch

from gti.rec.ties import tie_key

SLACK = 64
"""Extra candidates kept beyond k before the exact sort: rows with more ties at the k-th score fall back to a full sort."""


def _full_order(scores: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """(B, k) rows of a full sort by -score, then by tie key."""
    order = np.lexsort((np.broadcast_to(keys, scores.shape), -scores), axis=-1)  # (B, N): by -score, then key
    return order[:, :k]


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """The `k` best catalog rows of each score row: higher score first, equal scores by lower `tie_key`.

    Exactly what a full sort by (-score, tie key) keeps, in about O(N) per row: the best `k + SLACK`
    candidates are found by partition and sorted; a row whose k-th score is shared beyond those
    candidates (e.g. popularity's many equal counts) is sorted in full.

    Args:
        scores: (N,) or (B, N) scores of every catalog row.
        k: how many rows to keep (at most N).

    Returns:
        (k,) or (B, k) int64 catalog rows, best first.
    """
    scores = np.asarray(scores)
    single = scores.ndim == 1
    scores = scores[None] if single else scores  # (B, N)
    n = scores.shape[-1]
    keys = tie_key(torch.arange(n)).numpy()  # (N,)
    m = k + SLACK
    if m >= n or len(scores) == 0:
        found = _full_order(scores, keys, k)
    else:
        candidates = np.argpartition(-scores, m - 1, axis=-1)[:, :m]  # (B, m): the m best, unordered
        values = np.take_along_axis(scores, candidates, axis=-1)  # (B, m)
        order = np.lexsort((keys[candidates], -values), axis=-1)[:, :k]  # (B, k)
        found = np.take_along_axis(candidates, order, axis=-1)
        kth = np.take_along_axis(scores, found[:, -1:], axis=-1)  # (B, 1): the k-th best score
        # exact unless some row outside the candidates ties the k-th score: then every tie is not among them
        inside = (values >= kth).sum(axis=-1)
        overall = (scores >= kth).sum(axis=-1)
        unsure = np.flatnonzero(inside != overall)
        if len(unsure):
            found[unsure] = _full_order(scores[unsure], keys, k)
    found = found.astype(np.int64)
    return found[0] if single else found
