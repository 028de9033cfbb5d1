"""Prompt templates and their tokenization into (prompt ids, answer ids) samples.

A `Sample` holds token ids only; the loss is on the answer. Semantic-id answers are the
SID's token ids taken from the vocabulary table, so training and constrained decoding
see exactly the same ids.
"""

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from gti.config import PromptConfig
from gti.data import Item, render_item_text
from gti.rec.beam import level_token_ids
from gti.sid import SemanticIds

SEQREC = {
    "paper": "The user has interacted with items {history} in chronological order. Can you predict the next item?",
    "compact": "History: {history} Next:",
}
DESCRIPTION_FALLBACK_FIELDS = ("categories", "brand")


@dataclass(frozen=True)
class Sample:
    """One training or evaluation example as token ids."""

    prompt: list[int]
    answer: list[int]


class PromptBuilder:
    """Turns items, SIDs and histories into token-id samples for one tokenizer.

    Args:
        tokenizer: the extended tokenizer (SID tokens present).
        sids: the catalog's semantic ids.
        items: the catalog.
        config: prompt style, chat template use, history and text lengths.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, sids: SemanticIds, items: dict[str, Item], config: PromptConfig):
        self.tokenizer = tokenizer
        self.sids = sids
        self.items = items
        self.config = config
        self.level_ids = level_token_ids(tokenizer, sids.codebook_sizes)

    def sid_ids(self, item_id: str) -> list[int]:
        """The SID token ids of an item."""
        return [int(self.level_ids[level][code]) for level, code in enumerate(self.sids.sid(item_id))]

    def _prompt(self, text: str) -> list[int]:
        if self.config.chat and self.tokenizer.chat_template:
            return list(self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=False
            ))
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _text(self, text: str) -> str:
        """Item text cut to `max_text_tokens` tokens."""
        ids = self.tokenizer(text, add_special_tokens=False).input_ids[: self.config.max_text_tokens]
        return self.tokenizer.decode(ids).strip()

    def _answer_text(self, text: str) -> list[int]:
        ids = self.tokenizer(" " + text, add_special_tokens=False).input_ids[: self.config.max_text_tokens]
        return ids + [self.tokenizer.eos_token_id]

    def fields(self, item_id: str) -> dict[str, str]:
        """Title and description of an item; without a description, its other text fields stand in."""
        item = self.items[item_id]
        description = item.description or render_item_text(
            item, [f for f in DESCRIPTION_FALLBACK_FIELDS if f != "brand" or item.brand] + list(item.extra)
        )
        return {"title": self._text(item.title), "description": self._text(description)}

    def seqrec(self, history: list[str] | tuple[str, ...], target: str | None = None) -> Sample:
        """Next-item prediction: the last `history` items' SIDs -> the target's SID."""
        sep = ", " if self.config.style == "paper" else ""
        shown = sep.join(self.sids.tokens(item) for item in history[-self.config.history:])
        prompt = self._prompt(SEQREC[self.config.style].format(history=shown))
        return Sample(prompt, self.sid_ids(target) if target is not None else [])

    def grounding(self, item_id: str, directions: str) -> list[Sample]:
        """Every text->SID and/or SID->text sample for one item (templates needing a missing field are skipped)."""
        fields = self.fields(item_id)

        def usable(template: str) -> bool:
            return all(fields[key] for key in ("title", "description") if "{" + key + "}" in template)

        samples = []
        if directions in ("text2sid", "both"):
            for template in self.config.text_to_sid:
                if usable(template):
                    samples.append(Sample(self._prompt(template.format(**fields)), self.sid_ids(item_id)))
        if directions in ("sid2text", "both"):
            sid = self.sids.tokens(item_id)
            for question, answer in self.config.sid_to_text:
                if usable(answer):
                    samples.append(Sample(self._prompt(question.format(sid=sid)), self._answer_text(answer.format(**fields))))
        return samples
