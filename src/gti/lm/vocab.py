"""Extend a model's vocabulary with new tokens and initialize their embedding rows.

New rows are always addressed by token id, never as "the last rows": some models pad
their embedding matrix beyond the tokenizer's length.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gti.errors import GtiError
from gti.sid import codec


def extend_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, tokens: Sequence[str]) -> torch.Tensor:
    """Add `tokens` to the tokenizer and grow the embeddings to hold them.

    Args:
        model: the causal LM; its embedding matrix grows only when the tokenizer outgrows it.
        tokenizer: gains the tokens (as added, non-special tokens).
        tokens: the new token strings; ones already known are an error (ids would be ambiguous).

    Returns:
        (T,) token ids of `tokens`, in order.
    """
    known = [t for t in tokens if t in tokenizer.get_vocab()]
    if known:
        raise GtiError(f"tokens already in the vocabulary: {', '.join(known[:5])}; was the vocabulary extended twice?")
    tokenizer.add_tokens(list(tokens))
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return torch.tensor(tokenizer.convert_tokens_to_ids(list(tokens)), dtype=torch.long)


def embedding_matrices(model: PreTrainedModel) -> list[torch.nn.Parameter]:
    """The input embedding weight, plus the output weight when it is a separate (untied) matrix."""
    matrices = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight is not matrices[0]:
        matrices.append(output.weight)
    return matrices


@contextmanager
def only_new_rows_train(model: PreTrainedModel, new_ids: torch.Tensor) -> Iterator[list[torch.nn.Parameter]]:
    """Within the block every parameter is frozen except the embedding matrices, whose gradient is
    masked to the rows `new_ids`; yields those matrices. Afterwards the masks go and every
    parameter's `requires_grad` is what it was.

    With weight decay 0 (the training loop's AdamW), an old row's update is then exactly zero.
    """
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    model.requires_grad_(False)
    matrices = embedding_matrices(model)
    row_mask = torch.zeros(matrices[0].shape[0], 1, dtype=matrices[0].dtype)
    row_mask[new_ids] = 1.0
    handles = []
    for weight in matrices:
        weight.requires_grad_(True)
        handles.append(weight.register_hook(lambda grad: grad * row_mask.to(grad.device)))
    try:
        yield matrices
    finally:
        for handle in handles:
            handle.remove()
        for name, parameter in model.named_parameters():
            if name in flags:
                parameter.requires_grad_(flags[name])


def _old_rows(weight: torch.Tensor, new_ids: torch.Tensor, n_old: int) -> torch.Tensor:
    """Rows of the original vocabulary (ids below `n_old` that are not new)."""
    keep = torch.ones(weight.shape[0], dtype=torch.bool)
    keep[n_old:] = False
    keep[new_ids] = False
    return weight[keep].float()


def _mean_rows(old: torch.Tensor, count: int, generator: torch.Generator, noise: bool) -> torch.Tensor:
    mean = old.mean(0)  # (H,)
    rows = mean.expand(count, -1).clone()  # (T, H)
    if noise:
        # the transformers default: a sample from N(mean, 1e-9 * covariance of the old rows)
        centered = old - mean
        covariance = centered.T @ centered / old.shape[0]  # (H, H)
        factor = torch.linalg.cholesky(1e-9 * covariance + 1e-12 * torch.eye(old.shape[1]))
        rows += torch.randn(count, old.shape[1], generator=generator) @ factor.T
    return rows


def _text_rows(
    old_weight: torch.Tensor, token_texts: list[list[list[int]]], fallback: torch.Tensor
) -> torch.Tensor:
    """Row t = mean over the texts of token t of the mean embedding of each text's tokens."""
    rows = fallback.clone()
    for index, texts in enumerate(token_texts):
        vectors = [old_weight[ids].float().mean(0) for ids in texts if ids]
        if vectors:
            rows[index] = torch.stack(vectors).mean(0)
    return rows


def initialize(
    model: PreTrainedModel,
    new_ids: torch.Tensor,
    method: str,
    n_old: int,
    seed: int = 0,
    token_texts: list[list[list[int]]] | None = None,
) -> None:
    """Set the new rows of every embedding matrix in place.

    Args:
        model: the extended model.
        new_ids: (T,) ids of the new tokens.
        method: `mean` (every row the old rows' mean), `mean-hf` (the transformers default:
            the mean plus a tiny sample from the old rows' covariance), `random` (Gaussian
            with the old rows' per-dimension mean and std), `text` (the mean old-token
            embedding of the texts each new token stands for).
        n_old: size of the original vocabulary (rows at or beyond it are not "old").
        seed: seed of the random draws.
        token_texts: for `text`: per new token, the token ids of each text it stands for.
    """
    generator = torch.Generator().manual_seed(seed)
    if method == "text" and token_texts is None:
        raise GtiError("init.method 'text' needs the item texts of each new token")
    with torch.no_grad():
        for weight in embedding_matrices(model):
            old = _old_rows(weight, new_ids, n_old)  # (n_old, H)
            if method in ("mean", "mean-hf"):
                rows = _mean_rows(old, len(new_ids), generator, noise=method == "mean-hf")
            elif method == "random":
                rows = old.mean(0) + old.std(0) * torch.randn(len(new_ids), old.shape[1], generator=generator)
            elif method == "text":
                rows = _text_rows(weight, token_texts, _mean_rows(old, len(new_ids), generator, noise=False))
            else:
                raise GtiError(f"init.method: unknown initialization {method!r}")
            weight[new_ids] = rows.to(weight.dtype)


def token_item_texts(codes: np.ndarray, item_text_ids: list[list[int]], codebook_sizes: list[int]) -> list[list[list[int]]]:
    """For each new token (level l, code c), in token order, the text ids of the items with code c at level l."""
    per_token: list[list[list[int]]] = [[] for _ in range(sum(codebook_sizes))]
    offsets = np.concatenate([[0], np.cumsum(codebook_sizes)[:-1]])
    for row, ids in enumerate(item_text_ids):
        for level, code in enumerate(codes[row]):
            per_token[offsets[level] + code].append(ids)
    return per_token


def level_token_ids(tokenizer: PreTrainedTokenizerBase, codebook_sizes: list[int]) -> list[torch.Tensor]:
    """The token id of every code, level by level.

    Args:
        tokenizer: a tokenizer already extended with the SID tokens.
        codebook_sizes: number of codes per level.

    Returns:
        One (K_l,) long tensor per level; entry c is the id of token `codec.token(l, c)`.

    Raises:
        GtiError: a SID token is missing from the tokenizer.
    """
    vocab = tokenizer.get_vocab()
    ids = []
    for level, size in enumerate(codebook_sizes):
        tokens = [codec.token(level, code) for code in range(size)]
        missing = [token for token in tokens if token not in vocab]
        if missing:
            raise GtiError(
                f"the tokenizer lacks {len(missing)} semantic id tokens (e.g. {missing[0]}): "
                "extend the vocabulary first"
            )
        ids.append(torch.tensor([vocab[token] for token in tokens], dtype=torch.long))
    return ids
