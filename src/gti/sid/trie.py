"""Prefix trie of valid semantic ids, stored as one dense child table per level.

A node at depth t is a distinct SID prefix of length t (the root, depth 0, is node 0).
`children[t][node, code]` is the node reached from `node` by `code` at level t, or -1
when no item has that prefix. At the last level the "node" is the item's row index
(its catalog row, also for a trie over part of the catalog), so a finished beam names
its item directly. Lookups for a whole batch of beams are single gathers: no Python
loop over beams or codes.
"""

import numpy as np
import torch

from gti.errors import GtiError


class SidTrie:
    """The valid SIDs of a catalog, for constrained decoding.

    Args:
        codes: (N, L) integer codes, one unique row per item.
        codebook_sizes: number of codes per level (L entries); defaults to max + 1.
        rows: (N,) the item row each code row stands for at the last level (a trie over part of a
            catalog keeps catalog rows, so rankings and the tie rule see the same rows); default 0..N-1.
    """

    def __init__(self, codes: np.ndarray, codebook_sizes: list[int] | None = None, rows: np.ndarray | None = None):
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or len(codes) == 0:
            raise GtiError(f"a trie needs a non-empty (items, levels) code matrix, got shape {codes.shape}")
        n_items, n_levels = codes.shape
        rows = np.arange(n_items) if rows is None else np.asarray(rows, dtype=np.int64)
        if rows.shape != (n_items,) or (rows < 0).any() or len(np.unique(rows)) != n_items:
            raise GtiError(f"a trie's item rows must be {n_items} distinct non-negative integers, got shape {rows.shape}")
        sizes = list(codebook_sizes) if codebook_sizes is not None else (codes.max(0) + 1).tolist()
        if len(sizes) != n_levels or (codes < 0).any() or (codes >= np.asarray(sizes)).any():
            raise GtiError("semantic id codes fall outside the codebook sizes")
        self.codebook_sizes = sizes
        self.children: list[torch.Tensor] = []
        nodes = np.zeros(n_items, dtype=np.int64)  # node of each item's prefix at the current depth
        n_nodes = 1
        for level in range(n_levels):
            keys = nodes * sizes[level] + codes[:, level]
            if level == n_levels - 1:
                if len(np.unique(keys)) != n_items:
                    raise GtiError("semantic ids are not unique: disambiguate before building a trie")
                child = rows
            else:
                _, child = np.unique(keys, return_inverse=True)
            table = np.full((n_nodes, sizes[level]), -1, dtype=np.int64)
            table[nodes, codes[:, level]] = child
            self.children.append(torch.from_numpy(table))
            nodes, n_nodes = child, int(child.max()) + 1

    @property
    def levels(self) -> int:
        """SID length L."""
        return len(self.children)

    def allowed(self, level: int, nodes: torch.Tensor) -> torch.Tensor:
        """Which codes may follow each node: (M,) node ids -> (M, K_level) bool."""
        return self.children[level][nodes] >= 0

    def step(self, level: int, nodes: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The nodes reached by taking `codes` at `level`: (M,), (M,) -> (M,); item rows at the last level."""
        return self.children[level][nodes, codes]

    def leading_to(self, item_rows) -> list[torch.Tensor]:
        """Per level t, which children of that level lead to at least one of `item_rows`.

        Returns:
            Per level t, a bool vector indexed by the ids `children[t]` holds: nodes of depth t+1
            (prefixes with t+1 codes) for t < L-1, item rows at the last level.
        """
        last = self.children[-1]
        marks = torch.zeros(int(last.max()) + 1, dtype=torch.bool)
        rows = torch.as_tensor(np.asarray(item_rows, dtype=np.int64))
        marks[rows[rows < len(marks)]] = True
        found = [marks]
        for level in range(self.levels - 1, 0, -1):  # nodes of depth `level` from their children at `level`
            children = self.children[level]  # (nodes of depth level, K)
            found.insert(0, ((children >= 0) & found[0][children.clamp(min=0)]).any(dim=1))
        return found
