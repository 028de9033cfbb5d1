"""`sasrec`: SASRec (Kang and McAuley, 2018), compact: causal self-attention over item embeddings.

Each training sequence is cut into windows of at most `max_len` + 1 items that together hold every
target once (a user with more items than the model reads trains on all of them, not only on the
last `max_len`); each window, left-padded to its batch, predicts its next item at every position
with a softmax over the whole catalog (the output layer is the item embedding matrix, as in SASRec).
Every embedding and linear weight starts at N(0, 0.02), biases at zero and the padding row at zero,
as in the original SASRec and RecBole: PyTorch's default N(0, 1) embeddings, scaled by sqrt(hidden)
and tied to the output layer, start the softmax saturated (a first loss of about 44 on ML-100k where
a uniform guess is log 1682 = 7.4), and Adam takes many epochs to climb out. Adam, dropout, and
after every epoch the validation recall@10 over the whole catalog on a seeded sample of
`validate_users` validation users (ties between items by the tie rule). The best epoch's weights
are kept: the highest validation recall@10, and between epochs of equal recall the lower validation loss (cross-entropy of the validation
targets), so a saturated recall still tells epochs apart; training stops after `patience` epochs
without a better one. Padding is id 0; catalog row r is id r + 1.
"""

import copy
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from gti.anchors.ranking import top_rows
from gti.config import SasrecConfig
from gti.data import subsample
from gti.data import windows as item_windows
from gti.rec.metrics import rank_of

PAD = 0
INIT_STD = 0.02
"""Standard deviation of every initial embedding and linear weight (SASRec's and RecBole's `initializer_range`)."""


class _Block(nn.Module):
    """Pre-norm self-attention and a point-wise feed-forward layer, each with a residual connection."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden)
        self.attention = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.feed_forward_norm = nn.LayerNorm(hidden)
        self.feed_forward = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Dropout(dropout),
                                          nn.Linear(4 * hidden, hidden))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        h = self.attention_norm(x)  # (B, T, H)
        attended, _ = self.attention(h, h, h, attn_mask=blocked, need_weights=False)  # (B, T, H)
        x = x + self.dropout(attended)
        return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))


class SASRec(nn.Module):
    """Item and position embeddings, `layers` causal self-attention blocks, scores against the item embeddings."""

    def __init__(self, n_items: int, max_len: int, config: SasrecConfig):
        super().__init__()
        self.max_len, self.heads, self.hidden = max_len, config.heads, config.hidden
        self.items = nn.Embedding(n_items + 1, config.hidden, padding_idx=PAD)
        self.positions = nn.Embedding(max_len, config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config.hidden, config.heads, config.dropout) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.hidden)
        self.reset_parameters()

    def reset_parameters(self, std: float = INIT_STD) -> None:
        """Every embedding and linear weight (the attention's input projection too) from N(0, std), biases zero,
        the padding row zero; layer norms at their identity."""
        for module in self.modules():
            if isinstance(module, (nn.Embedding, nn.Linear)):
                nn.init.normal_(module.weight, std=std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):
                nn.init.normal_(module.in_proj_weight, std=std)
                nn.init.zeros_(module.in_proj_bias)
        with torch.no_grad():
            self.items.weight[PAD].zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) left-padded ids -> (B, T, H) states; position t has seen the items up to t."""
        length = ids.shape[1]
        real = ids != PAD  # (B, T)
        positions = torch.arange(self.max_len - length, self.max_len, device=ids.device)  # the last item is at max_len - 1
        x = self.items(ids) * math.sqrt(self.hidden) + self.positions(positions)  # (B, T, H)
        x = self.dropout(x) * real.unsqueeze(-1)
        causal = torch.ones(length, length, dtype=torch.bool, device=ids.device).tril()  # (T, T)
        itself = torch.eye(length, dtype=torch.bool, device=ids.device)
        allowed = causal & (real.unsqueeze(1) | itself)  # (B, T, T): earlier real items, and always itself
        blocked = (~allowed).repeat_interleave(self.heads, dim=0)  # (B*heads, T, T)
        for block in self.blocks:
            x = block(x, blocked) * real.unsqueeze(-1)
        return self.norm(x)

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """(..., H) states -> (..., N) scores of every catalog row (padding excluded)."""
        return states @ self.items.weight[1:].T


def _padded(sequences: Sequence[Sequence[int]], device: torch.device) -> torch.Tensor:
    """(B, T) ids, left-padded with PAD to the longest sequence."""
    length = max(len(s) for s in sequences)
    return torch.tensor([[PAD] * (length - len(s)) + list(s) for s in sequences], dtype=torch.long, device=device)


def _ids(rows: Sequence[int], max_len: int) -> list[int]:
    """Catalog rows -> model ids, the last `max_len`."""
    return [row + 1 for row in rows][-max_len:]


def windows(rows: Sequence[int], max_len: int) -> list[tuple[list[int], list[int]]]:
    """(inputs, labels) model-id windows of one training sequence (`gti.data.windows`): every item after the first is
    a label exactly once, each window reads at most `max_len` items, and the last window ends at the sequence's end."""
    return [(window[:-1], window[1:]) for window in item_windows([row + 1 for row in rows], max_len)]


def sasrec_scores(model: SASRec, histories: Sequence[Sequence[int]], batch_size: int = 256) -> Iterator[np.ndarray]:
    """(B, N) float32 scores of every catalog row after each history (catalog rows), batch by batch."""
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        for start in range(0, len(histories), batch_size):
            chunk = [_ids(h, model.max_len) for h in histories[start:start + batch_size]]
            states = model(_padded(chunk, device))[:, -1]  # (B, H): the last position has seen the whole history
            yield model.logits(states).float().cpu().numpy()


def validation_measures(model: SASRec, histories: Sequence[Sequence[int]], targets: Sequence[int],
                        k: int = 10) -> dict[str, float]:
    """Recall@k (ties by the tie rule) and mean cross-entropy of the targets after each history."""
    hits, loss, start = 0, 0.0, 0
    for scores in sasrec_scores(model, histories):
        chunk = targets[start:start + len(scores)]
        tops = top_rows(scores, k)  # (B, k)
        hits += sum(rank_of(target, list(row)) is not None for target, row in zip(chunk, tops))
        loss += float(nn.functional.cross_entropy(torch.from_numpy(scores), torch.tensor(chunk), reduction="sum"))
        start += len(scores)
    count = max(len(targets), 1)
    return {f"recall@{k}": hits / count, "loss": loss / count}


@dataclass
class SasrecFit:
    """A trained SASRec and what its training did."""

    model: SASRec
    epochs: int = 0
    """Epochs run (early stopping included)."""
    steps: int = 0
    """Optimizer steps run."""
    interactions: int = 0
    """Next-item targets processed (each training position of each epoch run)."""
    train_seconds: float = 0.0
    """Training time, validation excluded."""
    best_epoch: int = 0
    stopped_early: bool = False
    validations: list[dict] = field(default_factory=list)
    """One {"epoch", "recall@10", "loss" (validation), "train_loss"} per epoch."""


def train_sasrec(
    train: Sequence[Sequence[int]], valid: Sequence[tuple[Sequence[int], int]], n_items: int, max_len: int,
    config: SasrecConfig, device: torch.device | None = None,
) -> SasrecFit:
    """Train SASRec on catalog-row sequences, early-stopped on the validation recall@10.

    Args:
        train: per user, the training sequence as catalog rows (oldest first); a sequence of one item trains nothing.
        valid: (history rows, target row) pairs the epochs are judged on (a seeded sample of
            `config.validate_users` of them).
        n_items: catalog size N.
        max_len: the most items a sequence shows the model: the history every method of a run sees
            (`gti.config.history_items`).
        config: width, depth, heads, dropout, lr, batch size, epochs, patience, seed.
        device: where to train (default CPU).

    Returns:
        The model with the best epoch's weights, in eval mode, and the training record.
    """
    device = device or torch.device("cpu")
    torch.manual_seed(config.seed)
    model = SASRec(n_items, max_len, config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    pairs = [pair for sequence in train for pair in windows(sequence, max_len)]
    order_generator = torch.Generator().manual_seed(config.seed)
    valid = subsample(valid, config.validate_users, config.seed)
    histories, targets = [h for h, _ in valid], [t for _, t in valid]
    fit = SasrecFit(model)
    best, best_state, bad = None, None, 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        start, total, count = time.perf_counter(), 0.0, 0
        for index in torch.randperm(len(pairs), generator=order_generator).split(config.batch_size):
            batch = [pairs[i] for i in index.tolist()]
            inputs, labels = _padded([b[0] for b in batch], device), _padded([b[1] for b in batch], device)  # (B, T)
            mask = labels != PAD  # (B, T)
            logits = model.logits(model(inputs)[mask])  # (P, N): every real position
            loss = nn.functional.cross_entropy(logits, labels[mask] - 1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            fit.steps += 1
            fit.interactions += int(mask.sum())
            total, count = total + float(loss.detach()) * int(mask.sum()), count + int(mask.sum())
        fit.train_seconds += time.perf_counter() - start
        fit.epochs = epoch
        measures = validation_measures(model, histories, targets)
        fit.validations.append({"epoch": epoch, **measures, "train_loss": round(total / max(count, 1), 4)})
        score = (measures["recall@10"], -measures["loss"])
        if best is None or score > best:
            best, best_state, bad, fit.best_epoch = score, copy.deepcopy(model.state_dict()), 0, epoch
        else:
            bad += 1
            if config.patience and bad >= config.patience:
                fit.stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return fit
