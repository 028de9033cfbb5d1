"""Leave-one-out ranking metrics on hand-made ranks."""

import pytest

from gti.rec import rank_of, ranking_metrics


def test_rank_of_is_one_based_and_none_when_absent():
    assert rank_of(7, [3, 7, 9]) == 2
    assert rank_of(3, [3, 7, 9]) == 1
    assert rank_of(4, [3, 7, 9]) is None
    assert rank_of(4, []) is None


def test_ranking_metrics_exact_values():
    # log2(rank + 1) is 1, 2, 3, 4 for ranks 1, 3, 7, 15; one user misses.
    metrics = ranking_metrics([1, 3, None, 7, 15])
    expected = {
        "recall@1": 1 / 5,
        "ndcg@1": 1 / 5,
        "recall@5": 2 / 5,
        "ndcg@5": (1 + 1 / 2) / 5,
        "recall@10": 3 / 5,
        "ndcg@10": (1 + 1 / 2 + 1 / 3) / 5,
        "recall@20": 4 / 5,
        "ndcg@20": (1 + 1 / 2 + 1 / 3 + 1 / 4) / 5,
        "mrr": (1 + 1 / 3 + 1 / 7 + 1 / 15) / 5,
    }
    assert metrics.keys() == expected.keys()
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, abs=1e-12), name


def test_ranking_metrics_custom_cutoffs_and_edge_cases():
    assert ranking_metrics([2], ks=(1, 2)) == pytest.approx(
        {"recall@1": 0.0, "ndcg@1": 0.0, "recall@2": 1.0, "ndcg@2": 1 / 1.584962500721156, "mrr": 0.5}
    )
    assert ranking_metrics([None, None], ks=(10,)) == {"recall@10": 0.0, "ndcg@10": 0.0, "mrr": 0.0}
    assert ranking_metrics([], ks=(10,)) == {"recall@10": 0.0, "ndcg@10": 0.0, "mrr": 0.0}
