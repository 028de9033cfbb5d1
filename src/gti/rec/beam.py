"""Trie-constrained beam search over semantic ids, and exhaustive scoring of a catalog.

Each batch of prompts is run through the model once (left-padded, with a KV cache);
the cache is then expanded to `beams` rows per prompt and every further level feeds
one token per beam. `generate(num_beams=...)` instead runs the prompt on every beam
row, which is most of its cost. Scores are log-probabilities normalized over the full
vocabulary, exactly what the model assigns to the SID tokens, accumulated in float32;
equal scores are ordered by the fixed hash of `gti.rec.ties`, never by token index.
"""

import copy

import numpy as np
import torch
from transformers import DynamicCache, PreTrainedModel

from gti.errors import GtiError
from gti.lm.padding import left_pad
from gti.lm.vocab import level_token_ids  # noqa: F401 (re-exported by gti.rec)
from gti.progress import track
from gti.rec.ties import tie_key
from gti.sid.trie import SidTrie


def prefill(
    model: PreTrainedModel, prompts: list[list[int]], pad_token_id: int
) -> tuple[object, DynamicCache, torch.Tensor, torch.Tensor]:
    """Run a left-padded batch of prompts once with a fresh KV cache.

    Returns:
        The model output (logits of the last position only), the cache, the (B, T) attention
        mask and the (B,) position of the next token.
    """
    input_ids, mask, positions = left_pad(prompts, pad_token_id, model.device)  # (B, T) each
    cache = DynamicCache(config=model.config)
    out = model(
        input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1
    )
    return out, cache, mask, positions[:, -1] + 1


def _top(scores: torch.Tensor, keys: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best of each row by score, equal scores ordered by `keys` (see `gti.rec.ties`): (B, N) -> (B, k) x 2."""
    by_key = keys.argsort(dim=1, stable=True)  # (B, N)
    order = scores.gather(1, by_key).argsort(dim=1, descending=True, stable=True)[:, :k]  # (B, k)
    picked = by_key.gather(1, order)
    return scores.gather(1, picked), picked


def _search_batch(
    model: PreTrainedModel,
    prompts: list[list[int]],
    trie: SidTrie,
    token_ids: list[torch.Tensor],
    beams: int,
    pad_token_id: int,
) -> list[list[tuple[int, float]]]:
    """Beam search for one batch of prompts; see `constrained_beam_search`."""
    device = model.device
    n_prompts = len(prompts)
    out, cache, mask, next_position = prefill(model, prompts, pad_token_id)  # next_position: (B,)

    # Beam state, width W: 1 before level 0 (the root), up to `beams` afterwards.
    width = 1
    scores = torch.zeros(n_prompts, 1, device=device)  # (B, W)
    nodes = torch.zeros(n_prompts, dtype=torch.long)  # (B*W,) trie nodes, on the trie's device (CPU)
    prompt_offset = torch.arange(n_prompts, device=device)[:, None]  # (B, 1)
    for level in range(trie.levels):
        level_ids = token_ids[level].to(device)  # (K,)
        n_codes = len(level_ids)
        log_probs = out.logits[:, -1].float().log_softmax(-1)[:, level_ids]  # (B*W, K) float32 even under autocast
        children = trie.children[level][nodes].to(device)  # (B*W, K) node (item row at the last level) or -1
        log_probs = log_probs.masked_fill(children < 0, float("-inf"))
        candidates = (scores.reshape(-1, 1) + log_probs).reshape(n_prompts, width * n_codes)  # (B, W*K)
        last = level == trie.levels - 1
        keys = tie_key(children.clamp(min=0), salt=0 if last else level + 1).reshape(n_prompts, width * n_codes)
        scores, picked = _top(candidates, keys, min(beams, width * n_codes))  # (B, W'), (B, W')
        parents = (picked // n_codes + prompt_offset * width).reshape(-1)  # (B*W',) rows of the previous state
        codes = (picked % n_codes).reshape(-1)  # (B*W',)
        width = scores.shape[1]
        nodes = trie.step(level, nodes[parents.cpu()], codes.cpu()).clamp(min=0)  # (B*W',) dead beams park at 0
        if level == trie.levels - 1:
            break
        cache.reorder_cache(parents)
        mask = torch.cat([mask[parents], mask.new_ones(len(parents), 1)], dim=1)  # (B*W', T+level+1)
        next_position = next_position[parents]  # (B*W',)
        out = model(
            input_ids=level_ids[codes][:, None],  # (B*W', 1)
            attention_mask=mask,
            position_ids=next_position[:, None],  # (B*W', 1)
            cache=cache,
            use_cache=True,
        )
        next_position = next_position + 1

    items = nodes.reshape(n_prompts, width).tolist()  # (B, W)
    totals = scores.cpu().tolist()  # (B, W)
    return [
        [(item, score) for item, score in zip(row_items, row_scores) if score != float("-inf")]
        for row_items, row_scores in zip(items, totals)
    ]


@torch.no_grad()
def constrained_beam_search(
    model: PreTrainedModel,
    prompts: list[list[int]],
    trie: SidTrie,
    token_ids: list[torch.Tensor],
    beams: int = 20,
    batch_size: int = 8,
    pad_token_id: int = 0,
    progress: bool = False,
) -> list[list[tuple[int, float]]]:
    """The top items for each prompt by beam search restricted to the catalog's semantic ids.

    Args:
        model: a causal LM whose vocabulary holds the SID tokens.
        prompts: token ids of each prompt, without padding.
        trie: the catalog's valid semantic ids.
        token_ids: per level, the (K_l,) token ids of its codes (see `level_token_ids`).
        beams: beam width, also the number of items returned per prompt.
        batch_size: prompts per forward pass.
        pad_token_id: id used for left padding (masked out, so any id works).
        progress: report progress over batches (`gti.progress`: a bar on a terminal, plain lines in a log).

    Returns:
        Per prompt, up to `beams` pairs (item row, total log-probability of its SID tokens), best first.
        Fewer pairs come back when the trie has fewer valid prefixes than beams.
    """
    if beams < 1 or batch_size < 1:
        raise GtiError(f"beams and batch_size must be positive, got {beams} and {batch_size}")
    if len(token_ids) != trie.levels:
        raise GtiError(f"token ids cover {len(token_ids)} levels, the trie has {trie.levels}")
    results: list[list[tuple[int, float]]] = []
    starts = range(0, len(prompts), batch_size)
    for start in track(starts, len(starts), "beam search", "batch", enabled=progress):
        batch = prompts[start : start + batch_size]
        results.extend(_search_batch(model, batch, trie, token_ids, beams, pad_token_id))
    return results


@torch.no_grad()
def score_items(
    model: PreTrainedModel,
    prompt: list[int],
    codes: np.ndarray,
    token_ids: list[torch.Tensor],
    batch_size: int = 256,
) -> torch.Tensor:
    """Exhaustive log-likelihood of every item's semantic id given one prompt.

    The prompt runs once; its KV cache is copied to each chunk of `batch_size` items,
    whose SIDs then run as one batch. A reference for beam search, and a ranker for
    small catalogs.

    Args:
        model: a causal LM whose vocabulary holds the SID tokens.
        prompt: token ids of the prompt, without padding.
        codes: (N, L) codes of the items.
        token_ids: per level, the (K_l,) token ids of its codes (see `level_token_ids`).
        batch_size: items per forward pass.

    Returns:
        (N,) float32 total log-probability of each item's SID tokens, on the CPU.
    """
    if not prompt:
        raise GtiError("scoring needs a non-empty prompt")
    codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)  # (N, L)
    if codes.ndim != 2 or codes.shape[1] != len(token_ids):
        raise GtiError(f"codes of shape {tuple(codes.shape)} do not match token ids for {len(token_ids)} levels")
    device = model.device
    sid_ids = torch.stack([ids[codes[:, level]] for level, ids in enumerate(token_ids)], dim=1)  # (N, L)
    sid_ids = sid_ids.to(device)
    prompt_cache = DynamicCache(config=model.config)
    out = model(input_ids=torch.tensor([prompt], device=device), cache=prompt_cache, use_cache=True, logits_to_keep=1)
    first = out.logits[0, -1].float().log_softmax(-1)  # (V,)
    totals = []
    for chunk in sid_ids.split(batch_size):  # (n, L)
        total = first[chunk[:, 0]]  # (n,)
        if chunk.shape[1] > 1:
            cache = copy.deepcopy(prompt_cache)
            cache.batch_repeat_interleave(len(chunk))
            logits = model(input_ids=chunk[:, :-1], cache=cache, use_cache=True).logits  # (n, L-1, V)
            log_probs = logits.float().log_softmax(-1).gather(-1, chunk[:, 1:, None])  # (n, L-1, 1)
            total = total + log_probs[..., 0].sum(-1)
        totals.append(total.cpu())
    return torch.cat(totals)
