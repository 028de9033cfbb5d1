"""Catalog coverage and popularity on hand-made lists; invalid-SID rate on the tiny model with steered logits."""

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from gti.errors import GtiError
from gti.rec import catalog_coverage, invalid_sid_rate, popularity_bias

RANKED = [[0, 1, 2], [2, 3], [], [4, 0, 9]]


def test_catalog_coverage_exact():
    assert catalog_coverage(RANKED, n_items=10, k=2) == 0.5  # {0, 1, 2, 3, 4}
    assert catalog_coverage(RANKED, n_items=10, k=1) == 0.3  # {0, 2, 4}
    assert catalog_coverage(RANKED, n_items=10) == 0.6  # {0, 1, 2, 3, 4, 9}
    assert catalog_coverage([[1, 0]], n_items=2) == 1.0


def test_popularity_bias_exact():
    counts = np.array([10, 0, 5, 1, 4, 0, 0, 0, 0, 4])  # mean 2.4
    result = popularity_bias(RANKED, counts, k=2)  # slots 0, 1, 2, 3, 4, 0: counts 10, 0, 5, 1, 4, 10
    assert result == pytest.approx({"recommended_mean_count": 5.0, "catalog_mean_count": 2.4, "ratio": 5.0 / 2.4})
    assert popularity_bias([[1]], counts, k=1)["ratio"] == 0.0


def test_output_measures_reject_bad_input():
    with pytest.raises(GtiError, match="must lie in"):
        catalog_coverage([[0, 10]], n_items=10)
    with pytest.raises(GtiError, match="empty"):
        catalog_coverage([[], []], n_items=10)
    with pytest.raises(GtiError, match="positive"):
        catalog_coverage(RANKED, n_items=10, k=0)
    with pytest.raises(GtiError, match="interaction"):
        popularity_bias(RANKED, np.zeros(10))


@contextmanager
def forced(model: torch.nn.Module, sequence: list[int]) -> Iterator[None]:
    """Make forward pass s (mod len(sequence)) strongly prefer token `sequence[s]`, for every row."""
    calls = [0]

    def hook(module, args, output):
        output.logits[:, -1, sequence[calls[0] % len(sequence)]] += 1e4
        calls[0] += 1
        return output

    handle = model.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def on_level(model: torch.nn.Module, token_ids: list[torch.Tensor]) -> Iterator[None]:
    """Make each next token one of the right level's SID tokens; the model still picks the code."""
    level_of = {int(token): level for level, ids in enumerate(token_ids) for token in ids}

    def hook(module, args, kwargs, output):
        for row, token in enumerate(kwargs["input_ids"][:, -1].tolist()):
            level = level_of.get(token, -1) + 1
            if level < len(token_ids):
                output.logits[row, -1, token_ids[level]] += 1e4
        return output

    handle = model.register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def sid_tokens(token_ids: list[torch.Tensor], codes) -> list[int]:
    return [int(token_ids[level][code]) for level, code in enumerate(codes)]


def test_unsteered_tiny_model_never_writes_a_sid(sid_setup):
    model, prompts, trie, token_ids = sid_setup
    assert invalid_sid_rate(model, prompts, trie, token_ids, batch_size=3) == 1.0


def test_suppressed_sid_tokens_are_all_invalid(sid_setup):
    """SID logits far below anything the level steering adds: no generation is a SID (steered alone, some are)."""
    model, prompts, trie, token_ids = sid_setup
    everything = torch.cat(token_ids)
    handle = model.lm_head.register_forward_hook(lambda module, args, logits: logits.index_fill(-1, everything, -1e9))
    try:
        with on_level(model, token_ids):
            assert invalid_sid_rate(model, prompts, trie, token_ids) == 1.0
    finally:
        handle.remove()


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_forced_catalog_sid_is_valid(sid_setup, catalog, batch_size):
    model, prompts, trie, token_ids = sid_setup
    with forced(model, sid_tokens(token_ids, catalog[5])):
        assert invalid_sid_rate(model, prompts, trie, token_ids, batch_size=batch_size) == 0.0


def test_forced_sid_outside_the_catalog_is_invalid(sid_setup, catalog, codebook_sizes):
    model, prompts, trie, token_ids = sid_setup
    missing = sorted(set(np.ndindex(*codebook_sizes)) - {tuple(row) for row in catalog.tolist()})[0]
    with forced(model, sid_tokens(token_ids, missing)):
        assert invalid_sid_rate(model, prompts, trie, token_ids) == 1.0


def test_forced_tokens_of_the_wrong_level_are_invalid(sid_setup, catalog):
    """Catalog codes, but the level-0 and level-1 tokens swapped."""
    model, prompts, trie, token_ids = sid_setup
    tokens = sid_tokens(token_ids, catalog[5])
    with forced(model, [tokens[1], tokens[0], tokens[2]]):
        assert invalid_sid_rate(model, prompts, trie, token_ids) == 1.0


def test_matches_greedy_generate(sid_setup, catalog):
    """Right-level tokens, codes chosen by the model: the rate equals `generate`'s, prompt by prompt."""
    model, prompts, trie, token_ids = sid_setup
    valid = {tuple(sid_tokens(token_ids, row)) for row in catalog.tolist()}
    with on_level(model, token_ids):
        generated = [
            model.generate(
                input_ids=torch.tensor([prompt]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                max_new_tokens=trie.levels,
                do_sample=False,
            )[0, len(prompt) :].tolist()
            for prompt in prompts
        ]
        rate = invalid_sid_rate(model, prompts, trie, token_ids, batch_size=3)
    expected = sum(tuple(tokens) not in valid for tokens in generated) / len(prompts)
    assert 0.0 < expected < 1.0
    assert rate == expected
