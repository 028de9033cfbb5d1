"""Fine-tuning samples: next-item prompts, plus LC-Rec's auxiliary tasks for the `lcrec` methods.

LC-Rec mixes alignment tasks into fine-tuning: item text -> SID (`item2index`), SID -> item
text (`index2item`) and history SIDs -> the next item's title (`fusionseqrec`). A task of
weight w adds round(w x n) samples, n the number of next-item samples; the training loop
shuffles them all together.

item2index and index2item draw from the whole catalog, so in a cold-items split they show cold
items' text and SIDs (LC-Rec's text tasks read every item's text, as GTI's grounding does);
fusionseqrec, like the next-item samples, comes from the training sequences, which hold no cold item.
"""

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

from gti.config import LcrecConfig
from gti.data import Example
from gti.lm.prompts import PromptBuilder, Sample

LCREC_TASKS = ("item2index", "index2item", "fusionseqrec")
T = TypeVar("T")


def seqrec_samples(builder: PromptBuilder, examples: Sequence[Example], seed: int) -> list[Sample]:
    """One next-item sample per example, its phrasing drawn by a generator seeded with `seed`; in the sequence layout
    (`builder.sequence`) one sample per window, every item of it after the first a target."""
    if builder.sequence:
        return [builder.sequence_sample((*e.history, e.target)) for e in examples]
    rng = random.Random(seed)
    return [builder.seqrec(e.history, e.target, rng.randrange(builder.seqrec_phrasings)) for e in examples]


Maker = Callable[[T, random.Random], Sample | None]


def _draw(pool: Sequence[T], count: int, make: Maker, rng: random.Random) -> list[Sample]:
    """`count` samples made from `pool` in a fresh seeded order per pass (elements whose sample is None are skipped)."""
    samples: list[Sample] = []
    order = list(pool)
    while len(samples) < count and order:
        rng.shuffle(order)
        made = [s for s in (make(element, rng) for element in order[: count - len(samples)]) if s is not None]
        if not made:
            break
        samples += made
    return samples


def lcrec_samples(
    builder: PromptBuilder, examples: Sequence[Example], weights: LcrecConfig, n_seqrec: int, seed: int
) -> dict[str, list[Sample]]:
    """LC-Rec task samples, round(weight x `n_seqrec`) per task, drawn with `seed`.

    Args:
        builder: prompts over the extended tokenizer; item2index/index2item use its
            `text_to_sid` / `sid_to_text` templates, one drawn per sample.
        examples: next-item examples that fusionseqrec cycles over.
        weights: each task's weight.
        n_seqrec: the number of next-item samples the weights multiply.
        seed: seed of the draws (each task has its own generator, so one weight does not change another task's draw).

    Returns:
        Task name -> its samples (fewer than asked only when items lack the text a task needs).
    """
    config = builder.config
    items = builder.sids.item_ids
    makers: dict[str, tuple[Sequence, Maker]] = {
        "item2index": (items, lambda item, rng: builder.item2index(item, rng.randrange(len(config.text_to_sid) or 1))),
        "index2item": (items, lambda item, rng: builder.index2item(item, rng.randrange(len(config.sid_to_text) or 1))),
        "fusionseqrec": (examples, lambda example, rng: builder.fusionseqrec(example.history, example.target)),
    }
    samples = {}
    for task in LCREC_TASKS:
        pool, make = makers[task]
        count = round(getattr(weights, task) * n_seqrec)
        samples[task] = _draw(pool, count, make, random.Random(f"{task}:{seed}"))
    return samples
