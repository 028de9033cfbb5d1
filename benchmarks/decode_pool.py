"""Candidate-pool scoring for `decode.py`: full sequences against `gti.rec.score_candidates` (a shared prompt cache)."""

import numpy as np
import torch

import gti.rec
from timing import interleaved, ratio, spread

POOL_CANDIDATES = 100
POOL_BATCH = 20
POOL_TARGET = 1.0  # the shared-cache scorer at least as fast as full sequences
POOL_SEED = 0
POOL_TOLERANCE = 1e-3  # largest score gap (nats) for the two pool scorers to count as agreeing


@torch.no_grad()
def naive_scores(model, prompt: list[int], sid_ids: torch.Tensor) -> torch.Tensor:
    """(C,) SID log-likelihoods from uncached full-sequence passes over prompt + SID, POOL_BATCH at a time.

    Args:
        model: the causal LM.
        prompt: token ids of the prompt.
        sid_ids: (C, L) SID token ids of the candidates.
    """
    levels = sid_ids.shape[1]
    totals = []
    for chunk in sid_ids.split(POOL_BATCH):  # (n, L)
        sequences = torch.cat([torch.tensor(prompt).expand(len(chunk), -1), chunk], dim=1)  # (n, T+L)
        logits = model(input_ids=sequences, logits_to_keep=levels + 1).logits[:, :-1]  # (n, L, V) at T-1 .. T+L-2
        log_probs = logits.float().log_softmax(-1).gather(-1, chunk[..., None])  # (n, L, 1)
        totals.append(log_probs[..., 0].sum(-1))
    return torch.cat(totals)


def pool_speed(model, prompt: list[int], codes: np.ndarray, token_ids: list[torch.Tensor], repeats: int,
               candidates: int = POOL_CANDIDATES) -> dict:
    """Candidates scored per second, naive against `score_candidates`, and the largest gap of their scores."""
    rows = np.random.default_rng(POOL_SEED).choice(len(codes), size=candidates, replace=False).tolist()
    picked = torch.as_tensor(codes[rows])  # (C, L)
    sid_ids = torch.stack([ids[picked[:, level]] for level, ids in enumerate(token_ids)], dim=1)  # (C, L)
    scores = {}

    def scorer(name: str, run):
        def call() -> None:
            scores[name] = run()
        return call

    seconds = interleaved({
        "ours": scorer("ours", lambda: gti.rec.score_candidates(model, prompt, rows, codes, token_ids)),
        "naive": scorer("naive", lambda: naive_scores(model, prompt, sid_ids)),
    }, repeats)
    gap = float((scores["ours"] - scores["naive"]).abs().max())
    speedup = ratio(seconds["naive"], seconds["ours"], POOL_TARGET)
    return {
        "pool_setting": {
            "prompt_tokens": len(prompt),
            "candidates": candidates,
            "naive_batch_size": POOL_BATCH,
            "candidate_seed": POOL_SEED,
            "repeats": repeats,
            "order": "ours, naive alternating after one warm-up of each",
            "tolerance": POOL_TOLERANCE,
        },
        "pool_naive_candidates_per_s": candidates / float(np.median(seconds["naive"])),
        "pool_ours_candidates_per_s": candidates / float(np.median(seconds["ours"])),
        "pool_speedup_vs_naive": speedup,
        "pool_max_abs_diff": gap,
        "pool_scores_match": gap <= POOL_TOLERANCE,
        "pool_seconds": {name: spread(values) for name, values in seconds.items()},
    }
