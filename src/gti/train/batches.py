"""Batches of (prompt, answer) samples: left-padded collation, the answer-only loss, and the batch plan.

Batches are left-padded so every answer ends at the last position, which lets the model
compute logits for the last few positions only (`logits_to_keep`). A step's batch is a pure
function of (seed, step), so a resumed run sees exactly the batches an uninterrupted run would.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from gti.lm.padding import left_pad
from gti.lm.prompts import Sample

LENGTH_GROUP_BATCHES = 64  # length grouping sorts windows of this many batches


@dataclass
class Batch:
    """A left-padded batch (answers occupy the last positions of each row), or a packed one (`attention_mask` None:
    several samples per row, each attending only to itself, `answer_mask` over every position)."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor | None  # (B, T); None for a packed batch
    position_ids: torch.Tensor  # (B, T)
    answer_mask: torch.Tensor  # (B, A+1): which of the last A+1 next-token targets are answer tokens; packed: (B, T)
    tokens: int

    def to(self, device: torch.device) -> "Batch":
        mask = None if self.attention_mask is None else self.attention_mask.to(device)
        return Batch(self.input_ids.to(device), mask, self.position_ids.to(device), self.answer_mask.to(device),
                     self.tokens)


def pack_rows(lengths: Sequence[int]) -> list[list[int]]:
    """Sample indices per row: first-fit decreasing into rows as long as the longest sample."""
    width = max(lengths)
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        for row, left in enumerate(room):
            if lengths[index] <= left:
                rows[row].append(index)
                room[row] -= lengths[index]
                break
        else:
            rows.append([index])
            room.append(width - lengths[index])
    return rows


def collate_packed(samples: Sequence[Sample], pad_id: int) -> Batch:
    """Samples packed into as few rows as hold the longest (`pack_rows`), no attention mask: each sample's position
    ids restart at 0, from which the model builds a block-diagonal causal mask (transformers' packed-sequence path:
    sdpa and eager attention), so every sample sees only itself. A row's padding comes first, as a segment of its own.
    The loss over the answers equals `collate`'s."""
    sequences = [s.prompt + s.answer for s in samples]
    rows = pack_rows([len(sequence) for sequence in sequences])
    width = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    answers = torch.zeros((len(rows), width), dtype=torch.bool)
    for row, members in enumerate(rows):
        used = sum(len(sequences[i]) for i in members)
        start = width - used
        positions[row, :start] = torch.arange(start)
        for i in members:
            length = len(sequences[i])
            input_ids[row, start:start + length] = torch.tensor(sequences[i])
            positions[row, start:start + length] = torch.arange(length)
            answers[row, start + len(samples[i].prompt):start + length] = True
            start += length
    return Batch(input_ids, None, positions, answers, sum(len(sequence) for sequence in sequences))


def collate(samples: Sequence[Sample], pad_id: int) -> Batch:
    """Left-pad prompt+answer sequences and mark the answer targets."""
    input_ids, attention_mask, position_ids = left_pad([s.prompt + s.answer for s in samples], pad_id)  # (B, T)
    answer_len = max(len(s.answer) for s in samples)
    answer_mask = torch.zeros((len(samples), answer_len + 1), dtype=torch.bool)
    for row, sample in enumerate(samples):
        # logits at the last answer_len+1 positions predict tokens [T-answer_len, T+1); the final one predicts nothing
        answer_mask[row, answer_len - len(sample.answer): answer_len] = True
    return Batch(input_ids, attention_mask, position_ids, answer_mask, int(attention_mask.sum()))


def answer_loss(model: PreTrainedModel, batch: Batch, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over the answer tokens of a batch (left-padded or packed): their `mean` or their `sum`."""
    if batch.attention_mask is None:  # packed: answers anywhere in a row, logits at every position
        logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits  # (B, T, V)
        mask = batch.answer_mask[:, 1:]  # (B, T-1): token t+1 is an answer token
        return torch.nn.functional.cross_entropy(logits[:, :-1][mask].float(), batch.input_ids[:, 1:][mask],
                                                 reduction=reduction)
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
    return torch.nn.functional.cross_entropy(logits[:, :-1][mask].float(), targets[mask], reduction=reduction)


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """One epoch's batches of sample indices: shuffled with (seed, epoch); a short tail is dropped.

    With `group_by_length`, windows of LENGTH_GROUP_BATCHES batches are sorted by length
    before cutting, then the batches are shuffled again, so batches hold similar lengths
    (little padding) and still come in random order.
    """
    rng = random.Random(f"{seed}/{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        window = batch_size * LENGTH_GROUP_BATCHES
        order = [i for start in range(0, len(order), window) for i in sorted(order[start:start + window], key=lengths.__getitem__)]
    batches = [order[start:start + batch_size] for start in range(0, max(1, len(order) - batch_size + 1), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


class BatchPlan:
    """The batch of any step: a pure function of (seed, step), epochs computed on demand."""

    def __init__(self, samples: Sequence[Sample], batch_size: int, seed: int, group_by_length: bool):
        self.lengths = [len(s.prompt) + len(s.answer) for s in samples]
        self.batch_size, self.seed, self.group_by_length = batch_size, seed, group_by_length
        self.epochs: dict[int, list[list[int]]] = {}
        self.per_epoch = len(self._epoch(0))

    def _epoch(self, epoch: int) -> list[list[int]]:
        if epoch not in self.epochs:
            self.epochs = {epoch: epoch_batches(self.lengths, self.batch_size, self.seed, epoch, self.group_by_length)}
        return self.epochs[epoch]

    def indices(self, step: int) -> list[int]:
        """Sample indices of `step`'s batch, sorted by length (micro-batches then pad little)."""
        rows = self._epoch(step // self.per_epoch)[step % self.per_epoch]
        return sorted(rows, key=self.lengths.__getitem__)


def planned_tokens(samples: Sequence[Sample], steps: int, batch_size: int, seed: int, group_by_length: bool) -> int:
    """The tokens (prompt + answer, padding excluded) a run of `steps` steps processes, without running it.

    Batches are a pure function of (seed, step), so this is exactly the loop's `TrainResult.tokens`.
    """
    if steps == 0 or not samples:
        return 0
    plan = BatchPlan(samples, batch_size, seed, group_by_length)
    return sum(plan.lengths[i] for step in range(steps) for i in plan.indices(step))
