"""Residual k-means (RQ-KMeans), its balanced variant, and the disambiguation level that makes every SID unique."""

import math

import numpy as np
import torch

from gti.errors import GtiError

BALANCE_SLACK = 1.1
BALANCE_ROUNDS = 5


def squared_distances(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances: (N, D), (K, D) -> (N, K), by one matrix multiply."""
    d2 = (x * x).sum(1, keepdim=True) - 2.0 * x @ centroids.T + (centroids * centroids).sum(1)
    return d2.clamp_(min=0.0)


def _kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each next centroid drawn with probability proportional to D(x)^2."""
    norms = (x * x).sum(1)  # (N,)

    def distances_to(index: int) -> torch.Tensor:
        return (norms - 2.0 * (x @ x[index]) + norms[index]).clamp_(min=0.0)  # (N,)

    chosen = [int(torch.randint(x.shape[0], (1,), generator=generator))]
    closest = distances_to(chosen[0])  # (N,) squared distance to the nearest chosen centroid
    for _ in range(1, k):
        weights = closest if closest.sum() > 0 else torch.ones_like(closest)
        index = int(torch.multinomial(weights, 1, generator=generator))
        chosen.append(index)
        closest = torch.minimum(closest, distances_to(index))
    return x[chosen].clone()  # (K, D)


def kmeans(x: torch.Tensor, k: int, generator: torch.Generator, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from a k-means++ start.

    An empty cluster is re-seeded at the point farthest from its own centroid (the
    farthest points go to the empty clusters in order). Stops early once no centroid moves.

    Args:
        x: (N, D) float32 points.
        k: number of clusters, at most N.
        generator: seeded random generator for the k-means++ draws.
        iters: maximum number of Lloyd iterations.

    Returns:
        (K, D) centroids and (N,) int64 assignment of each point to its nearest centroid.
    """
    centroids = _kmeans_plus_plus(x, k, generator)
    for _ in range(iters):
        distances, assignment = squared_distances(x, centroids).min(1)  # (N,), (N,)
        counts = torch.bincount(assignment, minlength=k)  # (K,)
        sums = torch.zeros_like(centroids).index_add_(0, assignment, x)  # (K, D)
        updated = sums / counts.clamp(min=1).unsqueeze(1).to(x.dtype)
        empty = counts == 0
        if empty.any():
            farthest = distances.topk(int(empty.sum())).indices
            updated[empty] = x[farthest]
        if torch.equal(updated, centroids):
            break
        centroids = updated
    return centroids, squared_distances(x, centroids).argmin(1)


def balanced_assign(distances: torch.Tensor, capacity: int) -> torch.Tensor:
    """Assign points to codes, at most `capacity` points per code, nearest code first.

    In rounds: every unplaced point proposes to its nearest code with room left; a code
    with more proposers than room keeps those with the largest margin (distance to their
    second-nearest open code minus distance to the nearest: what they would lose by
    moving), ties broken by row, and is then full. Each round places every point or fills
    a code, so there are at most K + 1 rounds, and later rounds hold few points.

    Args:
        distances: (N, K) squared distances from points to codes.
        capacity: most points per code; capacity * K must be at least N.

    Returns:
        (N,) int64 code of each point.
    """
    n_points, n_codes = distances.shape
    if capacity * n_codes < n_points:
        raise GtiError(f"{n_codes} codes of capacity {capacity} cannot hold {n_points} points; raise the capacity")
    assignment = torch.full((n_points,), -1, dtype=torch.long)
    room = torch.full((n_codes,), capacity, dtype=torch.long)
    pending = torch.arange(n_points)
    while len(pending):
        open_distances = distances[pending].masked_fill((room == 0).unsqueeze(0), math.inf)  # (P, K)
        if n_codes > 1:
            nearest, ranked = open_distances.topk(2, dim=1, largest=False)  # (P, 2), (P, 2)
            margin = nearest[:, 1] - nearest[:, 0]  # inf when only one code is open
        else:
            ranked, margin = torch.zeros((len(pending), 1), dtype=torch.long), torch.zeros(len(pending))
        best = ranked[:, 0]  # (P,)
        # proposers grouped by code, largest margin first, row order on ties (both sorts stable)
        by_margin = torch.sort(margin, descending=True, stable=True).indices
        order = by_margin[torch.sort(best[by_margin], stable=True).indices]  # (P,)
        code = best[order]
        counts = torch.bincount(code, minlength=n_codes)  # (K,)
        rank = torch.arange(len(order)) - (counts.cumsum(0) - counts)[code]  # position within its code's queue
        accepted = rank < room[code]
        assignment[pending[order[accepted]]] = code[accepted]
        room -= torch.bincount(code[accepted], minlength=n_codes)
        pending = pending[order[~accepted]].sort().values
    return assignment


def balanced_kmeans(
    x: torch.Tensor, k: int, generator: torch.Generator, iters: int, capacity: int, rounds: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means whose clusters hold at most `capacity` points each.

    Lloyd's k-means first (`kmeans`), then up to `rounds` alternations of a capped
    assignment (`balanced_assign`) and moving each centroid to the mean of its points
    (a code left without points keeps its centroid); stops early once no centroid moves.

    Returns:
        (K, D) centroids and (N,) int64 capped assignment; each non-empty code's centroid
        is the mean of its points.
    """
    centroids, _ = kmeans(x, k, generator, iters)
    for _ in range(rounds):
        assignment = balanced_assign(squared_distances(x, centroids), capacity)
        counts = torch.bincount(assignment, minlength=k)  # (K,)
        sums = torch.zeros_like(centroids).index_add_(0, assignment, x)  # (K, D)
        updated = torch.where(
            (counts > 0).unsqueeze(1), sums / counts.clamp(min=1).unsqueeze(1).to(x.dtype), centroids
        )
        if torch.equal(updated, centroids):
            break
        centroids = updated
    return centroids, assignment


def code_capacity(n_items: int, codes: int, slack: float) -> int:
    """Most items per code for a balanced quantizer: ceil(N / K * slack)."""
    return math.ceil(round(n_items * slack / codes, 9))  # round: 10 * 1.1 must give 11, not 12


def rq_kmeans(
    x: np.ndarray,
    levels: int,
    codes: int,
    seed: int = 0,
    iters: int = 30,
    slack: float | None = None,
    balance_rounds: int = BALANCE_ROUNDS,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Residual k-means: level 0 clusters x, level l clusters what earlier levels left over.

    With `slack`, every level is balanced (`balanced_kmeans`): no code of a level holds
    more than `code_capacity(N, K, slack)` items.

    Args:
        x: (N, D) item embeddings.
        levels: number of quantizer levels L.
        codes: codebook size per level K.
        seed: seed of the k-means++ draws; equal seeds give equal results.
        iters: maximum Lloyd iterations per level.
        slack: None for plain k-means, else the capacity factor (at least 1).
        balance_rounds: capped assignment / centroid update rounds per level (with slack).

    Returns:
        (N, L) int64 codes and L codebooks of shape (K, D) float32.

    Raises:
        GtiError: levels or codes below 1, fewer items than codes, or slack below 1.
    """
    if levels < 1 or codes < 1:
        raise GtiError(f"levels and codes must be at least 1, got levels={levels}, codes={codes}")
    if slack is not None and not slack >= 1.0:
        raise GtiError(f"the balance slack must be at least 1.0 (a capacity of N/K items per code), got {slack}")
    if slack is not None and balance_rounds < 1:
        raise GtiError(f"balance_rounds must be at least 1, got {balance_rounds}")
    n_items = len(x)
    if n_items < codes:
        raise GtiError(
            f"the catalog has {n_items} items but the codebook asks for {codes} codes; use fewer codes (--codes)"
        )
    generator = torch.Generator().manual_seed(seed)
    residual = torch.as_tensor(np.asarray(x), dtype=torch.float32).clone()  # (N, D)
    all_codes, codebooks = [], []
    for _ in range(levels):
        if slack is None:
            centroids, assignment = kmeans(residual, codes, generator, iters)
        else:
            capacity = code_capacity(n_items, codes, slack)
            centroids, assignment = balanced_kmeans(residual, codes, generator, iters, capacity, balance_rounds)
        residual -= centroids[assignment]
        all_codes.append(assignment)
        codebooks.append(centroids.numpy())
    return torch.stack(all_codes, 1).numpy(), codebooks  # (N, L)


def disambiguate(codes: np.ndarray) -> np.ndarray:
    """Append a last level: each item's index among the items sharing its code tuple.

    Counters follow row order, so the first item of a group gets 0 (as does every
    item with a unique tuple) and every row of the result is unique.

    Args:
        codes: (N, L) integer codes.

    Returns:
        (N, L+1) int64 codes.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2 or len(codes) == 0:
        raise GtiError(f"disambiguate needs a non-empty (items, levels) code matrix, got shape {codes.shape}")
    n_items = len(codes)
    _, group = np.unique(codes, axis=0, return_inverse=True)
    group = group.reshape(-1)  # (N,) group id of each row
    order = np.argsort(group, kind="stable")  # rows grouped, row order kept within a group
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    first_of_group = np.repeat(starts, np.diff(np.r_[starts, n_items]))
    counter = np.empty(n_items, dtype=np.int64)
    counter[order] = np.arange(n_items) - first_of_group
    return np.concatenate([codes, counter[:, None]], axis=1)  # (N, L+1)


def reassign_collisions(codes: np.ndarray, residual: np.ndarray, last_codebook: np.ndarray) -> np.ndarray:
    """Move colliding items to a free code on the last level, within their own prefix.

    In every group of items sharing a code tuple, the first item (row order) keeps its
    codes; each later one takes the last-level code nearest to its residual (the vector
    the last level quantized) whose tuple no item holds yet. An item whose prefix has no
    free code left keeps its codes and still collides (for `disambiguate` to separate).

    Args:
        codes: (N, L) integer codes.
        residual: (N, d) residual of each item before the last level.
        last_codebook: (K, d) centroids of the last level.

    Returns:
        (N, L) int64 codes.
    """
    codes = np.array(codes, dtype=np.int64)
    _, first_rows = np.unique(codes, axis=0, return_index=True)
    taken = {tuple(row) for row in codes[first_rows]}
    movers = np.setdiff1d(np.arange(len(codes)), first_rows)  # later members of colliding groups, row order
    if len(movers) == 0:
        return codes
    distances = squared_distances(
        torch.as_tensor(residual[movers], dtype=torch.float32), torch.as_tensor(last_codebook, dtype=torch.float32)
    )  # (M, K)
    preference = distances.argsort(1).numpy()  # (M, K) nearest code first
    for row, ranked in zip(movers, preference):
        prefix = tuple(codes[row, :-1])
        free = next((int(code) for code in ranked if prefix + (int(code),) not in taken), None)
        if free is not None:
            codes[row, -1] = free
            taken.add(prefix + (free,))
    return codes
