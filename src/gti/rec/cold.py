"""Cold-start measures and decodings: how much of a ranking is cold, and three ways to rank the catalog.

A cold-items split (`gti.data.cold_items_split`) has a warm and a cold test set. Each is ranked by
up to three decodings:

- `beam`: the plain search over the whole catalog (the usual evaluation);
- `cold-beams`: the same search with ceil(`eval.cold_beams` x beams) beams reserved at every level
  for prefixes of cold items (TIGER's epsilon; the rule is `gti.rec.beam`'s);
- `cold-only`: the search over a trie of the cold items alone (so every returned item is cold).
  It cannot hit a warm target, so only the cold test set is ranked with it.

`rank_scores` applies the same three decodings to a ranker that scores every item (a model without
SIDs), with the same tie rule, so any method that produces ranked item lists is measured alike.
"""

import math

import numpy as np
import torch

from gti.rec.beam import top_by_score
from gti.rec.ties import tie_key

DECODINGS = {
    "beam": "beam search over the whole catalog",
    "cold-beams": "beam search with ceil(eval.cold_beams x beams) beams reserved at every level for prefixes of cold items",
    "cold-only": "beam search over a trie of the cold items only",
}
"""Decoding name -> what it does (for reports)."""


def reserved_count(share: float, beams: int) -> int:
    """ceil(share x beams): the beams `cold-beams` reserves (a product a rounding error above an integer stays it)."""
    return min(beams, math.ceil(round(share * beams, 9)))


def decodings(test_set: str, reserved: int) -> list[str]:
    """The decodings a test set is ranked with: `beam`, `cold-beams` when beams are reserved, and `cold-only`
    for the cold test set."""
    names = ["beam"] + (["cold-beams"] if reserved else [])
    return names + (["cold-only"] if test_set == "cold" else [])


def cold_share(top: list[list[int]], cold_rows, k: int) -> float:
    """Mean over users of the share of the top-k places that hold a cold item (a list shorter than k counts
    its missing places as not cold); 0.0 for no users."""
    cold = set(int(row) for row in cold_rows)
    if not top:
        return 0.0
    return float(np.mean([sum(int(row) in cold for row in rows[:k]) / k for rows in top]))


def rank_scores(scores: torch.Tensor, cold_rows, k: int, decoding: str, reserved: int = 0) -> list[list[int]]:
    """The top-k catalog rows per user from scores of every item, by a decoding of `DECODINGS`.

    Equal scores are ordered by `tie_key` of the row (lower first), as in beam search. `cold-beams`
    keeps the best `reserved` cold items and fills the other places with the best of the rest;
    `cold-only` ranks the cold items alone.

    Args:
        scores: (U, N) scores of every catalog row per user (higher is better; -inf: never recommended).
        cold_rows: the cold items' catalog rows.
        k: places per list.
        decoding: `beam`, `cold-beams` or `cold-only`.
        reserved: places `cold-beams` keeps for cold items.

    Returns:
        Per user, up to k rows, best first (items of score -inf left out).
    """
    scores = torch.as_tensor(scores, dtype=torch.float32)
    n_users, n_items = scores.shape
    cold = torch.zeros(n_items, dtype=torch.bool)
    cold[torch.as_tensor(np.asarray(cold_rows, dtype=np.int64))] = True
    if decoding == "cold-only":
        scores = scores.masked_fill(~cold, float("-inf"))
    keys = tie_key(torch.arange(n_items)).expand(n_users, n_items)  # (U, N)
    marked = cold.expand(n_users, n_items) if decoding == "cold-beams" else None
    top, picked = top_by_score(scores, keys, min(k, n_items), marked, reserved)  # (U, k) x 2
    return [[int(row) for row, score in zip(rows, values) if score != float("-inf")]
            for rows, values in zip(picked.tolist(), top.tolist())]
