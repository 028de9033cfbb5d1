"""Top-k catalog rows from scores, with the project's tie rule."""

import numpy as np
import torch

from gti.rec.ties import tie_key


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """The `k` best catalog rows of each score row: higher score first, equal scores by lower `tie_key`.

    Args:
        scores: (N,) or (B, N) scores of every catalog row.
        k: how many rows to keep (at most N).

    Returns:
        (k,) or (B, k) int64 catalog rows, best first.
    """
    scores = np.asarray(scores)
    keys = tie_key(torch.arange(scores.shape[-1])).numpy()  # (N,)
    order = np.lexsort((np.broadcast_to(keys, scores.shape), -scores), axis=-1)  # (..., N): by -score, then key
    return order[..., :k].astype(np.int64)
