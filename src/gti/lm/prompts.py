"""Prompt templates and their tokenization into (prompt ids, answer ids) samples.

A `Sample` holds token ids only; the loss is on the answer. Semantic-id answers are the
SID's token ids taken from the vocabulary table, so training and constrained decoding
see exactly the same ids.
"""

import functools
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from gti.config import PromptConfig
from gti.data import Item, render_item_text
from gti.lm.vocab import level_token_ids
from gti.sid import SemanticIds

SEQREC = {
    "paper": (
        "The user has interacted with items {history} in chronological order. Can you predict the next item?",
        "Here is the user's history, oldest first: {history}. Which item will the user choose next?",
        "Given the items {history} the user engaged with, in that order, recommend the next item.",
        "A user interacted with {history}, one after another. What item comes next?",
    ),
    "compact": ("History: {history} Next:",),
}
"""Next-item phrasings per style; training draws one per example, evaluation uses the first."""
SEQUENCE_PREFIX = {
    "paper": "The user's items, in chronological order:",
    "compact": "History:",
}
"""The sequence layout's prefix per style (`finetune.samples = "sequence"`): the prefix (as a chat turn when the chat
template is on) and then the items' SIDs, oldest first; the model writes the next item's SID after the last one."""
FUSIONSEQREC = {
    "paper": "The user has interacted with items {history} in chronological order. "
             "What is the title of the item the user will interact with next?",
    "compact": "History: {history} Next title:",
}
"""LC-Rec's history -> next item's title task (SIDs in, text out)."""
DESCRIPTION_FALLBACK_FIELDS = ("categories", "brand")


def history_separator(style: str) -> str:
    """What joins the history items' SIDs in a prompt: `, ` for the paper phrasings, nothing for compact ones."""
    return ", " if style == "paper" else ""


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
        sequence: the sequence layout (`finetune.samples = "sequence"`): a next-item prompt is the style's
            `SEQUENCE_PREFIX` and then the history's SIDs as token ids (joined by the style's separator), so a
            training sequence scores each of its items exactly as a test prompt ending before that item would.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, sids: SemanticIds, items: dict[str, Item], config: PromptConfig,
                 sequence: bool = False):
        self.tokenizer = tokenizer
        self.sids = sids
        self.items = items
        self.config = config
        self.sequence = sequence
        self.level_ids = level_token_ids(tokenizer, sids.codebook_sizes)
        # tokenize each item's fields and each next-item prompt once, however many stages and methods ask
        self.fields = functools.cache(self.fields)
        self._seqrec_prompt = functools.cache(self._seqrec_prompt)

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

    @property
    def seqrec_phrasings(self) -> int:
        """How many next-item phrasings the prompt style has."""
        return len(SEQREC[self.config.style])

    def _history(self, history: list[str] | tuple[str, ...]) -> str:
        return history_separator(self.config.style).join(self.sids.tokens(item) for item in history[-self.config.history:])

    def seqrec(self, history: list[str] | tuple[str, ...], target: str | None = None, phrasing: int = 0) -> Sample:
        """Next-item prediction: the last `history` items' SIDs -> the target's SID.

        `phrasing` picks one of the style's phrasings (modulo their number); evaluation uses 0. In the sequence
        layout there is one phrasing: the prefix, then the SIDs.
        """
        shown = tuple(history[-self.config.history:])
        if self.sequence:  # the prompt ends where the next SID starts (after the separator, for the paper style)
            prompt = self._sequence_prompt(shown) + (list(self._separator) if shown else [])
            return Sample(prompt, self.sid_ids(target) if target is not None else [])
        prompt = self._seqrec_prompt(shown, phrasing % self.seqrec_phrasings)
        return Sample(prompt, self.sid_ids(target) if target is not None else [])

    @functools.cached_property
    def _separator(self) -> tuple[int, ...]:
        """The ids between two items' SIDs in the sequence layout (none for the compact style)."""
        separator = history_separator(self.config.style)
        return tuple(self.tokenizer(separator, add_special_tokens=False).input_ids) if separator else ()

    def _sequence_prompt(self, items: tuple[str, ...]) -> list[int]:
        """The sequence layout: the prefix's ids, then each item's SID ids (with the separator between items)."""
        ids = list(self._prefix)
        for index, item in enumerate(items):
            ids += (list(self._separator) if index else []) + self.sid_ids(item)
        return ids

    @functools.cached_property
    def _prefix(self) -> tuple[int, ...]:
        """The sequence layout's prefix ids (the chat turn's, when the chat template is on)."""
        return tuple(self._prompt(SEQUENCE_PREFIX[self.config.style]))

    def sequence_sample(self, items: list[str] | tuple[str, ...]) -> Sample:
        """One training sequence in the sequence layout: the prefix and the first item's SID as the prompt, every
        later item's SID (each after the separator) as the answer, so the loss is on every item after the first
        (and on the separators of the paper style, which the compact style does not have).

        Its k-th item's tokens get exactly the log-probabilities of `seqrec(items[:k], items[k])` (the same ids,
        a causal model): one forward pass scores every target. `items` is a window (`gti.data.windows`) of at
        most `prompts.history` + 1 items, so every target sees at most the history a test prompt shows.
        """
        if len(items) < 2:
            raise ValueError("a training sequence needs at least two items")
        ids = self._sequence_prompt(tuple(items))
        first = len(self._prefix) + len(self.sid_ids(items[0]))  # the prompt: the prefix and the first item's SID
        return Sample(ids[:first], ids[first:])

    def _seqrec_prompt(self, history: tuple[str, ...], phrasing: int) -> list[int]:
        template = SEQREC[self.config.style][phrasing]
        return self._prompt(template.format(history=self._history(history)))

    def fusionseqrec(self, history: list[str] | tuple[str, ...], target: str) -> Sample | None:
        """LC-Rec's fused task: the history's SIDs -> the next item's title (None without a title)."""
        title = self.fields(target)["title"]
        if not title:
            return None
        prompt = self._prompt(FUSIONSEQREC[self.config.style].format(history=self._history(history)))
        return Sample(prompt, self._answer_text(title))

    def item2index(self, item_id: str, phrasing: int = 0) -> Sample | None:
        """Item text -> its SID, with the `phrasing`-th usable `text_to_sid` template (cyclically).

        Returns None when no template's fields are present.
        """
        fields = self.fields(item_id)
        templates = [t for t in self.config.text_to_sid if _usable(t, fields)]
        if not templates:
            return None
        return Sample(self._prompt(templates[phrasing % len(templates)].format(**fields)), self.sid_ids(item_id))

    def index2item(self, item_id: str, phrasing: int = 0) -> Sample | None:
        """SID -> item text, with the `phrasing`-th usable `sid_to_text` pair (cyclically).

        Returns None when no answer template's fields are present.
        """
        fields = self.fields(item_id)
        pairs = [(q, a) for q, a in self.config.sid_to_text if _usable(a, fields)]
        if not pairs:
            return None
        question, answer = pairs[phrasing % len(pairs)]
        prompt = self._prompt(question.format(sid=self.sids.tokens(item_id)))
        return Sample(prompt, self._answer_text(answer.format(**fields)))

    def grounding(self, item_id: str, directions: str) -> list[Sample]:
        """Every text->SID and/or SID->text sample for one item (templates needing a missing field are skipped)."""
        fields = self.fields(item_id)
        samples = []
        if directions in ("text2sid", "both"):
            for template in self.config.text_to_sid:
                if _usable(template, fields):
                    samples.append(Sample(self._prompt(template.format(**fields)), self.sid_ids(item_id)))
        if directions in ("sid2text", "both"):
            sid = self.sids.tokens(item_id)
            for question, answer in self.config.sid_to_text:
                if _usable(answer, fields):
                    samples.append(Sample(self._prompt(question.format(sid=sid)), self._answer_text(answer.format(**fields))))
        return samples


def _usable(template: str, fields: dict[str, str]) -> bool:
    """Whether every item field the template names is non-empty."""
    return all(fields[key] for key in ("title", "description") if "{" + key + "}" in template)
