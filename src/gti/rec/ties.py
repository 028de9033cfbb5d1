"""The one tie rule of ranking: equal scores are ordered by a fixed hash of what is ranked.

Beam search and pool scoring both rank by total SID log-probability, accumulated in float32.
A model whose SID rows are collapsed (mean initialization) gives many exactly equal scores;
ordering those by token or catalog index would hand the top of every list to the items with
the lowest codes. Instead, among equal scores the candidate with the lower `tie_key` comes
first: a fixed 32-bit integer mix of the item's catalog row (or, inside beam search, of the
SID prefix's trie node and its level), the same on every run and unrelated to index order.
"""

import torch

_MASK = 0xFFFFFFFF
_MULTIPLIER = 0x45D9F3B
_SALT = 0x9E3779B9


def tie_key(ids: torch.Tensor, salt: int = 0) -> torch.Tensor:
    """(...,) int64 tie-break keys of non-negative ids: lower key wins a tie.

    Args:
        ids: catalog rows (or trie nodes), any shape.
        salt: separates key families (0 for catalog rows; beam search uses level + 1 for prefixes).
    """
    x = (ids.long() + _SALT * (salt + 1)) & _MASK
    for _ in range(2):
        x = (((x >> 16) ^ x) * _MULTIPLIER) & _MASK
    return ((x >> 16) ^ x) & _MASK
