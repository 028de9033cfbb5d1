"""Letting cold items compete: reserved beams (TIGER's epsilon), a trie over part of the catalog, cold shares."""

import numpy as np
import pytest
import torch

from gti.errors import GtiError
from gti.rec import constrained_beam_search, score_items, tie_key
from gti.rec.cold import cold_share, decodings, rank_scores, reserved_count
from gti.sid.trie import SidTrie


def prefix_log_probs(model, prompt, token_ids, catalog) -> dict[tuple[int, ...], float]:
    """Total log-probability of every SID prefix of the catalog, each from a plain forward pass."""
    scores = {}
    for row in catalog:
        tokens = [int(token_ids[level][code]) for level, code in enumerate(row)]
        with torch.no_grad():
            log_probs = model(input_ids=torch.tensor([prompt + tokens])).logits.log_softmax(-1)[0]  # (T, V)
        steps = [float(log_probs[len(prompt) - 1 + level, token]) for level, token in enumerate(tokens)]
        for depth in range(1, len(row) + 1):
            scores[tuple(int(c) for c in row[:depth])] = float(np.sum(steps[:depth]))
    return scores


def reference_search(scores, catalog, beams, cold_rows, reserved):
    """The reserved-beams rule written out level by level over explicit prefixes (no ties in these scores)."""
    codes = [tuple(int(c) for c in row) for row in catalog]
    cold = [codes[row] for row in cold_rows]
    kept = [()]
    for level in range(catalog.shape[1]):
        candidates = sorted({code[: level + 1] for code in codes if code[:level] in kept}, key=lambda p: -scores[p])
        reaching = [p for p in candidates if any(c[: level + 1] == p for c in cold)]
        chosen = reaching[:reserved]
        others = [p for p in candidates if p not in chosen][: beams - len(chosen)]
        kept = sorted(chosen + others, key=lambda p: -scores[p])
    return [codes.index(p) for p in kept], [scores[p] for p in kept]


@pytest.mark.parametrize(("beams", "reserved", "cold_rows"), [(3, 1, [0, 5]), (4, 2, [1, 2, 3]), (2, 2, [11]),
                                                             (5, 1, [4, 7, 9, 10]), (3, 0, [0])])
def test_reserved_beams_follow_the_rule_at_every_level(sid_setup, catalog, beams, reserved, cold_rows):
    model, prompts, trie, token_ids = sid_setup
    results = constrained_beam_search(model, prompts, trie, token_ids, beams=beams, batch_size=3,
                                      reserved_rows=cold_rows, reserved_beams=reserved)
    for prompt, result in zip(prompts, results):
        items, scores = reference_search(prefix_log_probs(model, prompt, token_ids, catalog), catalog, beams,
                                         cold_rows, reserved)
        assert [item for item, _ in result] == items
        np.testing.assert_allclose([score for _, score in result], scores, atol=1e-4, rtol=0)
        assert sum(item in cold_rows for item, _ in result) >= min(reserved, len(cold_rows))


def test_a_cold_target_the_plain_search_misses_is_found_with_a_reserved_beam(sid_setup, catalog):
    model, prompts, trie, token_ids = sid_setup
    for prompt in prompts:
        plain = [item for item, _ in constrained_beam_search(model, [prompt], trie, token_ids, beams=3)[0]]
        worst = int(torch.argmin(score_items(model, prompt, catalog, token_ids)))  # the catalog's least likely item
        assert worst not in plain
        reserved = [item for item, _ in constrained_beam_search(model, [prompt], trie, token_ids, beams=3,
                                                                reserved_rows=[worst], reserved_beams=1)[0]]
        assert worst in reserved and len(reserved) == 3
        assert reserved[:2] == [item for item in plain if item != worst][:2]  # the other places: the best of the rest


def test_no_reservation_or_wide_beams_give_the_plain_search(sid_setup, catalog):
    model, prompts, trie, token_ids = sid_setup
    for beams in (4, len(catalog)):
        plain = constrained_beam_search(model, prompts, trie, token_ids, beams=beams, batch_size=2)
        off = constrained_beam_search(model, prompts, trie, token_ids, beams=beams, batch_size=2, reserved_rows=[3, 4],
                                      reserved_beams=0)
        assert off == plain
    wide = constrained_beam_search(model, prompts, trie, token_ids, beams=len(catalog), reserved_rows=[3, 4],
                                   reserved_beams=2)
    assert wide == constrained_beam_search(model, prompts, trie, token_ids, beams=len(catalog))
    with pytest.raises(GtiError, match="reserved beams"):
        constrained_beam_search(model, prompts, trie, token_ids, beams=3, reserved_rows=[1], reserved_beams=4)


def test_a_trie_over_part_of_the_catalog_searches_those_items_by_their_catalog_rows(sid_setup, catalog, codebook_sizes):
    model, prompts, trie, token_ids = sid_setup
    cold_rows = np.array([2, 5, 7, 11])
    cold_trie = SidTrie(catalog[cold_rows], codebook_sizes, rows=cold_rows)
    for prompt, result in zip(prompts, constrained_beam_search(model, prompts, cold_trie, token_ids, beams=10)):
        scores = score_items(model, prompt, catalog, token_ids)[cold_rows]
        order = cold_rows[torch.argsort(scores, descending=True).numpy()]
        assert [item for item, _ in result] == order.tolist()  # exhaustive: 4 items, 10 beams
    all_reserved = constrained_beam_search(model, prompts, trie, token_ids, beams=3, reserved_rows=cold_rows,
                                           reserved_beams=3)
    only = constrained_beam_search(model, prompts, cold_trie, token_ids, beams=3)
    assert [[item for item, _ in r] for r in all_reserved] == [[item for item, _ in r] for r in only]
    with pytest.raises(GtiError, match="item rows"):
        SidTrie(catalog[:2], codebook_sizes, rows=[1, 1])


def test_leading_to_marks_exactly_the_prefixes_of_the_chosen_items(catalog, codebook_sizes):
    trie = SidTrie(catalog, codebook_sizes)
    rng = np.random.default_rng(0)
    for _ in range(10):
        rows = rng.choice(len(catalog), size=int(rng.integers(1, 5)), replace=False)
        marks = trie.leading_to(rows)
        for level in range(trie.levels):
            for node, prefix_rows in _nodes(trie, catalog, level).items():
                assert bool(marks[level][node]) == any(row in rows for row in prefix_rows)


def _nodes(trie, catalog, level) -> dict[int, list[int]]:
    """Child id at `level` (node of depth level+1, or item row at the last) -> the catalog rows under it."""
    found: dict[int, list[int]] = {}
    for row, codes in enumerate(catalog):
        node = 0
        for depth in range(level + 1):
            node = int(trie.children[depth][node, codes[depth]])
        found.setdefault(node, []).append(row)
    return found


def test_collapsed_rows_keep_the_tie_rule_with_reserved_beams(sid_setup, catalog):
    """Every SID row equal: all items tie; with 2 of 5 beams reserved the list is the 2 cold items first in
    tie-key order among cold ones, then the best 3 others by tie key, all ordered by tie key; batched = alone."""
    model, prompts, trie, token_ids = sid_setup
    new_ids = torch.cat(token_ids)
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight[new_ids] = weight[new_ids].mean(0)
    cold_rows = [0, 3, 6, 9]
    batched = constrained_beam_search(model, prompts, trie, token_ids, beams=len(catalog), batch_size=4,
                                      reserved_rows=cold_rows, reserved_beams=2)
    keys = tie_key(torch.arange(len(catalog)))
    assert all([item for item, _ in r] == torch.argsort(keys, stable=True).tolist() for r in batched)
    narrow = constrained_beam_search(model, prompts, trie, token_ids, beams=5, batch_size=4, reserved_rows=cold_rows,
                                     reserved_beams=2)
    alone = [constrained_beam_search(model, [p], trie, token_ids, beams=5, reserved_rows=cold_rows, reserved_beams=2)[0]
             for p in prompts]
    assert [[item for item, _ in r] for r in narrow] == [[item for item, _ in r] for r in alone]
    for result in narrow:
        items = [item for item, _ in result]
        assert len(set(round(score, 4) for _, score in result)) == 1 and len(items) == 5
        assert sum(item in cold_rows for item in items) >= 2
        assert items == sorted(items, key=lambda row: int(keys[row]))  # equal scores: lower tie key first


def test_rank_scores_applies_the_same_decodings_to_a_scored_catalog():
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0],
                           [0.0, 0.0, 0.0, 0.0, 1.0, float("-inf")]])
    cold = [3, 5]
    tied = sorted([0, 1, 2, 3], key=lambda row: int(tie_key(torch.tensor(row))))  # row 2's equal scores, tie rule
    assert rank_scores(scores, cold, 3, "beam") == [[0, 1, 2], [4, *tied[:2]]]
    assert rank_scores(scores, cold, 3, "cold-only") == [[3, 5], [3]]  # -inf is never recommended
    warm_first = [row for row in tied if row != 3][:1]
    assert rank_scores(scores, cold, 3, "cold-beams", reserved=1) == [
        [0, 1, 3], [4, *[row for row in tied if row in warm_first or row == 3]]]
    assert rank_scores(scores, cold, 4, "cold-beams", reserved=2)[0] == [0, 1, 3, 5]
    assert rank_scores(scores, cold, 3, "cold-beams", reserved=0) == rank_scores(scores, cold, 3, "beam")
    assert rank_scores(torch.zeros(1, 6), cold, 6, "beam")[0] == torch.argsort(tie_key(torch.arange(6)), stable=True).tolist()


def test_reserved_counts_shares_and_decodings():
    assert [reserved_count(share, beams) for share, beams in [(0.0, 20), (0.2, 20), (0.1, 30), (0.25, 10), (1.0, 7)]] \
        == [0, 4, 3, 3, 7]
    assert cold_share([[1, 2, 3], [4, 5]], [2, 5], k=2) == pytest.approx((0.5 + 0.5) / 2)
    assert cold_share([[1, 2, 3], [4]], [4], k=2) == pytest.approx(0.25)  # a short list's empty places are not cold
    assert cold_share([], [1], k=5) == 0.0
    assert decodings("warm", 4) == ["beam", "cold-beams"] and decodings("cold", 0) == ["beam", "cold-only"]
    assert decodings("cold", 4) == ["beam", "cold-beams", "cold-only"]
