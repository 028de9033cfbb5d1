import numpy as np

from gti.config import PromptConfig
from gti.data import Item
from gti.lm.prompts import PromptBuilder
from gti.lm.vocab import extend_vocabulary
from gti.sid import SemanticIds

ITEMS = {
    "m1": Item("m1", "toy story", categories=("comedy",)),
    "m2": Item("m2", "love war", description="a war movie"),
}


def builder(tokenizer, model, chat: bool = False, **settings) -> PromptBuilder:
    sids = SemanticIds(["m1", "m2"], np.array([[0, 1], [1, 0]]), [2, 2])
    if sids.new_tokens()[0] not in tokenizer.get_vocab():
        extend_vocabulary(model, tokenizer, sids.new_tokens())
    return PromptBuilder(tokenizer, sids, ITEMS, PromptConfig(chat=chat, **settings))


def test_grounding_samples_both_directions(tiny_tokenizer, tiny_model):
    b = builder(tiny_tokenizer, tiny_model)
    samples = b.grounding("m2", "both")
    assert len(samples) == 6
    assert samples[0].answer == b.sid_ids("m2") == [int(b.level_ids[0][1]), int(b.level_ids[1][0])]
    assert samples[-1].answer[-1] == tiny_tokenizer.eos_token_id
    assert len(b.grounding("m2", "text2sid")) == 3 and len(b.grounding("m2", "sid2text")) == 3


def test_missing_description_falls_back_to_other_fields(tiny_tokenizer, tiny_model):
    b = builder(tiny_tokenizer, tiny_model)
    assert b.fields("m1") == {"title": "toy story", "description": "comedy"}


def test_templates_come_from_the_config(tiny_tokenizer, tiny_model):
    b = builder(tiny_tokenizer, tiny_model, text_to_sid=["the {title} ?"], sid_to_text=[["what is {sid} ?", "{title}"]])
    samples = b.grounding("m1", "both")
    assert len(samples) == 2
    assert tiny_tokenizer.decode(samples[0].prompt) == "the toy story ?"


def test_seqrec_prompt_holds_history_sids_and_targets_the_next(tiny_tokenizer, tiny_model):
    b = builder(tiny_tokenizer, tiny_model, history=1)
    sample = b.seqrec(["m1", "m2"], "m1")
    assert sample.answer == b.sid_ids("m1")
    assert b.sid_ids("m2")[0] in sample.prompt and b.sid_ids("m1")[0] not in sample.prompt


def test_chat_template_wraps_prompts_when_asked(tiny_tokenizer, tiny_model):
    tiny_tokenizer.chat_template = "{% for m in messages %}<s> {{ m['content'] }} </s>{% endfor %}"
    plain = builder(tiny_tokenizer, tiny_model).seqrec(["m1"], "m2").prompt
    chat = builder(tiny_tokenizer, tiny_model, chat=True).seqrec(["m1"], "m2").prompt
    assert chat[0] == tiny_tokenizer.bos_token_id and chat[1:-1] == plain
