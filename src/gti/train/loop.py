"""The one training loop, shared by grounding and fine-tuning.

Samples are (prompt ids, answer ids); the loss is the mean cross-entropy over answer
tokens only. Batches are left-padded so every answer ends at the last position, which
lets the model compute logits for the last few positions only (`logits_to_keep`):
the LM head over a 49k vocabulary is a fifth of a small model's cost per token.
"""

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from tqdm import tqdm
from transformers import PreTrainedModel

from gti.lm.padding import left_pad
from gti.lm.prompts import Sample


@dataclass
class Batch:
    """A left-padded batch; answers occupy the last positions of each row."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    position_ids: torch.Tensor  # (B, T)
    answer_mask: torch.Tensor  # (B, A+1): which of the last A+1 next-token targets are answer tokens
    tokens: int


def collate(samples: Sequence[Sample], pad_id: int) -> Batch:
    """Left-pad prompt+answer sequences and mark the answer targets."""
    input_ids, attention_mask, position_ids = left_pad([s.prompt + s.answer for s in samples], pad_id)  # (B, T)
    answer_len = max(len(s.answer) for s in samples)
    answer_mask = torch.zeros((len(samples), answer_len + 1), dtype=torch.bool)
    for row, sample in enumerate(samples):
        # logits at the last answer_len+1 positions predict tokens [T-answer_len, T+1); the final one predicts nothing
        answer_mask[row, answer_len - len(sample.answer): answer_len] = True
    return Batch(input_ids, attention_mask, position_ids, answer_mask, int(attention_mask.sum()))


def answer_loss(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy over the answer tokens of a batch."""
    keep = batch.answer_mask.shape[1]
    logits = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=keep,
        use_cache=False,
    ).logits  # (B, keep, V)
    targets = batch.input_ids[:, -keep + 1:]  # (B, keep-1)
    mask = batch.answer_mask[:, :-1]  # (B, keep-1)
    return torch.nn.functional.cross_entropy(logits[:, :-1][mask].float(), targets[mask])


def batches(samples: Sequence[Sample], batch_size: int, seed: int, pad_id: int) -> Iterator[Batch]:
    """Endless shuffled batches, reshuffled every epoch with a seeded generator."""
    rng = random.Random(seed)
    order = list(range(len(samples)))
    while True:
        rng.shuffle(order)
        for start in range(0, max(1, len(order) - batch_size + 1), batch_size):  # drops a short tail
            yield collate([samples[i] for i in order[start:start + batch_size]], pad_id)


@dataclass
class TrainResult:
    """What a training run did."""

    losses: list[float] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def final_loss(self) -> float | None:
        """Mean loss of the last 10 steps (None when nothing trained)."""
        tail = self.losses[-10:]
        return round(sum(tail) / len(tail), 4) if tail else None


def train(
    model: PreTrainedModel,
    samples: Sequence[Sample],
    parameters: list[torch.nn.Parameter],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    pad_id: int,
    seed: int = 0,
    warmup_steps: int = 0,
    max_grad_norm: float = 1.0,
    description: str = "train",
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train `parameters` of `model` for `steps` AdamW steps (weight decay 0) on `samples`.

    Learning rate: linear warmup over `warmup_steps`, then linear decay to zero.
    """
    result = TrainResult()
    if steps == 0 or not samples:
        return result
    torch.manual_seed(seed)
    accelerator = Accelerator()
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (steps - step) / max(1, steps - warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    stream = batches(samples, batch_size, seed, pad_id)
    start = time.perf_counter()
    progress = tqdm(range(steps), desc=description, leave=False)
    for step in progress:
        batch = next(stream)
        loss = answer_loss(model, batch)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(parameters, max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"{description}: loss became {value} at step {step}; lower the learning rate")
        result.losses.append(value)
        result.tokens += batch.tokens
        result.seconds = time.perf_counter() - start
        progress.set_postfix(loss=f"{value:.3f}", tok_s=f"{result.tokens_per_second:.0f}")
        if on_step is not None:
            on_step(step, value)
    model.eval()
    return result
