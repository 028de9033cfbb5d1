"""What a recommender outputs beyond accuracy: catalog coverage, popularity bias, invalid semantic ids."""

import numpy as np
import torch
from transformers import DynamicCache, PreTrainedModel

from gti.device import autocast
from gti.errors import GtiError
from gti.lm.padding import left_pad
from gti.sid.trie import SidTrie


def _top_k_rows(ranked_rows: list[list[int]], n_items: int, k: int) -> np.ndarray:
    """All users' top-k item rows in one flat array, checked against the catalog size."""
    if k < 1:
        raise GtiError(f"k must be positive, got {k}")
    top = np.array([row for rows in ranked_rows for row in rows[:k]], dtype=np.int64)
    if len(top) == 0:
        raise GtiError("no recommendations to measure: every ranked list is empty")
    if top.min() < 0 or top.max() >= n_items:
        raise GtiError(f"recommended item rows must lie in [0, {n_items}), got {top.min()}..{top.max()}")
    return top


def catalog_coverage(ranked_rows: list[list[int]], n_items: int, k: int = 10) -> float:
    """The fraction of the catalog that appears in at least one user's top k.

    Args:
        ranked_rows: per user, recommended item rows, best first.
        n_items: catalog size.
        k: cut-off.

    Returns:
        Distinct recommended items / n_items.
    """
    return len(np.unique(_top_k_rows(ranked_rows, n_items, k))) / n_items


def popularity_bias(ranked_rows: list[list[int]], item_counts: np.ndarray, k: int = 10) -> dict[str, float]:
    """How popular the recommended items are compared with the catalog as a whole.

    Args:
        ranked_rows: per user, recommended item rows, best first.
        item_counts: (N,) training interactions of each item.
        k: cut-off.

    Returns:
        {"recommended_mean_count": mean count over all recommended top-k slots (an item
        counts once per user recommending it), "catalog_mean_count": mean count over
        all items, "ratio": their quotient (above 1: recommendations favour popular items)}.
    """
    item_counts = np.asarray(item_counts, dtype=np.float64)
    if item_counts.ndim != 1 or item_counts.sum() <= 0:
        raise GtiError("item counts must be a vector of interaction counts with at least one interaction")
    recommended = float(item_counts[_top_k_rows(ranked_rows, len(item_counts), k)].mean())
    catalog = float(item_counts.mean())
    return {"recommended_mean_count": recommended, "catalog_mean_count": catalog, "ratio": recommended / catalog}


def _greedy_validity(
    model: PreTrainedModel,
    prompts: list[list[int]],
    trie: SidTrie,
    token_ids: list[torch.Tensor],
    pad_token_id: int,
) -> torch.Tensor:
    """Greedy-decode L tokens from one batch of prompts; (B,) bool, True where they spell a catalog SID.

    Greedy decoding reads the model's own logits (what `generate` would write), not gti's float32 SID
    scores: this measures the model as a plain transformers user would run it.
    """
    input_ids, mask, positions = left_pad(prompts, pad_token_id, model.device)  # (B, T) each
    cache = DynamicCache(config=model.config)
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                logits_to_keep=1)
    next_position = positions[:, -1:] + 1  # (B, 1)
    valid = torch.ones(len(prompts), dtype=torch.bool)  # (B,)
    nodes = torch.zeros(len(prompts), dtype=torch.long)  # (B,) trie nodes, on the trie's device (CPU)
    for level in range(trie.levels):
        tokens = out.logits[:, -1].float().argmax(-1)  # (B,)
        code_of = torch.full((out.logits.shape[-1],), -1, dtype=torch.long)  # (V,) code of each token, -1: none
        code_of[token_ids[level]] = torch.arange(len(token_ids[level]))
        codes = code_of[tokens.cpu()]  # (B,)
        valid &= codes >= 0
        nodes = trie.step(level, nodes, codes.clamp(min=0))  # (B,)
        valid &= nodes >= 0
        nodes = nodes.clamp(min=0)  # invalid generations park at node 0; they stay invalid
        if level == trie.levels - 1:
            break
        mask = torch.cat([mask, mask.new_ones(len(prompts), 1)], dim=1)  # (B, T+level+1)
        out = model(
            input_ids=tokens[:, None], attention_mask=mask, position_ids=next_position, cache=cache, use_cache=True
        )
        next_position = next_position + 1
    return valid


@torch.no_grad()
def invalid_sid_rate(
    model: PreTrainedModel,
    prompts: list[list[int]],
    trie: SidTrie,
    token_ids: list[torch.Tensor],
    pad_token_id: int = 0,
    batch_size: int = 8,
    precision: str = "float32",
) -> float:
    """The share of prompts whose unconstrained greedy continuation is not a catalog semantic id.

    From each prompt L = `trie.levels` tokens are decoded greedily over the whole vocabulary.
    A generation is valid only when, at every level l, token l is one of level l's SID tokens
    and the codes so far form a prefix present in the trie; the last level then names an item.

    Args:
        model: a causal LM whose vocabulary holds the SID tokens.
        prompts: token ids of each prompt, without padding.
        trie: the catalog's valid semantic ids.
        token_ids: per level, the (K_l,) token ids of its codes (see `level_token_ids`).
        pad_token_id: id used for left padding (masked out, so any id works).
        batch_size: prompts per forward pass.
        precision: the model's precision here (as in `gti.rec.beam.constrained_beam_search`).

    Returns:
        Invalid generations / prompts.
    """
    if not prompts or batch_size < 1:
        raise GtiError(f"need prompts and a positive batch_size, got {len(prompts)} prompts and {batch_size}")
    if len(token_ids) != trie.levels:
        raise GtiError(f"token ids cover {len(token_ids)} levels, the trie has {trie.levels}")
    with autocast(precision, model.device):
        valid = torch.cat(
            [
                _greedy_validity(model, prompts[start : start + batch_size], trie, token_ids, pad_token_id)
                for start in range(0, len(prompts), batch_size)
            ]
        )
    return int((~valid).sum()) / len(prompts)
