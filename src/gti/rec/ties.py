"""The one tie rule for ranking catalog items: equal scores are ordered by a fixed hash of the item's row.

Ordering ties by row (index order) would favour the items that happen to come first in
the catalog file, and a pessimistic or optimistic rule would favour or punish the target.
Instead every item gets a key from a fixed 32-bit integer mix of its catalog row; among
items with the same score, the lower key ranks first. The key depends only on the row, so
the same tie is broken the same way on every run, machine and batch size, and it is
unrelated to where the item sits in the catalog.
"""

import torch

SALT = 0x2545F491
_MASK = 0xFFFFFFFF
_MULTIPLIER = 0x45D9F3B


def tie_key(rows: torch.Tensor) -> torch.Tensor:
    """Each catalog row's tie-break key: among equal scores, the lower key ranks first.

    The key is `mix(mix(row ^ SALT))` with `mix(x) = ((x ^ (x >> 16)) * 0x45d9f3b) & 0xffffffff`.
    Each step is a bijection of 32-bit integers, so distinct rows below 2**32 get distinct keys.

    Args:
        rows: int64 (or other integer) catalog rows, any shape, each in [0, 2**32).

    Returns:
        int64 keys in [0, 2**32), the shape of `rows`.
    """
    x = (rows.to(torch.int64) ^ SALT) & _MASK
    for _ in range(2):
        x = ((x ^ (x >> 16)) * _MULTIPLIER) & _MASK  # < 2**32 * 2**27: no int64 overflow
    return x
