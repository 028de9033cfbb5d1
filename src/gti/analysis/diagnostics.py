"""What an initialization did to the new-token embedding rows: rank, spread, geometry, neighbors.

Every function accepts torch tensors or numpy arrays and computes in float64 numpy.
The new (Semantic-ID) tokens are ordered level by level: level 0 codes `0..K_0-1`,
then level 1, and so on; `codebook_sizes[l]` is `K_l`.
"""

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from scipy import sparse, stats

from gti.errors import GtiError

ArrayLike = torch.Tensor | np.ndarray
_CHUNK_ROWS = 8192  # old rows converted to float64 at a time; bounds memory on 150k-row vocabularies
_CONSTANT_SPREAD = 1e-10  # a similarity triangle spanning less than this is constant up to rounding


def _as_array(matrix: ArrayLike | Sequence[Sequence[float]]) -> np.ndarray:
    """A float64 numpy copy (or view) of a tensor or array."""
    if isinstance(matrix, torch.Tensor):
        return matrix.detach().to("cpu", torch.float64).numpy()
    return np.asarray(matrix, dtype=np.float64)


def _as_matrix(matrix: ArrayLike, name: str) -> np.ndarray:
    """`_as_array`, checked to be two-dimensional."""
    array = _as_array(matrix)
    if array.ndim != 2:
        raise GtiError(f"{name} must be a 2-d matrix, got shape {tuple(array.shape)}")
    return array


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero (cosine 0 with everything)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)  # (n, 1)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def _centred(rows: np.ndarray) -> np.ndarray:
    """Rows minus their mean; exactly zero when what is left is rounding (rows equal up to float error).

    Without this, a collapsed level's residue of a few ulps would be scaled up to unit cosines of noise.
    """
    rows = np.asarray(rows, dtype=np.float64)
    centred = rows - rows.mean(0)
    scale = float(np.linalg.norm(rows, axis=1).max()) if rows.size else 0.0
    if not rows.size or float(np.linalg.norm(centred, axis=1).max()) <= 1e-5 * scale:
        return np.zeros_like(centred)
    return centred


def _upper_triangle(square: np.ndarray) -> np.ndarray:
    """The entries above the diagonal of a square matrix, row by row."""
    rows, cols = np.triu_indices(square.shape[0], k=1)
    return square[rows, cols]


def _take_rows(matrix: ArrayLike, rows: np.ndarray) -> np.ndarray:
    """The given rows of a tensor or array, as a float64 array."""
    if isinstance(matrix, torch.Tensor):
        return _as_array(matrix[torch.from_numpy(rows)])
    return _as_array(matrix[rows])


def _row_chunks(matrix: ArrayLike, rows: np.ndarray) -> Iterator[np.ndarray]:
    """The given rows of `matrix` as float64 arrays, a bounded number at a time."""
    for start in range(0, len(rows), _CHUNK_ROWS):
        yield _take_rows(matrix, rows[start : start + _CHUNK_ROWS])


def _as_ids(ids: Sequence[int] | ArrayLike) -> np.ndarray:
    """A flat int64 numpy array of ids from a sequence, tensor or array."""
    return np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids, dtype=np.int64).ravel()


def singular_values(matrix: ArrayLike) -> np.ndarray:
    """The singular values of `matrix`, in descending order."""
    return np.linalg.svd(_as_matrix(matrix, "matrix"), compute_uv=False)


def effective_rank(matrix: ArrayLike) -> float:
    """Effective rank (Roy & Vetterli 2007): exp of the entropy of the normalized singular values.

    The singular values are divided by their sum and read as a distribution p; the
    effective rank is `exp(-sum p log p)`. The matrix is not centered. A rank-1 matrix
    gives 1.0, n orthonormal rows give n, and a zero (or empty) matrix gives 0.0.
    """
    return _entropy_rank(singular_values(matrix))


def _entropy_rank(values: np.ndarray) -> float:
    """exp of the Shannon entropy of `values` normalized to sum 1; 0.0 when they sum to 0."""
    total = values.sum()
    if total == 0:
        return 0.0
    p = values[values > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def cosine_matrix(matrix: ArrayLike) -> np.ndarray:
    """The (n, n) cosine similarity between the rows of `matrix`; zero rows give 0."""
    unit = _unit_rows(_as_matrix(matrix, "matrix"))
    return unit @ unit.T  # (n, n)


def mean_pairwise_cosine(matrix: ArrayLike) -> float:
    """The mean cosine similarity over all pairs of distinct rows (zero rows count as 0).

    Raises:
        GtiError: the matrix has fewer than two rows.
    """
    unit = _unit_rows(_as_matrix(matrix, "matrix"))
    n = unit.shape[0]
    if n < 2:
        raise GtiError(f"mean_pairwise_cosine needs at least 2 rows, got {n}")
    # Sum of all cosines is |sum of unit rows|^2; subtract the diagonal (1 per nonzero row).
    total = float(np.sum(unit.sum(axis=0) ** 2))
    diagonal = float(np.count_nonzero(np.any(unit != 0, axis=1)))
    return (total - diagonal) / (n * (n - 1))


def _top_candidates(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's entries at or above its k-th largest score, padded with -inf to one width.

    Keeping every entry tied with the k-th score lets the caller break ties by position.

    Returns:
        (candidate scores, candidate columns), both (Q, M) with M >= k; padding has
        score -inf and column `scores.shape[1]`.
    """
    threshold = np.partition(scores, -k, axis=1)[:, -k, None]  # (Q, 1) k-th largest per row
    hit_rows, hit_cols = np.nonzero(scores >= threshold)  # row-major: columns ascend within a row
    counts = np.bincount(hit_rows, minlength=scores.shape[0])  # (Q,)
    slots = np.arange(hit_rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    candidate_scores = np.full((scores.shape[0], counts.max()), -np.inf)  # (Q, M)
    candidate_cols = np.full(candidate_scores.shape, scores.shape[1], dtype=np.int64)
    candidate_scores[hit_rows, slots] = scores[hit_rows, hit_cols]
    candidate_cols[hit_rows, slots] = hit_cols
    return candidate_scores, candidate_cols


def _nearest_rows(queries: np.ndarray, matrix: ArrayLike, rows: np.ndarray, k: int) -> np.ndarray:
    """Positions in `rows` of the k rows of `matrix` most cosine-similar to each query.

    The candidate rows are read in chunks so the whole matrix is never copied to float64;
    each chunk's best candidates are merged into the running top k. Ties go to the lower position.
    """
    if k < 1:
        raise GtiError(f"k must be at least 1, got {k}")
    unit_queries = _unit_rows(queries)  # (Q, H)
    k = min(k, len(rows))
    best_scores = np.empty((len(queries), 0))  # (Q, <=k)
    best_positions = np.empty((len(queries), 0), dtype=np.int64)
    start = 0
    for chunk in _row_chunks(matrix, rows):
        scores = unit_queries @ _unit_rows(chunk).T  # (Q, C)
        candidate_scores, candidate_cols = _top_candidates(scores, min(k, chunk.shape[0]))  # (Q, M)
        scores = np.concatenate([best_scores, candidate_scores], axis=1)  # (Q, k + M)
        positions = np.concatenate([best_positions, start + candidate_cols], axis=1)
        start += chunk.shape[0]
        order = np.lexsort((positions, -scores), axis=1)[:, :k]  # by score desc, then position
        best_scores = np.take_along_axis(scores, order, axis=1)
        best_positions = np.take_along_axis(positions, order, axis=1)
    return best_positions


def nearest_old_tokens(new_rows: ArrayLike, old_rows: ArrayLike, k: int = 5) -> np.ndarray:
    """For each new row, the indices (into `old_rows`) of its k most cosine-similar old rows.

    Returns:
        An (n_new, min(k, n_old)) int array, most similar first; ties go to the lower index.
    """
    new = _as_matrix(new_rows, "new_rows")
    if not isinstance(old_rows, torch.Tensor):
        old_rows = np.asarray(old_rows)
    if old_rows.ndim != 2 or old_rows.shape[1] != new.shape[1]:
        raise GtiError(f"old_rows must be (n_old, {new.shape[1]}), got shape {tuple(old_rows.shape)}")
    return _nearest_rows(new, old_rows, np.arange(old_rows.shape[0]), k)


def rsa(
    matrix: ArrayLike, reference_similarity: ArrayLike, permutations: int = 199, seed: int = 0
) -> dict[str, float | int | None]:
    """Representational similarity: how well the rows' cosine geometry matches a reference.

    Correlates the upper triangles (diagonal excluded) of `cosine_matrix(matrix)` and of
    `reference_similarity`. When either triangle is constant (e.g. all rows identical)
    or has fewer than two entries, the correlations are undefined and returned as None.
    The p-value is a Mantel test: the reference's rows and columns are permuted together
    `permutations` times, and p = (1 + #{permuted Pearson >= observed}) / (1 + permutations),
    one-sided (is the geometry more aligned than chance?).

    Returns:
        `{"pearson": r, "spearman": rho, "p_value": p, "permutations": n}` (None where undefined).
    """
    return rsa_blocks([(matrix, reference_similarity)], permutations, seed)


def _standardized(values: np.ndarray) -> np.ndarray | None:
    """`values` at mean 0 and unit norm; None when they are (nearly) constant."""
    if values.size < 2 or np.ptp(values) < _CONSTANT_SPREAD:
        return None
    centred = values - values.mean()
    return centred / np.linalg.norm(centred)


def _ranks(values: np.ndarray) -> np.ndarray:
    return stats.rankdata(values)


def rsa_blocks(
    blocks: Sequence[tuple[ArrayLike, ArrayLike]], permutations: int = 199, seed: int = 0
) -> dict[str, float | int | None]:
    """`rsa` over several blocks at once: each block's pairs standardized on their own, then pooled.

    For semantic ids, a block is one level: codebook vectors of different residual levels
    live in different spaces, so only pairs of tokens of one level are compared, and each
    block's similarities (ours and the reference's) are centred and scaled within the block
    before pooling. The pooled Pearson is then the pair-count-weighted mean of the blocks'
    own Pearsons: it measures alignment within levels, never a difference between the
    levels' mean cosines. Blocks whose similarities are constant (correlation undefined) are
    left out; when every block is, the result is None. Spearman is the same on within-block
    ranks. The Mantel permutations shuffle each block's reference on its own.
    """
    ours, theirs, references = [], [], []
    for index, (matrix, reference_similarity) in enumerate(blocks):
        cosine = cosine_matrix(matrix)
        reference = _as_matrix(reference_similarity, "reference_similarity")
        if reference.shape != cosine.shape:
            raise GtiError(f"reference_similarity of block {index} must be {cosine.shape}, got {reference.shape}")
        mine, other = _upper_triangle(cosine), _upper_triangle(reference)
        if _standardized(mine) is None or _standardized(other) is None:
            continue
        ours.append(mine)
        theirs.append(other)
        references.append(reference)

    def shuffled(rng: np.random.Generator) -> list[np.ndarray]:
        return [_upper_triangle(reference[np.ix_(order, order)])
                for reference in references for order in [rng.permutation(reference.shape[0])]]

    return _pooled_rsa(ours, theirs, shuffled, permutations, seed)


def _pooled_rsa(ours: list[np.ndarray], theirs: list[np.ndarray],
                shuffled: Callable[[np.random.Generator], list[np.ndarray]], permutations: int, seed: int) -> dict:
    """Pair-weighted mean of per-block correlations (each block standardized on its own), with a Mantel p-value.

    `shuffled(rng)` draws one permutation of the references, block by block, aligned with `theirs`.
    """
    if not ours:
        return {"pearson": None, "spearman": None, "p_value": None, "permutations": permutations}
    weights = [block.size for block in ours]
    total = sum(weights)

    def pooled(first: list[np.ndarray], second: list[np.ndarray]) -> float:
        return float(sum(w / total * (_standardized(a) @ _standardized(b))
                         for w, a, b in zip(weights, first, second)))

    pearson = pooled(ours, theirs)
    spearman = pooled([_ranks(a) for a in ours], [_ranks(b) for b in theirs])
    rng = np.random.default_rng(seed)
    exceed = sum(pooled(ours, shuffled(rng)) >= pearson - 1e-12 for _ in range(permutations))
    return {
        "pearson": pearson,
        "spearman": spearman,
        "p_value": (1 + exceed) / (1 + permutations),
        "permutations": permutations,
    }


def hierarchy_rsa(
    rows: ArrayLike, codes: ArrayLike, codebook_sizes: Sequence[int], permutations: int = 199, seed: int = 0
) -> dict[str, float | int | None]:
    """Does the rows' geometry follow which codes share items, across levels?

    For every pair of distinct levels (l, m), the cosines between level l's and level m's rows (each
    level's rows centred on their own mean first, so an offset a level shares says nothing) are
    correlated with the Jaccard overlap of the two tokens' item sets (`hierarchy_similarity`). Pairs
    of one level are left out: two codes of one level never share an item, so their overlap is always
    0 and would only measure level membership. Tokens used by no item are left out. Blocks are pooled
    as in `rsa_blocks` (each standardized on its own, pair-weighted mean of their Pearsons). The Mantel
    permutations shuffle tokens within each level (one permutation per level, applied to every block
    it is in), one-sided, p = (1 + #{permuted >= observed}) / (1 + permutations).

    Args:
        rows: (T, H) the new rows, level by level (T = sum(codebook_sizes)).
        codes: (N, L) semantic ids.
        codebook_sizes: K_l for each level.

    Returns:
        `{"pearson", "spearman", "p_value", "permutations", "level_pairs"}`; None where undefined
        (fewer than two levels, or constant similarities in every block).
    """
    matrix = _as_matrix(rows, "rows")
    if matrix.shape[0] != sum(codebook_sizes):
        raise GtiError(f"rows must be ({sum(codebook_sizes)}, H), one per token, got shape {tuple(matrix.shape)}")
    jaccard = hierarchy_similarity(codes, codebook_sizes)  # (T, T)
    used = np.diag(jaccard) > 0  # (T,) tokens of at least one item
    starts = np.concatenate([[0], np.cumsum(codebook_sizes)]).astype(np.int64)
    levels = [np.arange(starts[level], starts[level + 1])[used[starts[level]:starts[level + 1]]]
              for level in range(len(codebook_sizes))]
    units = []
    for members in levels:
        units.append(_unit_rows(_centred(matrix[members])))
    ours, theirs, pairs = [], [], []
    for first in range(len(levels)):
        for second in range(first + 1, len(levels)):
            mine = (units[first] @ units[second].T).ravel()
            other = jaccard[np.ix_(levels[first], levels[second])].ravel()
            if _standardized(mine) is None or _standardized(other) is None:
                continue
            ours.append(mine)
            theirs.append(other)
            pairs.append((first, second))

    def shuffled(rng: np.random.Generator) -> list[np.ndarray]:
        orders = [rng.permutation(len(members)) for members in levels]
        return [jaccard[np.ix_(levels[a][orders[a]], levels[b][orders[b]])].ravel() for a, b in pairs]

    return {**_pooled_rsa(ours, theirs, shuffled, permutations, seed), "level_pairs": [list(p) for p in pairs]}


def _check_codes(codes: ArrayLike, codebook_sizes: Sequence[int]) -> np.ndarray:
    """`codes` as an (N, L) int array, checked against the codebook sizes."""
    array = np.asarray(codes.cpu() if isinstance(codes, torch.Tensor) else codes)
    if array.ndim != 2 or array.shape[1] != len(codebook_sizes):
        raise GtiError(f"codes must be (items, {len(codebook_sizes)}), got shape {tuple(array.shape)}")
    for level, size in enumerate(codebook_sizes):
        column = array[:, level]
        if column.size and (column.min() < 0 or column.max() >= size):
            raise GtiError(f"codes at level {level} must lie in [0, {size}), got {column.min()}..{column.max()}")
    return array.astype(np.int64)


def hierarchy_similarity(codes: ArrayLike, codebook_sizes: Sequence[int]) -> np.ndarray:
    """How much of the hierarchy two new tokens share: Jaccard overlap of their item sets.

    Entry (s, t) is |items(s) & items(t)| / |items(s) | items(t)|, where items(t) is the
    set of items whose semantic id contains token t. Tokens used by no item get zero
    rows and columns (diagonal included).

    Args:
        codes: (N, L) semantic ids, one code per level.
        codebook_sizes: K_l for each of the L levels.

    Returns:
        A (T, T) float64 matrix, T = sum(codebook_sizes), tokens ordered level by level.
    """
    array = _check_codes(codes, codebook_sizes)
    n_items, n_levels = array.shape
    offsets = np.concatenate([[0], np.cumsum(codebook_sizes)[:-1]]).astype(np.int64)  # (L,)
    total = int(sum(codebook_sizes))
    token_rows = (array + offsets).ravel()  # (N*L,)
    item_cols = np.repeat(np.arange(n_items), n_levels)  # (N*L,)
    incidence = sparse.csr_matrix(
        (np.ones(token_rows.size), (token_rows, item_cols)), shape=(total, n_items)
    )  # (T, N)
    shared = (incidence @ incidence.T).toarray()  # (T, T) items holding both tokens
    counts = np.diag(shared).copy()  # (T,)
    union = counts[:, None] + counts[None, :] - shared
    return np.divide(shared, union, out=np.zeros_like(shared), where=union > 0)


def codebook_similarity(codebooks: Sequence[ArrayLike]) -> np.ndarray:
    """The cosine matrix over all quantizer codebook vectors, level after level.

    Args:
        codebooks: one (K_l, D) matrix per quantizer level (the disambiguation level has none).

    Returns:
        A (sum K_l, sum K_l) matrix in the order of the first new tokens.
    """
    matrices = [_as_matrix(codebook, f"codebook {level}") for level, codebook in enumerate(codebooks)]
    if len({matrix.shape[1] for matrix in matrices}) > 1:
        raise GtiError(f"codebooks must share one dimension, got {[m.shape for m in matrices]}")
    return cosine_matrix(np.concatenate(matrices))


def diagnose(
    embeddings: ArrayLike,
    new_token_ids: Sequence[int] | ArrayLike,
    codes: ArrayLike,
    codebook_sizes: Sequence[int],
    codebooks: Sequence[ArrayLike] | None = None,
    decode: Callable[[int], str] | None = None,
    sample: int = 8,
    k: int = 5,
    seed: int = 0,
) -> dict:
    """Every diagnostic of the new-token rows of an input embedding matrix, JSON-ready.

    Args:
        embeddings: the full (V, H) input embedding matrix.
        new_token_ids: the row of each new token, ordered level by level.
        codes: (N, L) semantic ids of the items.
        codebook_sizes: K_l for each of the L levels.
        codebooks: the quantizer's (K_l, D) codebooks for the first levels; enables `rsa_codebook`.
        decode: maps a row id to its token text; neighbors are then given as text, else as row ids.
        sample: how many new tokens get a `nearest_old` entry.
        k: neighbors per sampled token.
        seed: seed for drawing the sampled tokens.

    Returns:
        A dict with `effective_rank`, `singular_values`, `mean_pairwise_cosine`, `norm_mean`,
        `old_norm_mean`, `rsa_hierarchy` (cross-level pairs only, see `hierarchy_rsa`), `nearest_old` and, when codebooks are given,
        `rsa_codebook` (pairs of tokens of one level; rows and code vectors centred within their
        level; each level's similarities standardized before pooling, see `rsa_blocks`) and `rsa_codebook_per_level` (the same, one level at a time).
        Undefined values (correlations of constant similarities, the old norm when every row is
        new) are None.
    """
    if not isinstance(embeddings, torch.Tensor):
        embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2:
        raise GtiError(f"embeddings must be (vocab, hidden), got shape {tuple(embeddings.shape)}")
    new_ids = _as_ids(new_token_ids)
    vocab = embeddings.shape[0]
    if new_ids.size != sum(codebook_sizes):
        raise GtiError(f"expected {sum(codebook_sizes)} new token ids (sum of codebook_sizes), got {new_ids.size}")
    if np.unique(new_ids).size != new_ids.size or new_ids.min() < 0 or new_ids.max() >= vocab:
        raise GtiError(f"new_token_ids must be distinct rows in [0, {vocab})")
    old_ids = np.setdiff1d(np.arange(vocab), new_ids)  # (V - T,)
    new = _take_rows(embeddings, new_ids)  # (T, H)
    old_norm_sum = sum(float(np.linalg.norm(chunk, axis=1).sum()) for chunk in _row_chunks(embeddings, old_ids))

    spectrum = singular_values(new)
    report: dict = {
        "effective_rank": _entropy_rank(spectrum),
        "singular_values": spectrum.tolist(),
        "mean_pairwise_cosine": mean_pairwise_cosine(new),
        "norm_mean": float(np.linalg.norm(new, axis=1).mean()),
        "old_norm_mean": old_norm_sum / old_ids.size if old_ids.size else None,
    }
    if codebooks is not None:
        sizes = [len(codebook) for codebook in codebooks]
        if sizes != list(codebook_sizes[: len(sizes)]):
            raise GtiError(f"codebook sizes {sizes} do not match codebook_sizes {list(codebook_sizes)}")
        blocks, start = [], 0
        for codebook in codebooks:
            rows = new[start : start + len(codebook)]  # (K_l, H)
            # both centred within the level: an offset every row (or code vector) shares says nothing of geometry
            centred = _as_matrix(codebook, "codebook")
            blocks.append((_centred(rows), codebook_similarity([_centred(centred)])))
            start += len(codebook)
        report["rsa_codebook"] = rsa_blocks(blocks)
        report["rsa_codebook_per_level"] = [rsa(*block) for block in blocks]
    report["rsa_hierarchy"] = hierarchy_rsa(new, codes, codebook_sizes)

    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(new_ids.size, size=min(sample, new_ids.size), replace=False))
    neighbors = old_ids[_nearest_rows(new[picked], embeddings, old_ids, k)]  # (sample, k) row ids
    report["nearest_old"] = [
        {
            "token_row": int(new_ids[position]),
            "neighbors": [decode(int(row)) if decode else int(row) for row in rows],
        }
        for position, rows in zip(picked, neighbors, strict=True)
    ]
    return report
