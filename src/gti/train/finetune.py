"""Supervised fine-tuning on next-item prediction, in one of two modes.

`full`: every parameter trains. `lora`: LoRA adapters on every linear layer of the decoder
layers (attention and MLP projections) plus the new SID embedding rows; old rows get a
zero gradient and AdamW has no weight decay, so they stay bit-identical (with tied
embeddings the same rows serve input and output). The adapters are merged afterwards, so
the model is a plain transformers model again.

In both modes `new_rows_lr` gives the new rows of every embedding matrix their own peak
learning rate: AdamW then updates them exactly as a parameter group of their own at that rate
would (`gti.train.rows.RowGroup`), tied or untied, while everything else steps at `lr`.
"""

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import PreTrainedModel

from gti.config import FinetuneConfig, LcrecConfig, TrainConfig
from gti.data import Example, windows
from gti.errors import GtiError
from gti.lm.prompts import PromptBuilder, Sample
from gti.lm.vocab import embedding_matrices, only_new_rows_train
from gti.train.loop import TrainResult, train
from gti.train.rows import RowGroup
from gti.train.tasks import lcrec_samples, seqrec_samples


def seqrec_examples(train_sequences: dict[str, list[str]], samples: str, max_history: int) -> list[Example]:
    """Next-item examples from the training part of each sequence.

    Args:
        train_sequences: user -> training items (leave-one-out: all but the last two).
        samples: `last` (each user's last training item as target), `sliding` (every prefix) or `sequence`
            (each window of `gti.data.windows`, one example whose history is the window but its last item:
            `PromptBuilder.sequence_sample` then trains every item of the window after the first at once).
        max_history: histories keep their last N items (a sequence window holds at most N + 1).
    """
    examples = []
    for user, sequence in train_sequences.items():
        if samples == "sequence":
            examples += [Example(user, tuple(window[:-1]), window[-1]) for window in windows(sequence, max_history)]
            continue
        targets = range(1, len(sequence)) if samples == "sliding" else range(len(sequence) - 1, len(sequence))
        for end in targets:
            if end >= 1:
                examples.append(Example(user, tuple(sequence[max(0, end - max_history):end]), sequence[end]))
    return examples


def finetune_steps(config: FinetuneConfig, samples: int) -> int:
    """`finetune.steps`, or with `finetune.epochs` the steps of that many passes over `samples` samples."""
    return config.steps if config.epochs is None else math.ceil(config.epochs * samples / config.batch_size)


def lora_target_modules(model: PreTrainedModel) -> list[str]:
    """Names of every `nn.Linear` inside the model's layer stacks (never the LM head or embeddings)."""
    output = model.get_output_embeddings()
    names = set()
    for stack_name, stack in model.named_modules():
        if isinstance(stack, torch.nn.ModuleList):
            for name, module in stack.named_modules(prefix=stack_name):
                if isinstance(module, torch.nn.Linear) and module is not output:
                    names.add(name)
    return sorted(names)


def _train_lora(
    model: PreTrainedModel, samples: list[Sample], new_ids: torch.Tensor, config: FinetuneConfig, options: dict
) -> TrainResult:
    """Train LoRA adapters and the rows `new_ids`, then merge the adapters into `model` in place."""
    targets = lora_target_modules(model)
    if not targets:
        raise GtiError(f"finetune.mode=lora: no linear layers found in {type(model).__name__}'s layer stacks")
    lora = LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, target_modules=targets,
        task_type="CAUSAL_LM",
    )
    with only_new_rows_train(model, new_ids) as matrices:
        with warnings.catch_warnings():
            # peft 0.21 reads an attribute that transformers 5 deprecates; nothing for us to act on
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
            peft_model = get_peft_model(model, lora)  # freezes every base parameter, the embeddings too
        for weight in matrices:
            weight.requires_grad_(True)
        rows = None if config.new_rows_lr is None else RowGroup(matrices, new_ids, config.new_rows_lr)
        try:
            result = train(peft_model, samples, [p for p in peft_model.parameters() if p.requires_grad], rows=rows,
                           **options)
        except BaseException:
            peft_model.unload()  # hand the model back without adapters
            raise
        peft_model.merge_and_unload()  # merges into the same modules: `model` is updated in place
    return result


def finetune_samples(builder: PromptBuilder, examples: Sequence[Example], config: FinetuneConfig,
                     tasks: LcrecConfig | None = None) -> list[Sample]:
    """What fine-tuning trains on: a next-item sample per example, then the LC-Rec tasks' samples when given."""
    samples = seqrec_samples(builder, examples, config.seed)
    if tasks is not None:
        for extra in lcrec_samples(builder, examples, tasks, len(samples), config.seed).values():
            samples += extra
    return samples


def finetune(
    model: PreTrainedModel,
    builder: PromptBuilder,
    examples: Sequence[Example],
    config: FinetuneConfig,
    pad_id: int,
    *,
    tasks: LcrecConfig | None = None,
    options: TrainConfig | None = None,
    workdir: Path | None = None,
    validate: Callable[[PreTrainedModel], dict[str, float]] | None = None,
    snapshot_steps: Sequence[int] = (),
    snapshot: Callable | None = None,
) -> TrainResult:
    """Fine-tune `model` in place on next-item prompts built from `examples`.

    Args:
        model: the extended causal LM. In `lora` mode the adapters are merged into it
            afterwards, so it stays a plain transformers model (save it with `save_pretrained`).
        builder: prompts over the extended tokenizer; its SID tokens are the rows `lora` mode trains.
        examples: next-item examples; each gets one of the style's phrasings, drawn with `config.seed`.
        config: steps, learning rate (and `new_rows_lr`, the new rows' own), batch size, seed, warmup,
            `mode` (`full` or `lora`) and `lora_r`, `lora_alpha`, `lora_dropout`.
        pad_id: the padding token id.
        tasks: LC-Rec task weights; when given, item2index, index2item and fusionseqrec samples
            (round(weight x len(examples)) each) are mixed into the next-item samples.
        options, workdir, validate: the loop's precision, accumulation, checkpoints, logs and
            validation with early stopping (see `gti.train.loop.train`).
        snapshot_steps, snapshot: a callback on the model as it is after these steps (budget
            curves; see `gti.train.loop.train`).
    """
    samples = finetune_samples(builder, examples, config, tasks)
    options = dict(
        steps=finetune_steps(config, len(samples)), lr=config.lr, batch_size=config.batch_size, pad_id=pad_id,
        seed=config.seed, warmup_steps=config.warmup_steps, description=f"finetune ({config.mode})",
        options=options, workdir=workdir, validate=validate, schedule=config.schedule,
        snapshot_steps=snapshot_steps, snapshot=snapshot,
    )
    new_ids = torch.cat(builder.level_ids)
    if config.mode == "lora":
        return _train_lora(model, samples, new_ids, config, options)
    model.requires_grad_(True)
    rows = None if config.new_rows_lr is None else RowGroup(embedding_matrices(model), new_ids, config.new_rows_lr)
    return train(model, samples, [p for p in model.parameters() if p.requires_grad], rows=rows, **options)
