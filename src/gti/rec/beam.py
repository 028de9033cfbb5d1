"""Trie-constrained beam search over semantic ids, and exhaustive scoring of a catalog.

Each batch of prompts is run through the model once (left-padded, with a KV cache);
the cache is then expanded to `beams` rows per prompt and every further level feeds
one token per beam. `generate(num_beams=...)` instead runs the prompt on every beam
row, which is most of its cost. Scores are log-probabilities normalized over the full
vocabulary, exactly what the model assigns to the SID tokens, accumulated in float32;
equal scores are ordered by the fixed hash of `gti.rec.ties`, never by token index.

Reserved beams (TIGER's epsilon, for cold-start items): given a set of item rows and a count r,
at every level the kept candidates are the best r of those whose prefix leads to one of the
items (at the last level: that are one of them), then the best of all the others up to `beams`
in all, best first by the same (score, tie key) rule. When the plain top `beams` already hold r
such candidates this is the plain search; with fewer than r such candidates all of them are kept.
A trie over part of the catalog (`SidTrie(..., rows=...)`) restricts the search to those items.
"""

import copy

import numpy as np
import torch
from transformers import DynamicCache, PreTrainedModel

from gti.device import autocast
from gti.errors import GtiError
from gti.lm.padding import left_pad
from gti.lm.vocab import level_token_ids  # noqa: F401 (re-exported by gti.rec)
from gti.progress import track
from gti.rec.logprobs import SidHead, hidden_states, input_row_classes
from gti.rec.ties import tie_key
from gti.sid.trie import SidTrie


def prefill(
    model: PreTrainedModel, prompts: list[list[int]], pad_token_id: int
) -> tuple[torch.Tensor, DynamicCache, torch.Tensor, torch.Tensor]:
    """Run a left-padded batch of prompts once through the decoder with a fresh KV cache.

    Returns:
        The (B, D) final hidden state of each prompt's last position, the cache, the (B, T)
        attention mask and the (B,) position of the next token.
    """
    input_ids, mask, positions = left_pad(prompts, pad_token_id, model.device)  # (B, T) each
    cache = DynamicCache(config=model.config)
    hidden, _ = hidden_states(model, input_ids=input_ids, attention_mask=mask, position_ids=positions,
                              cache=cache, use_cache=True)
    return hidden[:, -1], cache, mask, positions[:, -1] + 1


def top_by_score(scores: torch.Tensor, keys: torch.Tensor, k: int, marked: torch.Tensor | None = None,
         reserved: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best of each row by score, equal scores ordered by `keys` (see `gti.rec.ties`): (B, N) -> (B, k) x 2.

    With `marked` ((B, N) bool) and `reserved` > 0, the best `reserved` marked candidates of finite score
    are kept first and the other places go to the best of the rest (the reserved-beams rule above); the
    k kept come back best first.
    """
    by_key = keys.argsort(dim=1, stable=True)  # (B, N)
    ranked = by_key.gather(1, scores.gather(1, by_key).argsort(dim=1, descending=True, stable=True))  # (B, N) best first
    if marked is not None and reserved > 0:
        ranked = reserve_places(ranked, scores, marked, k, min(reserved, k))
    picked = ranked[:, :k]  # (B, k)
    return scores.gather(1, picked), picked


def reserve_places(ranked: torch.Tensor, scores: torch.Tensor, marked: torch.Tensor, k: int, reserved: int) -> torch.Tensor:
    """Reorder ranked candidates so that the first k are the reserved-beams selection, best first.

    Args:
        ranked: (B, N) candidate indices, best first.
        scores: (B, N) candidate scores (-inf: not a real candidate), by candidate index.
        marked: (B, N) bool, by candidate index: the candidates the reserved places are for.
        k: places in all.
        reserved: places for marked candidates (at most k).

    Returns:
        (B, N) `ranked` with the kept candidates first, each group in its ranked order.
    """
    live = marked.gather(1, ranked) & (scores.gather(1, ranked) > float("-inf"))  # (B, N) in rank order
    chosen = live & (live.cumsum(dim=1) <= reserved)  # (B, N) the best `reserved` marked ones
    others = ~chosen
    room = k - chosen.sum(dim=1, keepdim=True)  # (B, 1)
    keep = chosen | (others & (others.cumsum(dim=1) <= room))  # (B, N) exactly k per row
    return ranked.gather(1, (~keep).long().argsort(dim=1, stable=True))


def _classes(parent_class: torch.Tensor, row_class: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Group new beams by what the model will see: (parent's class, class of the fed code's input row).

    Args:
        parent_class: (N,) class row of each new beam's parent.
        row_class: (N,) input-row class of the code each new beam feeds.

    Returns:
        (N,) class row of each new beam, and for each of the C classes its parent class row and
        input-row class, (C,) each.
    """
    width = int(row_class.max()) + 1
    pairs, which = torch.unique(parent_class * width + row_class, return_inverse=True)  # (C,), (N,)
    return which, pairs // width, pairs % width


def _search_batch(
    model: PreTrainedModel,
    prompts: list[list[int]],
    trie: SidTrie,
    token_ids: list[torch.Tensor],
    beams: int,
    pad_token_id: int,
    head: SidHead,
    row_classes: list[torch.Tensor],
    marks: list[torch.Tensor] | None = None,
    reserved: int = 0,
) -> list[list[tuple[int, float]]]:
    """Beam search for one batch of prompts; see `constrained_beam_search`.

    Beams of one prompt that fed bit-equal input rows so far (a collapsed model's beams) are one
    *class*: the model runs one row per class, and its members share that row's float32 scores, so
    they tie exactly and the tie rule decides. Classes never span prompts. `marks` (per level, which
    children lead to a reserved item; `SidTrie.leading_to`) and `reserved` give the reserved beams.
    """
    device = model.device
    n_prompts = len(prompts)
    hidden, cache, mask, next_position = prefill(model, prompts, pad_token_id)  # (C, D), ..., (C,)

    # Beam state, width W: 1 before level 0 (the root), up to `beams` afterwards. The model state
    # (hidden, cache, mask, next_position) has one row per class; beam_class maps beams to them.
    width = 1
    scores = torch.zeros(n_prompts, 1, device=device)  # (B, W)
    nodes = torch.zeros(n_prompts, dtype=torch.long)  # (B*W,) trie nodes, on the trie's device (CPU)
    beam_class = torch.arange(n_prompts, device=device)  # (B*W,)
    prompt_offset = torch.arange(n_prompts, device=device)[:, None]  # (B, 1)
    for level in range(trie.levels):
        level_ids = token_ids[level].to(device)  # (K,)
        n_codes = len(level_ids)
        log_probs = head.log_probs(hidden, level)[beam_class]  # (B*W, K) float32 under any autocast
        children = trie.children[level][nodes].to(device)  # (B*W, K) node (item row at the last level) or -1
        log_probs = log_probs.masked_fill(children < 0, float("-inf"))
        candidates = (scores.reshape(-1, 1) + log_probs).reshape(n_prompts, width * n_codes)  # (B, W*K)
        last = level == trie.levels - 1
        keys = tie_key(children.clamp(min=0), salt=0 if last else level + 1).reshape(n_prompts, width * n_codes)
        marked = None if marks is None else (
            (children >= 0) & marks[level].to(device)[children.clamp(min=0)]).reshape(n_prompts, width * n_codes)
        scores, picked = top_by_score(candidates, keys, min(beams, width * n_codes), marked, reserved)  # (B, W'), (B, W')
        parents = (picked // n_codes + prompt_offset * width).reshape(-1)  # (B*W',) rows of the previous state
        codes = (picked % n_codes).reshape(-1)  # (B*W',)
        width = scores.shape[1]
        nodes = trie.step(level, nodes[parents.cpu()], codes.cpu()).clamp(min=0)  # (B*W',) dead beams park at 0
        if last:
            break
        row_class = row_classes[level].to(device)  # (K,)
        beam_class, class_parent, class_row = _classes(beam_class[parents], row_class[codes])
        feed = _first_code_of_class(row_class)[class_row]  # (C',) a code of each class's input row
        cache.reorder_cache(class_parent)
        mask = torch.cat([mask[class_parent], mask.new_ones(len(class_parent), 1)], dim=1)  # (C', T+level+1)
        next_position = next_position[class_parent]  # (C',)
        hidden, _ = hidden_states(
            model,
            input_ids=level_ids[feed][:, None],  # (C', 1)
            attention_mask=mask,
            position_ids=next_position[:, None],  # (C', 1)
            cache=cache,
            use_cache=True,
        )
        hidden = hidden[:, -1]  # (C', D)
        next_position = next_position + 1

    items = nodes.reshape(n_prompts, width).tolist()  # (B, W)
    totals = scores.cpu().tolist()  # (B, W)
    return [
        [(item, score) for item, score in zip(row_items, row_scores) if score != float("-inf")]
        for row_items, row_scores in zip(items, totals)
    ]


def _first_code_of_class(row_class: torch.Tensor) -> torch.Tensor:
    """(n_classes,) the lowest code of each input-row class."""
    first = torch.full((int(row_class.max()) + 1,), len(row_class), dtype=torch.long, device=row_class.device)
    return first.scatter_reduce(0, row_class, torch.arange(len(row_class), device=row_class.device), "amin")


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
    precision: str = "float32",
    reserved_rows=(),
    reserved_beams: int = 0,
) -> list[list[tuple[int, float]]]:
    """The top items for each prompt by beam search restricted to the catalog's semantic ids.

    The model's layers run at `precision` whatever autocast the caller is in (`float32` switches an
    enclosing autocast off); SID log-probabilities are float32 in every case (`SidHead`).
    In float32 a prompt's answer does not depend on the other prompts of its batch beyond float32
    rounding (tested to 1e-6 on a tiny model; 3e-5 measured on SmolLM2-135M, same lists). Under
    bfloat16 the attention kernels over left-padded rows round differently with the batch, so
    batched answers can differ from single ones (up to 0.17 in log-probability measured on
    SmolLM2-135M): choose it for speed, not for reproducible numbers.

    Args:
        model: a causal LM whose vocabulary holds the SID tokens.
        prompts: token ids of each prompt, without padding.
        trie: the catalog's valid semantic ids.
        token_ids: per level, the (K_l,) token ids of its codes (see `level_token_ids`).
        beams: beam width, also the number of items returned per prompt.
        batch_size: prompts per forward pass.
        pad_token_id: id used for left padding (masked out, so any id works).
        progress: report progress over batches (`gti.progress`: a bar on a terminal, plain lines in a log).
        precision: `float32` (default), `bfloat16` or `auto` for the model's layers (see `gti.device`).
        reserved_rows: item rows that `reserved_beams` beams are kept for at every level (the
            reserved-beams rule in the module's docstring: TIGER's epsilon for cold-start items).
        reserved_beams: how many beams (at most `beams`); 0 is the plain search.

    Returns:
        Per prompt, up to `beams` pairs (item row, total log-probability of its SID tokens), best first.
        Fewer pairs come back when the trie has fewer valid prefixes than beams.
    """
    if beams < 1 or batch_size < 1:
        raise GtiError(f"beams and batch_size must be positive, got {beams} and {batch_size}")
    if len(token_ids) != trie.levels:
        raise GtiError(f"token ids cover {len(token_ids)} levels, the trie has {trie.levels}")
    if not 0 <= reserved_beams <= beams:
        raise GtiError(f"reserved beams must be in [0, beams = {beams}], got {reserved_beams}")
    marks = trie.leading_to(reserved_rows) if reserved_beams and len(reserved_rows) else None
    head = SidHead(model, token_ids)
    row_classes = input_row_classes(model, token_ids)
    results: list[list[tuple[int, float]]] = []
    starts = range(0, len(prompts), batch_size)
    with autocast(precision, model.device):
        for start in track(starts, len(starts), "beam search", "batch", enabled=progress):
            batch = prompts[start : start + batch_size]
            results.extend(_search_batch(model, batch, trie, token_ids, beams, pad_token_id, head, row_classes,
                                         marks, reserved_beams))
    return results


@torch.no_grad()
def score_items(
    model: PreTrainedModel,
    prompt: list[int],
    codes: np.ndarray,
    token_ids: list[torch.Tensor],
    batch_size: int = 256,
    precision: str = "float32",
) -> torch.Tensor:
    """Exhaustive log-likelihood of every item's semantic id given one prompt.

    The prompt runs once; its KV cache is copied to each chunk of `batch_size` SID prefixes,
    which then run as one batch. Items whose fed SID tokens have bit-equal input rows share one
    forward row, and log-probabilities come from `SidHead` in float32, so items that the model
    cannot tell apart score exactly the same. A reference for beam search, and a ranker for small
    catalogs.

    Args:
        model: a causal LM whose vocabulary holds the SID tokens.
        prompt: token ids of the prompt, without padding.
        codes: (N, L) codes of the items.
        token_ids: per level, the (K_l,) token ids of its codes (see `level_token_ids`).
        batch_size: SID prefixes per forward pass.
        precision: the layers' precision, as in `constrained_beam_search`.

    Returns:
        (N,) float32 total log-probability of each item's SID tokens, on the CPU.
    """
    if not prompt:
        raise GtiError("scoring needs a non-empty prompt")
    codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)  # (N, L)
    if codes.ndim != 2 or codes.shape[1] != len(token_ids):
        raise GtiError(f"codes of shape {tuple(codes.shape)} do not match token ids for {len(token_ids)} levels")
    with autocast(precision, model.device):
        return _score_items(model, prompt, codes, token_ids, batch_size)


def _score_items(model, prompt, codes, token_ids, batch_size) -> torch.Tensor:
    """`score_items` after its checks, inside its autocast context."""
    device = model.device
    head = SidHead(model, token_ids)
    prompt_cache = DynamicCache(config=model.config)
    hidden, _ = hidden_states(model, input_ids=torch.tensor([prompt], device=device), cache=prompt_cache, use_cache=True)
    total = head.log_probs(hidden[:, -1], 0)[0].cpu()[codes[:, 0]]  # (N,)
    levels = codes.shape[1]
    if levels == 1:
        return total
    # Items whose fed tokens (levels 0 .. L-2) have the same input rows see the same sequence: run it once.
    row_classes = input_row_classes(model, token_ids)
    fed = torch.stack([row_classes[level][codes[:, level]] for level in range(levels - 1)], dim=1)  # (N, L-1)
    sequences, which = torch.unique(fed, dim=0, return_inverse=True)  # (S, L-1), (N,)
    first_item = torch.full((len(sequences),), len(codes), dtype=torch.long).scatter_reduce(
        0, which, torch.arange(len(codes)), "amin")  # (S,) an item of each sequence
    fed_ids = torch.stack([token_ids[level][codes[first_item, level]] for level in range(levels - 1)], dim=1)  # (S, L-1)
    log_probs = []  # per chunk, (n, L-1, K) would be ragged over levels: keep per level
    for chunk in fed_ids.to(device).split(batch_size):  # (n, L-1)
        cache = copy.deepcopy(prompt_cache)
        cache.batch_repeat_interleave(len(chunk))
        hidden, _ = hidden_states(model, input_ids=chunk, cache=cache, use_cache=True)  # (n, L-1, D)
        log_probs.append([head.log_probs(hidden[:, level], level + 1).cpu() for level in range(levels - 1)])
    for level in range(levels - 1):
        by_sequence = torch.cat([chunk[level] for chunk in log_probs])  # (S, K_{level+1})
        total = total + by_sequence[which, codes[:, level + 1]]
    return total
