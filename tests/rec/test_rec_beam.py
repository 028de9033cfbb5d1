"""Constrained beam search against exhaustive scoring, plain forward passes, and `generate`."""

import numpy as np
import pytest
import torch

from gti.errors import GtiError
from gti.rec import constrained_beam_search, level_token_ids, score_items
from gti.sid import codec
from gti.sid.trie import SidTrie


def test_prompts_have_different_lengths_and_sid_tokens(sid_setup):
    _, prompts, _, token_ids = sid_setup
    assert len({len(prompt) for prompt in prompts}) == len(prompts)
    assert int(token_ids[1][1]) in prompts[0]


def test_level_token_ids_maps_codes_to_tokens(tiny_tokenizer, codebook_sizes):
    with pytest.raises(GtiError, match="extend the vocabulary"):
        level_token_ids(tiny_tokenizer, codebook_sizes)
    tiny_tokenizer.add_tokens(codec.sid_tokens(codebook_sizes))
    token_ids = level_token_ids(tiny_tokenizer, codebook_sizes)
    assert [len(ids) for ids in token_ids] == codebook_sizes
    assert tiny_tokenizer.convert_ids_to_tokens(int(token_ids[2][1])) == "<c_1>"


def test_score_items_equals_plain_forward(sid_setup, catalog):
    model, prompts, _, token_ids = sid_setup
    prompt = prompts[0]
    sids = torch.stack([ids[torch.as_tensor(catalog[:, level])] for level, ids in enumerate(token_ids)], 1)  # (N, L)
    sequences = torch.cat([torch.tensor(prompt).expand(len(catalog), -1), sids], dim=1)  # (N, T+L)
    with torch.no_grad():
        log_probs = model(input_ids=sequences).logits.log_softmax(-1)  # (N, T+L, V)
    predicted = log_probs[:, len(prompt) - 1 : -1]  # (N, L, V) distributions of the SID positions
    expected = predicted.gather(-1, sids[..., None])[..., 0].sum(-1)  # (N,)
    scores = score_items(model, prompt, catalog, token_ids, batch_size=5)
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("beams", [12, 20])
def test_wide_beams_rank_the_whole_catalog(sid_setup, catalog, beams):
    """Beams >= catalog size: beam search is exhaustive, on a left-padded batch split in two."""
    model, prompts, trie, token_ids = sid_setup
    results = constrained_beam_search(model, prompts, trie, token_ids, beams=beams, batch_size=3)
    for prompt, result in zip(prompts, results):
        scores = score_items(model, prompt, catalog, token_ids)
        order = torch.argsort(scores, descending=True)
        assert [item for item, _ in result] == order.tolist()
        np.testing.assert_allclose([score for _, score in result], scores[order].numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("beams", [2, 3, 5])
def test_narrow_beams_match_generate(sid_setup, catalog, beams):
    """Beams < catalog size: same items, order and scores as `generate` with a trie-restricted prefix function.

    `generate` runs each prompt alone (no padding). With `length_penalty=0` its sequence score is the plain
    sum of log-probabilities. It finishes beams only when `max_new_tokens` is reached (EOS is never allowed),
    so its early-stopping heuristic never cuts a beam. Its first step seeds beams 1.. with -1e9 instead of
    -inf, so with `beams` above the level-0 codes (5 > 3) it carries filler beams; they rank last and are
    gone by the last level here, because enough real prefixes exist.
    """
    model, prompts, trie, token_ids = sid_setup
    sids = [tuple(int(token_ids[level][code]) for level, code in enumerate(row)) for row in catalog]
    allowed: dict[tuple[int, ...], set[int]] = {}
    for sid in sids:
        for depth in range(len(sid)):
            allowed.setdefault(sid[:depth], set()).add(sid[depth])
    item_of = {sid: row for row, sid in enumerate(sids)}

    results = constrained_beam_search(model, prompts, trie, token_ids, beams=beams, batch_size=8)
    for prompt, result in zip(prompts, results):
        out = model.generate(
            input_ids=torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            prefix_allowed_tokens_fn=lambda _, ids, n=len(prompt): sorted(allowed.get(tuple(ids[n:].tolist()), [])),  # noqa: B008
            num_beams=beams,
            num_return_sequences=beams,
            max_new_tokens=trie.levels,
            do_sample=False,
            length_penalty=0.0,
            output_scores=True,
            return_dict_in_generate=True,
        )
        generated = [item_of[tuple(row)] for row in out.sequences[:, len(prompt) :].tolist()]
        assert [item for item, _ in result] == generated
        np.testing.assert_allclose([score for _, score in result], out.sequences_scores.numpy(), atol=1e-4, rtol=0)


def test_results_are_real_items_best_first(sid_setup, catalog):
    model, prompts, trie, token_ids = sid_setup
    for beams in (1, 4, 7, 30):
        for result in constrained_beam_search(model, prompts, trie, token_ids, beams=beams, batch_size=2):
            items = [item for item, _ in result]
            scores = [score for _, score in result]
            assert len(items) == min(beams, len(catalog)) == len(set(items))
            assert all(0 <= item < len(catalog) for item in items)
            assert all(np.isfinite(scores)) and scores == sorted(scores, reverse=True)


def test_few_real_prefixes_drop_dead_beams(sid_setup, codebook_sizes):
    """A catalog of 2 items sharing their first two codes: 4 beams find exactly those 2."""
    model, prompts, _, token_ids = sid_setup
    trie = SidTrie(np.array([[1, 2, 0], [1, 2, 1]]), codebook_sizes)
    for result in constrained_beam_search(model, prompts, trie, token_ids, beams=4):
        assert sorted(item for item, _ in result) == [0, 1]


def test_rejects_bad_arguments(sid_setup):
    model, prompts, trie, token_ids = sid_setup
    with pytest.raises(GtiError):
        constrained_beam_search(model, prompts, trie, token_ids, beams=0)
    with pytest.raises(GtiError):
        constrained_beam_search(model, prompts, trie, token_ids[:2])
    with pytest.raises(GtiError):
        constrained_beam_search(model, [[]], trie, token_ids)


def test_collapsed_sid_rows_tie_and_ties_follow_the_fixed_hash_not_the_index(sid_setup, catalog):
    """Every SID row equal (tied embeddings: equal logits): all items score the same, and the ranking is
    the order of `tie_key` over item rows, not catalog or token order."""
    from gti.rec.ties import tie_key

    model, prompts, trie, token_ids = sid_setup
    new_ids = torch.cat(token_ids)
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight[new_ids] = weight[new_ids].mean(0)
    results = constrained_beam_search(model, prompts, trie, token_ids, beams=len(catalog), batch_size=2)
    expected = torch.argsort(tie_key(torch.arange(len(catalog))), stable=True).tolist()
    assert expected != list(range(len(catalog))) and expected != list(range(len(catalog)))[::-1]
    for result in results:
        assert len({round(score, 4) for _, score in result}) == 1
        assert [item for item, _ in result] == expected
    narrow = constrained_beam_search(model, prompts, trie, token_ids, beams=3, batch_size=2)
    assert all(len(result) == 3 for result in narrow)


def test_tie_key_is_fixed_and_does_not_follow_the_index():
    from gti.rec.ties import tie_key

    rows = torch.arange(1000)
    keys = tie_key(rows)
    assert torch.equal(keys, tie_key(rows)) and len(set(keys.tolist())) == 1000
    assert not torch.equal(tie_key(rows, salt=1), keys)
    order = torch.argsort(keys)
    # low rows are not favoured: the first hundred ranked hold about a tenth of rows below 100
    assert 3 <= int((order[:100] < 100).sum()) <= 25
