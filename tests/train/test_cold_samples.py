"""No fine-tuning or validation sample of a cold-items split shows a cold item, except where a method reads
item text (GTI's grounding, LC-Rec's item2index and index2item), which shows every item's, cold ones included;
the rows-first control's grounding (next-item prompts) shows none."""

import itertools
import random

import numpy as np
import pytest

from gti.config import FinetuneConfig, LcrecConfig, PromptConfig, RunConfig
from gti.data import Dataset, Item, cold_items_split
from gti.lm.prompts import PromptBuilder
from gti.lm.vocab import extend_vocabulary
from gti.methods import METHODS, text_stages, uses_text
from gti.sid import SemanticIds
from gti.stages.artifacts import DataArtifact, Shared, SidsArtifact
from gti.stages.ground import grounding_samples
from gti.train.finetune import finetune_samples, seqrec_examples
from gti.train.tasks import lcrec_samples, seqrec_samples

WORDS = "movie comedy drama action story toy love war night day man woman".split()


@pytest.fixture
def setup(tiny_tokenizer, tiny_model):
    rng = random.Random(0)
    items = {f"i{n}": Item(f"i{n}", " ".join(rng.sample(WORDS, 2)), description=" ".join(rng.sample(WORDS, 3)))
             for n in range(12)}
    sequences = {f"u{u}": [f"i{rng.randrange(12)}" for _ in range(rng.randrange(2, 9))] for u in range(40)}
    dataset = Dataset("tiny", items, sequences)
    split = cold_items_split(dataset, 0.25, seed=0, max_history=5)
    sids = SemanticIds(list(items), np.array(list(itertools.product(range(3), range(2), range(2)))), [3, 2, 2])
    extend_vocabulary(tiny_model, tiny_tokenizer, sids.new_tokens())
    builder = PromptBuilder(tiny_tokenizer, sids, items, PromptConfig(chat=False, history=5))
    return split, sids, builder


def shown_items(sample, builder, item_ids) -> set[str]:
    """The items whose whole SID appears in a sample's prompt or answer (SIDs are unique token sequences)."""
    def holds(tokens, sid):
        return any(tokens[i:i + len(sid)] == sid for i in range(len(tokens) - len(sid) + 1))
    return {item for item in item_ids if holds(sample.prompt, builder.sid_ids(item)) or holds(sample.answer, builder.sid_ids(item))}


@pytest.mark.parametrize("samples", ["last", "sliding"])
def test_next_item_fusionseqrec_and_validation_samples_never_show_a_cold_item(setup, samples):
    split, sids, builder = setup
    cold = set(split.cold_items)
    assert len(cold) == 3 and split.cold_test
    examples = seqrec_examples(split.train, samples, 5)
    tasks = lcrec_samples(builder, examples, LcrecConfig(), len(examples), seed=0)
    sequence_samples = seqrec_samples(builder, examples, 0) + tasks["fusionseqrec"] + [
        builder.seqrec(e.history, e.target) for e in split.valid]
    shown = set().union(*(shown_items(s, builder, sids.item_ids) for s in sequence_samples))
    assert shown and not shown & cold
    # the text tasks draw from the whole catalog: cold items' text and SIDs are in them (a stated choice)
    text_tasks = set().union(*(shown_items(s, builder, sids.item_ids) for s in tasks["item2index"] + tasks["index2item"]))
    assert cold <= text_tasks
    # what fine-tuning trains on is exactly these, for a method with and without the LC-Rec tasks
    plain = finetune_samples(builder, examples, FinetuneConfig(samples=samples))
    assert not cold & set().union(*(shown_items(s, builder, sids.item_ids) for s in plain))
    mixed = finetune_samples(builder, examples, FinetuneConfig(samples=samples), LcrecConfig())
    assert len(mixed) == len(plain) + sum(len(task) for task in tasks.values())


def test_grounding_shows_cold_items_text_and_only_text_methods_ground_on_text_or_mix_text_tasks(setup, tmp_path):
    split, sids, builder = setup
    dataset = Dataset("tiny", builder.items, {})
    shared = Shared(DataArtifact("d", tmp_path, dataset, split), SidsArtifact("s", tmp_path, sids), builder.config)
    config = RunConfig(finetune=FinetuneConfig(samples="sliding"), prompts=builder.config)
    cold = set(split.cold_items)
    gti = grounding_samples(config, shared, builder, METHODS["gti"].ground_on)  # text<->SID: every item, cold ones too
    assert cold <= set().union(*(shown_items(s, builder, sids.item_ids) for s in gti))
    rows_first = grounding_samples(config, shared, builder, METHODS["rows-first"].ground_on)  # next-item prompts
    assert rows_first and not cold & set().union(*(shown_items(s, builder, sids.item_ids) for s in rows_first))
    for name, method in METHODS.items():
        reads_text = method.init == "text" or (method.ground and method.ground_on == "text") or method.lcrec_tasks
        assert uses_text(name) == reads_text
        if not uses_text(name):  # text-free: no text grounding, no text tasks: only samples shown cold-free here
            assert not method.lcrec_tasks and text_stages(name) == ()
    assert text_stages("gti") == ("ground",) and text_stages("lcrec") == ("finetune",)
    assert text_stages("text") == ("init",) and text_stages("gti+lcrec") == ("ground", "finetune")
    assert not any(uses_text(name) for name in ("mean", "mean-rowlr", "random", "mean-hf", "rows-first", "mostpop", "sasrec"))
