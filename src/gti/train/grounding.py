"""GTI grounding: train only the new embedding rows, the rest of the model frozen.

Gradients of every old row are zeroed by a hook and the optimizer has no weight decay,
so AdamW's update of an old row is exactly zero: every old row and every other
parameter is bit-identical afterwards. With tied embeddings the same rows serve as
input and output; untied, the new output rows train as well.
"""

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gti.config import TrainConfig
from gti.errors import GtiError
from gti.lm.prompts import Sample
from gti.lm.vocab import only_new_rows_train
from gti.train.loop import TrainResult, train


def ground(
    model: PreTrainedModel,
    new_ids: torch.Tensor,
    samples: Sequence[Sample],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    pad_id: int,
    seed: int = 0,
    options: TrainConfig | None = None,
    workdir: Path | None = None,
) -> TrainResult:
    """Train the rows `new_ids` of the embedding matrices on `samples`; nothing else changes.

    `options` and `workdir` are the loop's (precision, accumulation, checkpoints, logs); see `train`.
    """
    with only_new_rows_train(model, new_ids) as matrices:
        return train(
            model, samples, matrices, steps=steps, lr=lr, batch_size=batch_size,
            pad_id=pad_id, seed=seed, description="ground", options=options, workdir=workdir,
        )


def ground_pairs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[tuple[str, str]],
    *,
    steps: int = 100,
    lr: float = 1e-3,
    batch_size: int = 8,
    seed: int = 0,
) -> TrainResult:
    """Ground any new vocabulary from (token, text) pairs, in both directions.

    Each pair yields "What does {token} mean?" -> text and "Which token means: {text}?" -> token.
    The tokens must already be in the tokenizer and the model (see `extend_vocabulary`).
    """
    vocabulary = tokenizer.get_vocab()
    missing = [token for token, _ in pairs if token not in vocabulary]
    if missing:
        raise GtiError(f"tokens not in the vocabulary: {', '.join(missing[:5])}; call extend_vocabulary first")
    samples = []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for token, text in pairs:
        token_ids = [vocabulary[token]]
        text_ids = tokenizer(" " + text, add_special_tokens=False).input_ids
        samples.append(Sample(tokenizer(f"What does {token} mean?", add_special_tokens=False).input_ids, text_ids + eos))
        samples.append(Sample(tokenizer(f"Which token means: {text}?", add_special_tokens=False).input_ids, token_ids))
    new_ids = torch.tensor(sorted({vocabulary[token] for token, _ in pairs}))
    return ground(
        model, new_ids, samples, steps=steps, lr=lr, batch_size=batch_size,
        pad_id=tokenizer.pad_token_id, seed=seed,
    )
