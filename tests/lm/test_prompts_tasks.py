import numpy as np

from gti.config import PromptConfig
from gti.data import Item
from gti.lm.prompts import SEQREC, PromptBuilder
from gti.lm.vocab import extend_vocabulary
from gti.sid import SemanticIds

ITEMS = {
    "m1": Item("m1", "toy story", categories=("comedy",)),
    "m2": Item("m2", "love war", description="a war movie"),
    "m3": Item("m3", ""),
}


def builder(tokenizer, model, **settings) -> PromptBuilder:
    sids = SemanticIds(list(ITEMS), np.array([[0, 1], [1, 0], [1, 1]]), [2, 2])
    extend_vocabulary(model, tokenizer, sids.new_tokens())
    return PromptBuilder(tokenizer, sids, ITEMS, PromptConfig(chat=False, **settings))


def test_paper_style_has_several_seqrec_phrasings_and_evaluation_uses_the_first(tiny_tokenizer, tiny_model):
    b = builder(tiny_tokenizer, tiny_model, style="paper")
    assert b.seqrec_phrasings == len(SEQREC["paper"]) >= 4
    assert SEQREC["paper"][0].startswith("The user has interacted with items {history} in chronological order.")
    prompts = [tuple(b.seqrec(["m1", "m2"], "m3", phrasing).prompt) for phrasing in range(b.seqrec_phrasings)]
    assert len(set(prompts)) == b.seqrec_phrasings
    assert list(prompts[0]) == b.seqrec(["m1", "m2"]).prompt
    assert list(prompts[1]) == b.seqrec(["m1", "m2"], "m3", b.seqrec_phrasings + 1).prompt  # phrasings cycle
    for phrasing in range(b.seqrec_phrasings):
        sample = b.seqrec(["m1", "m2"], "m3", phrasing)
        assert sample.answer == b.sid_ids("m3")
        assert all(i in sample.prompt for i in b.sid_ids("m1") + b.sid_ids("m2"))


def test_compact_style_keeps_one_phrasing(tiny_tokenizer, tiny_model):
    b = builder(tiny_tokenizer, tiny_model)
    assert b.seqrec_phrasings == 1
    assert b.seqrec(["m1"], "m2", 3).prompt == b.seqrec(["m1"], "m2").prompt


def test_fusionseqrec_answers_the_next_title(tiny_tokenizer, tiny_model):
    b = builder(tiny_tokenizer, tiny_model, style="paper")
    sample = b.fusionseqrec(["m1"], "m2")
    assert tiny_tokenizer.decode(sample.answer, skip_special_tokens=True) == "love war"
    assert sample.answer[-1] == tiny_tokenizer.eos_token_id
    assert all(i in sample.prompt for i in b.sid_ids("m1"))
    assert sample.prompt != b.seqrec(["m1"], "m2").prompt
    assert b.fusionseqrec(["m1"], "m3") is None  # no title to answer with


def test_item2index_and_index2item_reuse_the_grounding_templates(tiny_tokenizer, tiny_model):
    b = builder(tiny_tokenizer, tiny_model)
    grounding = b.grounding("m2", "both")
    text2sid, sid2text = grounding[:3], grounding[3:]
    assert [b.item2index("m2", phrasing) for phrasing in range(3)] == text2sid
    assert [b.index2item("m2", phrasing) for phrasing in range(3)] == sid2text
    assert b.item2index("m2", 4) == text2sid[1]
    assert b.item2index("m2").answer == b.sid_ids("m2")


def test_tasks_skip_templates_missing_a_field(tiny_tokenizer, tiny_model):
    b = builder(tiny_tokenizer, tiny_model, text_to_sid=["the {title} ?", "a {description} ?"],
                sid_to_text=[["what is {sid} ?", "{description}"]])
    assert b.item2index("m3") is None and b.index2item("m3") is None
    assert tiny_tokenizer.decode(b.item2index("m1", 1).prompt) == "a comedy ?"  # description falls back to categories
