import numpy as np
import pytest
import torch

from gti.errors import GtiError
from gti.sid import SidTrie

CODES = np.array([[0, 1, 0], [0, 1, 1], [0, 2, 0], [2, 0, 0]])  # 4 items, 3 levels


def test_allowed_and_step_walk_every_item():
    trie = SidTrie(CODES, [3, 3, 2])
    root = torch.zeros(1, dtype=torch.long)
    assert trie.allowed(0, root).tolist() == [[True, False, True]]
    node_0 = trie.step(0, root, torch.tensor([0]))
    assert trie.allowed(1, node_0).tolist() == [[False, True, True]]
    node_01 = trie.step(1, node_0, torch.tensor([1]))
    assert trie.allowed(2, node_01).tolist() == [[True, True]]
    for row, sid in enumerate(CODES):
        nodes = torch.zeros(1, dtype=torch.long)
        for level, code in enumerate(sid):
            nodes = trie.step(level, nodes, torch.tensor([int(code)]))
        assert nodes.item() == row  # the last step names the item's row


def test_step_off_the_trie_gives_minus_one():
    trie = SidTrie(CODES)
    assert trie.step(0, torch.zeros(1, dtype=torch.long), torch.tensor([1])).item() == -1


def test_duplicate_ids_rejected():
    with pytest.raises(GtiError, match="not unique"):
        SidTrie(np.array([[0, 1], [0, 1]]))


def test_codes_outside_sizes_rejected():
    with pytest.raises(GtiError, match="outside"):
        SidTrie(CODES, [2, 3, 2])
