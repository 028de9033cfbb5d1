"""`finetune.samples = "sequence"`: one example per user window, the loss on every item after the first, scored
exactly as the matching next-item prompt of the same layout is."""

import numpy as np
import pytest
import torch

from gti.config import FinetuneConfig, PromptConfig
from gti.data import Item, windows
from gti.lm.prompts import SEQUENCE_PREFIX, PromptBuilder
from gti.lm.vocab import extend_vocabulary
from gti.sid import SemanticIds
from gti.train.finetune import finetune_samples, seqrec_examples

ITEMS = {f"m{i}": Item(f"m{i}", f"item {i}") for i in range(6)}


def builder(tokenizer, model, sequence=True, **settings) -> PromptBuilder:
    codes = np.array([[i % 3, i // 3, 0] for i in range(6)])
    sids = SemanticIds(list(ITEMS), codes, [3, 2, 1])
    if sids.new_tokens()[0] not in tokenizer.get_vocab():
        extend_vocabulary(model, tokenizer, sids.new_tokens())
    return PromptBuilder(tokenizer, sids, ITEMS, PromptConfig(chat=False, **settings), sequence)


def token_logprobs(model, ids: list[int]) -> torch.Tensor:
    """(T - 1,) log-probability of each token after the first, given the ones before it."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()  # (T-1, V)
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]


@pytest.mark.parametrize("style", ["compact", "paper"])
def test_each_target_of_a_sequence_scores_as_its_own_next_item_prompt(tiny_tokenizer, tiny_model, style):
    b = builder(tiny_tokenizer, tiny_model, style=style, history=10)
    tiny_model.eval()
    items = ["m0", "m3", "m1", "m5", "m2"]
    sample = b.sequence_sample(items)
    ids = sample.prompt + sample.answer
    found = token_logprobs(tiny_model, ids)[len(sample.prompt) - 1:]  # (A,): the answer tokens'
    position = 0
    for k in range(1, len(items)):
        alone = b.seqrec(items[:k], items[k])  # the test prompt that ends before item k, and item k's SID
        expected = token_logprobs(tiny_model, alone.prompt + alone.answer)[-len(alone.answer):]
        separator = len(b._separator)
        mine = found[position + separator: position + separator + len(alone.answer)]
        assert torch.allclose(mine, expected, atol=1e-5), k
        assert sample.answer[position + separator:position + separator + len(alone.answer)] == alone.answer
        position += separator + len(alone.answer)
    assert position == len(sample.answer)


def test_the_sequence_layout_prompt_is_the_prefix_and_the_sids(tiny_tokenizer, tiny_model):
    b = builder(tiny_tokenizer, tiny_model, history=2)
    prompt = b.seqrec(["m0", "m1", "m2"]).prompt
    prefix = tiny_tokenizer(SEQUENCE_PREFIX["compact"], add_special_tokens=False).input_ids
    assert prompt == prefix + b.sid_ids("m1") + b.sid_ids("m2")  # the last `prompts.history` items
    plain = builder(tiny_tokenizer, tiny_model, sequence=False, history=2)
    assert plain.seqrec(["m0", "m1", "m2"]).prompt != prompt  # the template layout differs
    with pytest.raises(ValueError, match="at least two items"):
        b.sequence_sample(["m0"])


def test_sequence_examples_are_windows_that_train_every_item_once(tiny_tokenizer, tiny_model):
    train = {"u1": [f"m{i % 6}" for i in range(9)], "u2": ["m1", "m2"], "u3": ["m4"]}
    examples = seqrec_examples(train, "sequence", 3)
    # u1's 9 items: windows [0..2], [2..5], [5..8]; u3's one item trains nothing
    assert [(e.user_id, len(e.history)) for e in examples] == [("u1", 2), ("u1", 3), ("u1", 3), ("u2", 1)]
    for e in examples:
        assert [*e.history, e.target] in windows(train[e.user_id], 3)
    sliding = seqrec_examples(train, "sliding", 3)
    b = builder(tiny_tokenizer, tiny_model, history=3)
    samples = finetune_samples(b, examples, FinetuneConfig(samples="sequence"))
    answer_items = sum(len(s.answer) for s in samples) // 3  # 3 SID tokens per item, no separator (compact)
    assert answer_items == len(sliding) == sum(len(s) - 1 for s in train.values())  # every target once
    tokens = sum(len(s.prompt) + len(s.answer) for s in samples)
    prefix = len(tiny_tokenizer(SEQUENCE_PREFIX["compact"], add_special_tokens=False).input_ids)
    assert tokens == len(samples) * (prefix + 3) + 3 * answer_items  # each item's SID counted once per window
