"""Same answers on every machine: float32 SID scores, exact ties for equal rows, batched = alone.

Each test names its precision explicitly (never `auto`), so an AVX2-only CPU and a CPU with native
bfloat16 run the same tests.
"""

import numpy as np
import pytest
import torch

from gti.rec import constrained_beam_search, score_items
from gti.rec.logprobs import SidHead
from gti.rec.pool import pool_ranks
from gti.rec.ties import tie_key
from tiny_models import make_tiny_model

AMBIENT = {"float32": False, "bfloat16": True}


def ambient(precision: str):
    """An enclosing autocast as a caller (the training loop, a user's script) may have one."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=AMBIENT[precision])


def random_prompts(vocab: int, n: int = 9, seed: int = 3) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 40, (n,), generator=generator).tolist()
    return [torch.randint(4, vocab, (length,), generator=generator).tolist() for length in lengths]


def collapse(model, token_ids) -> None:
    new_ids = torch.cat(token_ids)
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight[new_ids] = weight[new_ids].mean(0)


@pytest.mark.parametrize("outer", ["float32", "bfloat16"])
def test_batched_answers_equal_single_answers_under_any_enclosing_autocast(sid_setup, outer):
    """Random prompts of mixed lengths answered together: the same items and scores (to 1e-6, relative: the
    scores here are about -38, where one float32 ulp is 4e-6) as each alone."""
    model, _, trie, token_ids = sid_setup
    prompts = random_prompts(model.config.vocab_size)
    with ambient(outer):
        together = constrained_beam_search(model, prompts, trie, token_ids, beams=7, batch_size=len(prompts))
        split = constrained_beam_search(model, prompts, trie, token_ids, beams=7, batch_size=4)
        alone = [constrained_beam_search(model, [p], trie, token_ids, beams=7, batch_size=1)[0] for p in prompts]
    with ambient("float32"):
        reference = constrained_beam_search(model, prompts, trie, token_ids, beams=7, batch_size=len(prompts))
    for answers in (together, split, reference):
        for got, want in zip(answers, alone):
            assert [item for item, _ in got] == [item for item, _ in want]
            np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_equal_rows_tie_exactly_at_either_precision(sid_setup, catalog, precision):
    """Collapsed SID rows: every item scores bit-identically, so the tie rule alone orders them."""
    model, prompts, trie, token_ids = sid_setup
    collapse(model, token_ids)
    expected = torch.argsort(tie_key(torch.arange(len(catalog))), stable=True).tolist()
    for batch_size in (1, 2, 4):
        results = constrained_beam_search(model, prompts, trie, token_ids, beams=len(catalog), batch_size=batch_size,
                                          precision=precision)
        for result in results:
            assert len({score for _, score in result}) == 1
            assert [item for item, _ in result] == expected
    scores = score_items(model, prompts[0], catalog, token_ids, batch_size=5, precision=precision)
    assert len(set(scores.tolist())) == 1


def test_codes_with_equal_rows_tie_and_others_do_not(sid_setup, catalog):
    """Only level c's two codes share a row: items that differ only there tie exactly; the rest differ."""
    model, prompts, trie, token_ids = sid_setup
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight[token_ids[2][1]] = weight[token_ids[2][0]]
    for prompt, result in zip(prompts, constrained_beam_search(model, prompts, trie, token_ids, beams=len(catalog))):
        score = dict(result)
        scores = score_items(model, prompt, catalog, token_ids)
        for a in range(len(catalog)):
            for b in range(a + 1, len(catalog)):
                twins = (catalog[a, :2] == catalog[b, :2]).all()
                assert (score[a] == score[b]) == bool(twins)
                assert (scores[a] == scores[b]) == bool(twins)
        twins_in_order = [item for item, _ in result]
        for a, b in zip(twins_in_order, twins_in_order[1:]):
            if score[a] == score[b]:
                assert tie_key(torch.tensor(a)) < tie_key(torch.tensor(b))


def test_pool_ranks_of_collapsed_rows_follow_the_tie_rule(sid_setup, catalog):
    model, prompts, _, token_ids = sid_setup
    collapse(model, token_ids)
    keys = tie_key(torch.arange(len(catalog)))
    targets = [0, 5, 11, 3]
    ranks = pool_ranks(model, prompts, targets, catalog, token_ids, pool_size=len(catalog) - 1,
                       n_items=len(catalog), seed=0)
    assert ranks == [1 + int((keys < keys[t]).sum()) for t in targets]


@pytest.mark.parametrize("tied", [True, False])
def test_sid_head_matches_the_models_log_softmax_in_float32(tiny_tokenizer, tied):
    model = make_tiny_model(len(tiny_tokenizer) + 6, tied=tied)
    if not tied:
        with torch.no_grad():
            model.lm_head.weight.normal_()
    token_ids = [torch.arange(len(tiny_tokenizer), len(tiny_tokenizer) + 4), torch.arange(len(tiny_tokenizer) + 4,
                                                                                            len(tiny_tokenizer) + 6)]
    head = SidHead(model, token_ids)
    prompts = random_prompts(len(tiny_tokenizer), n=3)
    with torch.no_grad(), ambient("bfloat16"):
        hidden = torch.stack([model.model(input_ids=torch.tensor([p])).last_hidden_state[0, -1] for p in prompts])
        got = head.log_probs(hidden, 0)
    assert got.dtype == torch.float32
    with torch.no_grad():
        want = (hidden.float() @ model.lm_head.weight.float().T).log_softmax(-1)[:, token_ids[0]]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_sid_head_refuses_transformed_logits(sid_setup):
    from gti.errors import GtiError

    model, _, _, token_ids = sid_setup
    model.config.final_logit_softcapping = 30.0
    with pytest.raises(GtiError, match="final_logit_softcapping"):
        SidHead(model, token_ids)


def test_unknown_precision_is_refused(sid_setup):
    from gti.errors import GtiError

    model, prompts, trie, token_ids = sid_setup
    with pytest.raises(GtiError, match="precision"):
        constrained_beam_search(model, prompts, trie, token_ids, precision="fp8")
