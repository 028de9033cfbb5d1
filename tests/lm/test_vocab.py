import pytest
import torch

from gti.errors import GtiError
from gti.lm.vocab import embedding_matrices, extend_vocabulary, initialize, token_item_texts
from gti.sid import sid_tokens
from tiny_models import make_tiny_model

TOKENS = sid_tokens([3, 2])


def test_extend_adds_tokens_and_rows(tiny_model, tiny_tokenizer):
    n_old = len(tiny_tokenizer)
    ids = extend_vocabulary(tiny_model, tiny_tokenizer, TOKENS)
    assert ids.tolist() == list(range(n_old, n_old + 5))
    assert tiny_model.get_input_embeddings().weight.shape[0] == n_old + 5
    assert tiny_tokenizer("<a_2><b_1>", add_special_tokens=False).input_ids == [n_old + 2, n_old + 4]


def test_extend_keeps_padded_matrix(tiny_tokenizer):
    """A matrix already larger than the tokenizer (padded) is not shrunk; new ids index rows inside it."""
    model = make_tiny_model(len(tiny_tokenizer) + 64)
    ids = extend_vocabulary(model, tiny_tokenizer, TOKENS)
    assert model.get_input_embeddings().weight.shape[0] == len(tiny_tokenizer) - 5 + 64
    assert ids.max() < len(tiny_tokenizer)


def test_extend_twice_is_an_error(tiny_model, tiny_tokenizer):
    extend_vocabulary(tiny_model, tiny_tokenizer, TOKENS)
    with pytest.raises(GtiError, match="already in the vocabulary"):
        extend_vocabulary(tiny_model, tiny_tokenizer, TOKENS)


@pytest.mark.parametrize("tied", [True, False])
def test_mean_init_sets_every_matrix_to_the_old_mean(tiny_tokenizer, tied):
    model = make_tiny_model(len(tiny_tokenizer), tied=tied)
    n_old = len(tiny_tokenizer)
    before = [w.detach().clone() for w in embedding_matrices(model)]
    ids = extend_vocabulary(model, tiny_tokenizer, TOKENS)
    initialize(model, ids, "mean", n_old)
    assert len(embedding_matrices(model)) == (1 if tied else 2)
    for weight, old in zip(embedding_matrices(model), before):
        assert torch.allclose(weight[ids], old.mean(0).expand(len(ids), -1), atol=1e-6)
        assert torch.equal(weight[:n_old], old)


def test_mean_hf_is_mean_plus_tiny_noise_and_random_spreads(tiny_model, tiny_tokenizer):
    n_old = len(tiny_tokenizer)
    old = tiny_model.get_input_embeddings().weight.detach().clone()
    ids = extend_vocabulary(tiny_model, tiny_tokenizer, TOKENS)
    initialize(tiny_model, ids, "mean-hf", n_old, seed=1)
    rows = tiny_model.get_input_embeddings().weight.detach()[ids]
    assert not torch.equal(rows[0], rows[1])
    assert (rows - old.mean(0)).abs().max() < 1e-3
    initialize(tiny_model, ids, "random", n_old, seed=1)
    rows = tiny_model.get_input_embeddings().weight.detach()[ids]
    assert (rows - old.mean(0)).abs().max() > 10 * 1e-3


def test_text_init_averages_item_text_embeddings(tiny_model, tiny_tokenizer):
    n_old = len(tiny_tokenizer)
    old = tiny_model.get_input_embeddings().weight.detach().clone()
    codes = torch.tensor([[0, 0], [0, 1], [2, 0]]).numpy()
    texts = [[5, 6], [7], [8, 9]]
    per_token = token_item_texts(codes, texts, [3, 2])
    assert per_token == [[[5, 6], [7]], [], [[8, 9]], [[5, 6], [8, 9]], [[7]]]
    ids = extend_vocabulary(tiny_model, tiny_tokenizer, TOKENS)
    initialize(tiny_model, ids, "text", n_old, token_texts=per_token)
    rows = tiny_model.get_input_embeddings().weight.detach()[ids]
    expected_a0 = (old[[5, 6]].mean(0) + old[7]) / 2
    assert torch.allclose(rows[0], expected_a0, atol=1e-6)
    assert torch.allclose(rows[1], old.mean(0), atol=1e-6)  # no items: falls back to the mean
