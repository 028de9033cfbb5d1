import pytest
import torch

from gti.lm.prompts import Sample
from gti.lm.vocab import extend_vocabulary, initialize
from gti.sid import sid_tokens
from gti.train.grounding import ground, ground_pairs
from tiny_models import make_tiny_model


@pytest.mark.parametrize("tied", [True, False])
def test_grounding_moves_only_the_new_rows(tiny_tokenizer, tied):
    model = make_tiny_model(len(tiny_tokenizer), tied=tied)
    n_old = len(tiny_tokenizer)
    new_ids = extend_vocabulary(model, tiny_tokenizer, sid_tokens([4, 3]))
    initialize(model, new_ids, "mean", n_old)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    samples = [Sample([5 + i, 6, 7], [int(new_ids[i % 4]), int(new_ids[4 + i % 3])]) for i in range(12)]
    samples += [Sample([9, int(new_ids[i % 4]), 10], [11 + i, 2]) for i in range(4)]
    result = ground(model, new_ids, samples, steps=5, lr=1e-2, batch_size=4, pad_id=0)
    assert len(result.losses) == 5
    old_rows = torch.ones(before["model.embed_tokens.weight"].shape[0], dtype=torch.bool)
    old_rows[new_ids] = False
    for name, parameter in model.named_parameters():
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            assert torch.equal(parameter[old_rows], before[name][old_rows]), name
            assert not torch.equal(parameter[new_ids], before[name][new_ids]), name
        else:
            assert torch.equal(parameter, before[name]), name
    assert all(p.requires_grad for p in model.parameters())


def test_ground_pairs_grounds_any_new_vocabulary(tiny_model, tiny_tokenizer):
    ids = extend_vocabulary(tiny_model, tiny_tokenizer, ["<love>", "<war>"])
    before = tiny_model.get_input_embeddings().weight.detach().clone()
    result = ground_pairs(tiny_model, tiny_tokenizer, [("<love>", "love story"), ("<war>", "war movie")], steps=3, batch_size=2)
    after = tiny_model.get_input_embeddings().weight.detach()
    assert len(result.losses) == 3
    assert not torch.equal(after[ids], before[ids])
    keep = torch.ones(len(before), dtype=torch.bool)
    keep[ids] = False
    assert torch.equal(after[keep], before[keep])
