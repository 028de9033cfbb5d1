"""Per-user metric values, bootstrap intervals and the paired permutation test on constructed data."""

import math

import numpy as np
import pytest

from gti.errors import GtiError
from gti.rec import bootstrap_ci, holm, paired_test, per_user_values, ranking_metrics

RANKS = [1, 3, None, 7, 15, 2]


def test_per_user_values_exact():
    np.testing.assert_allclose(per_user_values(RANKS, "recall@5"), [1, 1, 0, 0, 0, 1])
    np.testing.assert_allclose(per_user_values(RANKS, "ndcg@10"), [1, 1 / 2, 0, 1 / 3, 0, 1 / math.log2(3)])
    np.testing.assert_allclose(per_user_values(RANKS, "mrr"), [1, 1 / 3, 0, 1 / 7, 1 / 15, 1 / 2])


def test_per_user_values_average_to_ranking_metrics():
    metrics = ranking_metrics(RANKS)
    for name, value in metrics.items():
        assert per_user_values(RANKS, name).mean() == pytest.approx(value)


@pytest.mark.parametrize("metric", ["hit@10", "recall@", "recall@10 ", "MRR"])
def test_per_user_values_rejects_unknown_metrics(metric):
    with pytest.raises(GtiError, match="unknown metric"):
        per_user_values(RANKS, metric)


def test_bootstrap_ci_of_constant_values_is_a_point():
    assert bootstrap_ci(np.full(50, 0.3)) == pytest.approx((0.3, 0.3))


def test_bootstrap_ci_covers_the_true_mean_and_has_normal_width():
    """2000 Bernoulli(0.3) users: the 95% interval holds 0.3, about 2 * 1.96 standard errors wide."""
    values = (np.random.default_rng(5).random(2000) < 0.3).astype(float)
    low, high = bootstrap_ci(values, n_resamples=2000)
    assert low < values.mean() < high
    assert low < 0.3 < high
    std_error = values.std() / math.sqrt(len(values))
    assert high - low == pytest.approx(2 * 1.96 * std_error, rel=0.15)
    narrow_low, narrow_high = bootstrap_ci(values, n_resamples=2000, level=0.5)
    assert low < narrow_low < narrow_high < high


def test_bootstrap_ci_is_deterministic_for_a_seed():
    values = np.random.default_rng(0).random(300)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)


def test_identical_runs_have_no_difference():
    values = np.random.default_rng(1).random(200)
    result = paired_test(values, values.copy(), n_resamples=500)
    assert result["diff"] == 0.0
    assert result["ci"] == (0.0, 0.0)
    assert result["p_value"] == 1.0


def test_large_consistent_difference_is_significant():
    """Run a beats run b by 0.1 (+- small noise) on every user: p hits its floor, the CI holds 0.1."""
    rng = np.random.default_rng(2)
    values_b = rng.random(100)
    values_a = values_b + 0.1 + rng.normal(0, 0.01, 100)
    result = paired_test(values_a, values_b, n_resamples=2000)
    assert result["diff"] == pytest.approx(0.1, abs=0.005)
    assert result["ci"][0] < result["diff"] < result["ci"][1]
    assert result["ci"][0] > 0.09 and result["ci"][1] < 0.11
    assert result["p_value"] == 1 / 2001
    assert paired_test(values_b, values_a, n_resamples=2000)["diff"] == pytest.approx(-result["diff"])


def test_noise_only_difference_is_not_significant():
    rng = np.random.default_rng(3)
    values_a, values_b = rng.random(200), rng.random(200)
    result = paired_test(values_a, values_b, n_resamples=2000)
    assert result["ci"][0] < 0 < result["ci"][1]
    assert result["p_value"] > 0.05


def test_paired_test_exact_p_value_on_two_users():
    """Diffs (1, 1): of the 4 sign patterns, 2 reach |mean| = 1, so p tends to 1/2."""
    result = paired_test(np.array([1.0, 1.0]), np.zeros(2), n_resamples=20000)
    assert result["p_value"] == pytest.approx(0.5, abs=0.02)


def test_paired_test_is_deterministic_for_a_seed():
    rng = np.random.default_rng(4)
    values_a, values_b = rng.random(100), rng.random(100)
    assert paired_test(values_a, values_b, n_resamples=300, seed=7) == paired_test(
        values_a, values_b, n_resamples=300, seed=7
    )


def test_rejects_bad_arguments():
    with pytest.raises(GtiError):
        bootstrap_ci(np.array([]))
    with pytest.raises(GtiError):
        bootstrap_ci(np.ones(3), level=1.0)
    with pytest.raises(GtiError):
        bootstrap_ci(np.ones(3), n_resamples=0)
    with pytest.raises(GtiError, match="same users"):
        paired_test(np.ones(3), np.ones(4))


def test_chunking_does_not_change_results(monkeypatch):
    """Resamples drawn a few at a time (many chunks) consume the generator exactly as one chunk does."""
    rng = np.random.default_rng(6)
    values_a, values_b = rng.random(500), rng.random(500)
    whole = bootstrap_ci(values_a, n_resamples=3000), paired_test(values_a, values_b, n_resamples=3000)
    monkeypatch.setattr("gti.rec.stats._CHUNK_CELLS", 1200)
    assert (bootstrap_ci(values_a, n_resamples=3000), paired_test(values_a, values_b, n_resamples=3000)) == whole


def test_wilson_interval_known_values_and_zero_hits():
    from gti.rec import wilson_ci

    low, high = wilson_ci(0, 200)
    assert low == 0.0 and high == pytest.approx(0.01884, abs=1e-4)  # 1.96^2 / (200 + 1.96^2)
    low, high = wilson_ci(3, 200)
    assert low == pytest.approx(0.00512, abs=1e-4) and high == pytest.approx(0.04314, abs=1e-4)
    assert wilson_ci(200, 200)[1] == 1.0 and wilson_ci(200, 200)[0] == pytest.approx(1 - 0.01884, abs=1e-4)
    with pytest.raises(GtiError, match="hits"):
        wilson_ci(5, 3)


def test_metric_ci_never_claims_certainty_from_zero_hits():
    from gti.rec import metric_ci, per_user_values, wilson_ci

    misses = per_user_values([None] * 150 + [50] * 50, "recall@10")
    assert metric_ci(misses, "recall@10") == wilson_ci(0, 200)
    assert metric_ci(per_user_values([None] * 200, "ndcg@10"), "ndcg@10") == (0.0, wilson_ci(0, 200)[1])
    ranks = [1, 3, None, 12, 2] * 40
    assert metric_ci(per_user_values(ranks, "recall@10"), "recall@10") == wilson_ci(120, 200)
    low, high = metric_ci(per_user_values(ranks, "ndcg@10"), "ndcg@10")
    assert 0 < low < per_user_values(ranks, "ndcg@10").mean() < high
    averaged = np.array([0.0, 1 / 3, 2 / 3, 1.0] * 50)  # recall averaged over 3 seeds: bootstrap
    low, high = metric_ci(averaged, "recall@10")
    assert 0.4 < low < 0.5 < high < 0.6


def test_holm_exact_on_a_constructed_family():
    # sorted: b 0.01 (x3 = 0.03), a 0.02 (x2 = 0.04), c 0.04 (x1 = 0.04, kept at 0.04); order of input kept
    assert holm({"a": 0.02, "b": 0.01, "c": 0.04}) == pytest.approx({"a": 0.04, "b": 0.03, "c": 0.04})
    # monotone: a later, smaller product is raised to the running maximum; capped at 1
    assert holm({"a": 0.3, "b": 0.2, "c": 0.5}) == pytest.approx({"a": 0.6, "b": 0.6, "c": 0.6})
    assert holm({"a": 0.6, "b": 0.7}) == pytest.approx({"a": 1.0, "b": 1.0})
    assert holm({"only": 0.03}) == {"only": 0.03}


def test_holm_refuses_a_value_outside_zero_one():
    with pytest.raises(GtiError, match="'x'.*\\[0, 1\\]"):
        holm({"x": 1.5})
