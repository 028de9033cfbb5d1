"""Diagnostics on constructed matrices whose answers are known in closed form."""

import json
import math

import numpy as np
import pytest
import torch

from gti.analysis import diagnostics
from gti.analysis.diagnostics import (
    codebook_similarity,
    diagnose,
    effective_rank,
    hierarchy_rsa,
    hierarchy_similarity,
    mean_pairwise_cosine,
    nearest_old_tokens,
    rsa,
    singular_values,
)
from gti.errors import GtiError


def test_singular_values_descending_and_tensor_input():
    matrix = np.diag([1.0, 3.0, 2.0])
    np.testing.assert_allclose(singular_values(matrix), [3.0, 2.0, 1.0])
    np.testing.assert_allclose(singular_values(torch.tensor(matrix, dtype=torch.bfloat16)), [3.0, 2.0, 1.0])


def test_effective_rank_of_rank_one_matrix_is_one():
    rng = np.random.default_rng(0)
    matrix = np.outer(rng.normal(size=30), rng.normal(size=12))
    assert effective_rank(matrix) == pytest.approx(1.0, abs=1e-6)


def test_effective_rank_of_orthonormal_rows_is_their_count():
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(16, 7)))
    assert effective_rank(torch.from_numpy(q.T)) == pytest.approx(7.0, abs=1e-9)


def test_effective_rank_of_diagonal_matches_closed_form():
    p = np.array([3.0, 2.0, 1.0]) / 6.0
    expected = math.exp(-float(np.sum(p * np.log(p))))
    assert effective_rank(np.diag([1.0, 2.0, 3.0])) == pytest.approx(expected, rel=1e-12)


def test_effective_rank_of_zero_matrix_is_zero():
    assert effective_rank(np.zeros((4, 3))) == 0.0


def test_mean_pairwise_cosine_identical_and_orthogonal_rows():
    assert mean_pairwise_cosine(np.tile([1.0, -2.0, 0.5], (5, 1))) == pytest.approx(1.0)
    assert mean_pairwise_cosine(np.eye(4) * 3.0) == pytest.approx(0.0, abs=1e-12)
    assert mean_pairwise_cosine([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]) == pytest.approx(
        (2 * math.sqrt(0.5) + 0.0) / 3
    )
    with pytest.raises(GtiError, match="at least 2 rows"):
        mean_pairwise_cosine(np.ones((1, 3)))


def test_nearest_old_tokens_constructed_case():
    old = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [-1.0, 0.0], [0.0, 2.0]])
    new = np.array([[2.0, 0.0], [0.0, -1.0]])
    neighbors = nearest_old_tokens(new, torch.from_numpy(old), k=3)
    # Exact ties (rows 1 and 4 for the first query, rows 0 and 3 for the second) go to the lower index.
    np.testing.assert_array_equal(neighbors, [[0, 2, 1], [0, 3, 2]])
    assert nearest_old_tokens(new, old, k=10).shape == (2, 5)


def test_nearest_old_tokens_merges_across_chunks(monkeypatch):
    monkeypatch.setattr(diagnostics, "_CHUNK_ROWS", 7)
    rng = np.random.default_rng(2)
    old, new = rng.normal(size=(40, 6)), rng.normal(size=(5, 6))
    unit_old = old / np.linalg.norm(old, axis=1, keepdims=True)
    expected = np.argsort(-(new @ unit_old.T), axis=1)[:, :4]
    np.testing.assert_array_equal(nearest_old_tokens(new, old, k=4), expected)


UNDEFINED = {"pearson": None, "spearman": None, "p_value": None, "permutations": 199}


def test_rsa_against_own_cosine_is_one():
    matrix = np.random.default_rng(3).normal(size=(9, 5))
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    result = rsa(matrix, unit @ unit.T)
    assert result["pearson"] == pytest.approx(1.0)
    assert result["spearman"] == pytest.approx(1.0)
    assert result["p_value"] == pytest.approx(1 / 200)  # no permutation matches the true labelling


def test_rsa_p_value_tells_aligned_from_unrelated_geometry():
    rng = np.random.default_rng(7)
    reference_rows = rng.normal(size=(40, 8))
    unit = reference_rows / np.linalg.norm(reference_rows, axis=1, keepdims=True)
    noisy = reference_rows + rng.normal(scale=1.5, size=reference_rows.shape)  # weakly aligned
    aligned = rsa(noisy, unit @ unit.T)
    assert 0 < aligned["pearson"] < 0.9 and aligned["p_value"] <= 0.01
    unrelated = [rsa(rng.normal(size=(40, 8)), unit @ unit.T, permutations=99, seed=s)["p_value"] for s in range(20)]
    assert 0.2 < float(np.mean(unrelated)) < 0.8  # p is roughly uniform under the null


@pytest.mark.filterwarnings("error")
def test_rsa_of_identical_rows_is_undefined():
    reference = np.random.default_rng(4).random((6, 6))
    assert rsa(np.tile([0.3, -1.2, 2.0], (6, 1)), reference) == UNDEFINED
    assert rsa(np.random.default_rng(5).normal(size=(6, 3)), np.ones((6, 6))) == UNDEFINED


def test_hierarchy_similarity_hand_made_codes():
    codes = np.array([[0, 0, 0], [0, 1, 0], [0, 1, 1], [1, 0, 0]])
    # Tokens: a0 a1 | b0 b1 b2 (unused) | c0 c1; items: a0={0,1,2} a1={3} b0={0,3} b1={1,2} c0={0,1,3} c1={2}
    expected = np.array(
        [
            [1, 0, 1 / 4, 2 / 3, 0, 1 / 2, 1 / 3],
            [0, 1, 1 / 2, 0, 0, 1 / 3, 0],
            [1 / 4, 1 / 2, 1, 0, 0, 2 / 3, 0],
            [2 / 3, 0, 0, 1, 0, 1 / 4, 1 / 2],
            [0, 0, 0, 0, 0, 0, 0],
            [1 / 2, 1 / 3, 2 / 3, 1 / 4, 0, 1, 0],
            [1 / 3, 0, 0, 1 / 2, 0, 0, 1],
        ]
    )
    np.testing.assert_allclose(hierarchy_similarity(codes, [2, 3, 2]), expected, atol=1e-12)
    with pytest.raises(GtiError, match="level 1"):
        hierarchy_similarity(codes, [2, 1, 2])


def test_codebook_similarity_concatenates_levels():
    similarity = codebook_similarity([np.array([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 1.0]])])
    np.testing.assert_allclose(similarity[2], [math.sqrt(0.5), math.sqrt(0.5), 1.0])


def _toy_setup(seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = [3, 4, 2]
    vocab, hidden = 60, 8
    embeddings = torch.from_numpy(rng.normal(size=(vocab, hidden))).float()
    new_ids = rng.choice(vocab, size=sum(sizes), replace=False)
    codes = np.stack([rng.integers(0, size, size=12) for size in sizes], axis=1)
    codebooks = [rng.normal(size=(3, 5)), rng.normal(size=(4, 5))]
    return embeddings, new_ids, codes, sizes, codebooks


def test_diagnose_end_to_end_is_json_ready():
    embeddings, new_ids, codes, sizes, codebooks = _toy_setup()
    report = diagnose(embeddings, new_ids, codes, sizes, codebooks=codebooks, decode=lambda i: f"tok{i}", sample=4, k=3)
    assert set(report) == {
        "effective_rank", "singular_values", "mean_pairwise_cosine", "norm_mean",
        "old_norm_mean", "rsa_codebook", "rsa_codebook_per_level", "rsa_hierarchy", "nearest_old",
    }
    json.dumps(report)
    assert len(report["singular_values"]) == 8
    assert set(report["rsa_hierarchy"]) == {"pearson", "spearman", "p_value", "permutations", "level_pairs"}
    assert len(report["nearest_old"]) == 4
    new_names = {f"tok{i}" for i in new_ids}
    for entry in report["nearest_old"]:
        assert entry["token_row"] in set(new_ids.tolist())
        assert len(entry["neighbors"]) == 3 and not new_names & set(entry["neighbors"])
    old_ids = np.setdiff1d(np.arange(60), new_ids)
    assert report["old_norm_mean"] == pytest.approx(float(embeddings[old_ids].norm(dim=1).mean()), rel=1e-6)


@pytest.mark.filterwarnings("error")
def test_diagnose_mean_init_gives_null_correlations():
    embeddings, new_ids, codes, sizes, codebooks = _toy_setup(1)
    embeddings = embeddings.numpy()
    embeddings[new_ids] = embeddings.mean(axis=0)
    report = diagnose(embeddings, new_ids, codes, sizes, codebooks=codebooks)
    assert report["effective_rank"] == pytest.approx(1.0, abs=1e-6)
    assert report["rsa_codebook"] == UNDEFINED
    assert report["rsa_hierarchy"] == {**UNDEFINED, "level_pairs": []}
    assert all(isinstance(row, int) for entry in report["nearest_old"] for row in entry["neighbors"])
    assert "null" in json.dumps(report)


def test_diagnose_rejects_wrong_token_count():
    embeddings, new_ids, codes, sizes, _ = _toy_setup()
    with pytest.raises(GtiError, match="expected 9 new token ids"):
        diagnose(embeddings, new_ids[:-1], codes, sizes)


def test_per_level_codebook_rsa_ignores_a_shared_offset():
    """Rows = codebook vectors (through a random rotation) plus one large shared offset: the
    centred per-level RSA sees the codebook geometry exactly."""
    rng = np.random.default_rng(0)
    codebooks = [rng.normal(size=(6, 4)), rng.normal(size=(5, 4))]
    codebook_sizes = [6, 5, 2]
    rotation = np.linalg.qr(rng.normal(size=(8, 8)))[0][:4]  # (4, 8): embeds D=4 into H=8 isometrically
    offset = 50 * rng.normal(size=8)
    new_rows = np.vstack([np.vstack(codebooks) @ rotation + offset, rng.normal(size=(2, 8))])
    embeddings = np.vstack([rng.normal(size=(20, 8)), new_rows])
    codes = np.array([[0, 0, 0], [1, 2, 0], [5, 4, 0], [5, 4, 1]])
    report = diagnose(embeddings, np.arange(20, 33), codes, codebook_sizes, codebooks=codebooks)
    assert len(report["rsa_codebook_per_level"]) == 2
    for level in report["rsa_codebook_per_level"]:
        assert level["pearson"] > 0.5
    centred = [c - c.mean(0) for c in codebooks]
    exact = diagnose(
        np.vstack([rng.normal(size=(20, 8)), np.vstack(centred) @ rotation + offset, rng.normal(size=(2, 8))]),
        np.arange(20, 33), codes, codebook_sizes, codebooks=centred,
    )
    for level in exact["rsa_codebook_per_level"]:
        assert level["pearson"] == pytest.approx(1.0, abs=1e-9)
    # pooled over levels, pairs within a level only: the exact geometry again, whatever the levels' offsets
    assert exact["rsa_codebook"]["pearson"] == pytest.approx(1.0, abs=1e-9)


def test_pooled_rsa_leaves_out_pairs_across_blocks():
    from gti.analysis.diagnostics import rsa_blocks

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(6, 5))
    unit = [m / np.linalg.norm(m, axis=1, keepdims=True) for m in (a, b)]
    pooled = rsa_blocks([(a, unit[0] @ unit[0].T), (b, unit[1] @ unit[1].T)])
    assert pooled["pearson"] == pytest.approx(1.0) and pooled["p_value"] == pytest.approx(1 / 200)
    with pytest.raises(GtiError, match="block 1 must be"):
        rsa_blocks([(a, unit[0] @ unit[0].T), (b, np.eye(3))])


def _block(rng, n, dim, offset):
    """Rows whose cosines vary around a block-specific level (a shared offset raises every cosine)."""
    rows = rng.normal(size=(n, dim)) + offset
    return rows, _cosines(rows)


def _cosines(rows):
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit @ unit.T


def test_pooled_rsa_measures_alignment_within_levels_not_their_mean_cosines():
    from gti.analysis.diagnostics import rsa, rsa_blocks

    rng = np.random.default_rng(0)
    # Each level perfectly aligned with its reference, but the levels' mean cosines differ and in
    # opposite directions for the rows and the reference: raw pooling would come out negative.
    a, ref_a = _block(rng, 12, 6, 0.0)
    b, ref_b = _block(rng, 12, 6, 3.0)
    pooled = rsa_blocks([(a, ref_a), (b, ref_b - 2.0)])
    assert pooled["pearson"] == pytest.approx(1.0) and pooled["p_value"] == pytest.approx(1 / 200)
    # raw concatenation of these pairs would be driven by the offsets: check that it is not what we compute
    mine = np.concatenate([_cosines(a)[np.triu_indices(12, 1)], _cosines(b)[np.triu_indices(12, 1)]])
    theirs = np.concatenate([ref_a[np.triu_indices(12, 1)], (ref_b - 2.0)[np.triu_indices(12, 1)]])
    assert np.corrcoef(mine, theirs)[0, 1] < 0
    # aligned in one level and reversed in the other (same size): the pooled value is the mean, about 0
    opposite = rsa_blocks([(a, ref_a), (b, -ref_b)])
    per_level = [rsa(a, ref_a)["pearson"], rsa(b, -ref_b)["pearson"]]
    assert opposite["pearson"] == pytest.approx(np.mean(per_level)) and abs(opposite["pearson"]) < 1e-9
    # unrelated geometry: near zero, not significant
    c, _ = _block(rng, 12, 6, 0.0)
    d, _ = _block(rng, 12, 6, 0.0)
    unrelated = rsa_blocks([(a, _cosines(c)), (b, _cosines(d))])
    assert abs(unrelated["pearson"]) < 0.3 and unrelated["p_value"] > 0.05


def test_pooled_rsa_leaves_out_a_constant_level_and_weights_levels_by_pairs():
    from gti.analysis.diagnostics import rsa, rsa_blocks

    rng = np.random.default_rng(1)
    a, ref_a = _block(rng, 10, 5, 0.0)
    b, ref_b = _block(rng, 6, 5, 0.0)
    noise = _cosines(rng.normal(size=(6, 5)))
    same = np.ones((4, 5))  # identical rows: constant cosines, correlation undefined
    pooled = rsa_blocks([(a, ref_a), (b, noise), (same, np.eye(4))])
    weights = np.array([45, 15])
    expected = (weights @ [1.0, rsa(b, noise)["pearson"]]) / weights.sum()
    assert pooled["pearson"] == pytest.approx(expected)
    assert rsa_blocks([(same, np.eye(4))])["pearson"] is None


def _tree(parents: int = 12, children: int = 3, hidden: int = 24, sign: float = 1.0, seed: int = 0):
    """Codes of an exact two-level hierarchy (each level-b code has one parent) and rows that follow it.

    Level a has `parents` codes, level b `parents * children` codes; item (p, c) has codes (p, p*children + c).
    Each child row is sign * its parent's row plus a little noise; every level gets a large offset of its own.
    """
    rng = np.random.default_rng(seed)
    codes = np.array([(p, p * children + c) for p in range(parents) for c in range(children) for _ in range(2)])
    parent_rows = rng.normal(size=(parents, hidden))
    child_rows = sign * np.repeat(parent_rows, children, axis=0) + 0.3 * rng.normal(size=(parents * children, hidden))
    rows = np.concatenate([parent_rows + 5.0, child_rows - 7.0])
    return rows, codes, [parents, parents * children]


def test_hierarchy_rsa_of_level_offsets_alone_is_about_zero():
    """Random rows plus a large offset per level, no hierarchy: the old pooled statistic gave -0.54 here."""
    _, codes, sizes = _tree()
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(sum(sizes), 24))
    rows[: sizes[0]] += 5.0
    rows[sizes[0]:] -= 7.0
    result = hierarchy_rsa(rows, codes, sizes)
    assert abs(result["pearson"]) < 0.1 and result["p_value"] > 0.05
    assert result["level_pairs"] == [[0, 1]]
    old = rsa(rows, hierarchy_similarity(codes, sizes))["pearson"]
    assert old < -0.2  # what the statistic this replaces reported for the same rows


def test_hierarchy_rsa_of_an_exact_hierarchy_is_clearly_positive():
    rows, codes, sizes = _tree()
    result = hierarchy_rsa(rows, codes, sizes)
    assert result["pearson"] > 0.5 and result["spearman"] > 0.3 and result["p_value"] == pytest.approx(1 / 200)


def test_hierarchy_rsa_of_a_reversed_hierarchy_is_negative():
    rows, codes, sizes = _tree(sign=-1.0)
    result = hierarchy_rsa(rows, codes, sizes)
    assert result["pearson"] < -0.5 and result["p_value"] > 0.9


def test_hierarchy_rsa_permutes_within_levels_and_skips_unused_tokens():
    rows, codes, sizes = _tree()
    padded_sizes = [sizes[0] + 2, sizes[1]]  # two level-a codes no item uses
    padded = np.concatenate([rows[: sizes[0]], np.random.default_rng(3).normal(size=(2, rows.shape[1])) * 50,
                             rows[sizes[0]:]])
    assert hierarchy_rsa(padded, codes, padded_sizes)["pearson"] == pytest.approx(
        hierarchy_rsa(rows, codes, sizes)["pearson"], abs=1e-9)
    with pytest.raises(GtiError, match="one per token"):
        hierarchy_rsa(rows[:-1], codes, sizes)


def test_hierarchy_rsa_of_rows_equal_up_to_rounding_is_undefined():
    """Mean-initialized rows in float32 differ by a few ulps at most: that residue is not geometry."""
    _, codes, sizes = _tree()
    rows = np.tile(np.random.default_rng(0).normal(size=(1, 24)).astype(np.float32), (sum(sizes), 1))
    rows[::3, 0] = np.nextafter(rows[::3, 0], np.float32(np.inf))
    assert hierarchy_rsa(rows, codes, sizes)["pearson"] is None
