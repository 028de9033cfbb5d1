"""Supervised fine-tuning on next-item prediction (full mode: every parameter trains)."""

from collections.abc import Sequence

from transformers import PreTrainedModel

from gti.config import FinetuneConfig
from gti.data import Example
from gti.lm.prompts import PromptBuilder, Sample
from gti.train.loop import TrainResult, train


def seqrec_examples(train_sequences: dict[str, list[str]], samples: str, max_history: int) -> list[Example]:
    """Next-item examples from the training part of each sequence.

    Args:
        train_sequences: user -> training items (leave-one-out: all but the last two).
        samples: `last` (each user's last training item as target) or `sliding` (every prefix).
        max_history: histories keep their last N items.
    """
    examples = []
    for user, sequence in train_sequences.items():
        targets = range(1, len(sequence)) if samples == "sliding" else range(len(sequence) - 1, len(sequence))
        for end in targets:
            if end >= 1:
                examples.append(Example(user, tuple(sequence[max(0, end - max_history):end]), sequence[end]))
    return examples


def finetune(
    model: PreTrainedModel, builder: PromptBuilder, examples: Sequence[Example], config: FinetuneConfig, pad_id: int
) -> TrainResult:
    """Fine-tune every parameter on next-item prompts built from `examples`."""
    samples: list[Sample] = [builder.seqrec(e.history, e.target) for e in examples]
    model.requires_grad_(True)
    return train(
        model, samples, [p for p in model.parameters() if p.requires_grad],
        steps=config.steps, lr=config.lr, batch_size=config.batch_size, pad_id=pad_id,
        seed=config.seed, warmup_steps=config.warmup_steps, description="finetune",
    )
