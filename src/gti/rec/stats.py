"""Uncertainty of ranking metrics over users: bootstrap intervals and a paired significance test.

Every metric in `gti.rec.metrics` is a mean over users of a per-user value, so one
run is summarized by that vector of values and two runs on the same users are
compared user by user. Resampling is vectorized and drawn in chunks, so memory stays
bounded for large user counts.
"""

import math
import re
from collections.abc import Callable

import numpy as np
from scipy import special

from gti.errors import GtiError

_METRIC = re.compile(r"(recall|ndcg)@(\d+)|mrr")
_CHUNK_CELLS = 4_000_000  # resampled user values held at once


def per_user_values(ranks: list[int | None], metric: str) -> np.ndarray:
    """One user's contribution to a ranking metric, for every user.

    Args:
        ranks: per user, the 1-based rank of the target, or None when it was not ranked.
        metric: "recall@k", "ndcg@k" or "mrr", as named by `ranking_metrics`.

    Returns:
        (U,) float64 values whose mean is the metric; a None rank gives 0.

    Raises:
        GtiError: the metric name is not one of the above.
    """
    match = _METRIC.fullmatch(metric)
    if match is None:
        raise GtiError(f"unknown metric {metric!r}: expected recall@k, ndcg@k or mrr")
    name, k = match.group(1), int(match.group(2) or 0)
    values = np.zeros(len(ranks))
    for user, rank in enumerate(ranks):
        if rank is None:
            continue
        if name is None:
            values[user] = 1 / rank
        elif rank <= k:
            values[user] = 1.0 if name == "recall" else 1 / math.log2(rank + 1)
    return values


def _resampled(n_resamples: int, n_users: int, resample: Callable[[int], np.ndarray]) -> np.ndarray:
    """Run `resample(rows)`, which returns (rows,) statistics, over chunks summing to `n_resamples` rows."""
    chunk = max(1, _CHUNK_CELLS // n_users)
    return np.concatenate([resample(min(chunk, n_resamples - start)) for start in range(0, n_resamples, chunk)])


def _checked(values: np.ndarray, n_resamples: int) -> np.ndarray:
    """`values` as a non-empty float64 vector, after checking it and the resample count."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise GtiError(f"resampling needs a non-empty vector of per-user values, got shape {values.shape}")
    if n_resamples < 1:
        raise GtiError(f"n_resamples must be positive, got {n_resamples}")
    return values


def bootstrap_ci(
    values: np.ndarray, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean over users.

    Args:
        values: (U,) per-user values (see `per_user_values`).
        n_resamples: bootstrap resamples of the users, drawn with replacement.
        seed: seed of the resampling generator.
        level: coverage of the interval, in (0, 1).

    Returns:
        (low, high) quantiles of the resampled means at (1 - level) / 2 and (1 + level) / 2.
    """
    values = _checked(values, n_resamples)
    if not 0 < level < 1:
        raise GtiError(f"the confidence level must lie in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    n = len(values)
    means = _resampled(n_resamples, n, lambda rows: values[rng.integers(0, n, size=(rows, n))].mean(1))  # (R,)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def wilson_ci(hits: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate of `hits` in `n` trials.

    Unlike a bootstrap, it does not collapse to [0, 0] when there are no hits (with 0 of 200 users it
    is [0, 0.019]), and it keeps its coverage when hits are few.
    """
    if n < 1 or not 0 <= hits <= n:
        raise GtiError(f"a rate needs 0 <= hits <= n and n >= 1, got {hits} of {n}")
    if not 0 < level < 1:
        raise GtiError(f"the confidence level must lie in (0, 1), got {level}")
    z = float(special.ndtri((1 + level) / 2))
    rate = hits / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    low = 0.0 if hits == 0 else max(0.0, centre - half)  # exact ends: no 3e-18 from rounding
    high = 1.0 if hits == n else min(1.0, centre + half)
    return low, high


CI_METHOD = ("recall@k: Wilson score interval over users (per-user hits are 0 or 1); ndcg@k and mrr (and recall "
             "averaged over seeds): percentile bootstrap over users, 1,000 resamples, widened to [0, the Wilson upper "
             "bound of 0 hits] when no user has a hit")
"""How `metric_ci` computes its intervals, in words, for reports."""


def metric_ci(values: np.ndarray, metric: str, n_resamples: int = 1000, seed: int = 0,
              level: float = 0.95) -> tuple[float, float]:
    """The confidence interval of a metric's mean over users, by the rule in `CI_METHOD`.

    Args:
        values: (U,) per-user values (see `per_user_values`), each in [0, 1].
        metric: the metric's name (`recall@k`, `ndcg@k`, `mrr`).
    """
    values = _checked(values, n_resamples)
    binary = bool(np.isin(values, (0.0, 1.0)).all())
    if metric.startswith("recall@") and binary:
        return wilson_ci(int(values.sum()), len(values), level)
    if not values.any():
        return 0.0, wilson_ci(0, len(values), level)[1]
    return bootstrap_ci(values, n_resamples=n_resamples, seed=seed, level=level)


def paired_test(
    values_a: np.ndarray, values_b: np.ndarray, n_resamples: int = 10000, seed: int = 0
) -> dict[str, float | tuple[float, float]]:
    """Compare two runs on the same users: mean difference, its bootstrap CI, and a permutation p-value.

    Under the null hypothesis the two runs are exchangeable for each user, so the sign of
    each user's difference is arbitrary; the p-value is the share of random sign flips
    whose mean difference is at least as large in magnitude as the observed one, counting
    the observed assignment itself ((1 + hits) / (1 + n_resamples)), so it is never 0.

    Args:
        values_a: (U,) per-user values of run a.
        values_b: (U,) per-user values of run b, same users in the same order.
        n_resamples: resamples for both the bootstrap CI and the permutation test.
        seed: seed of both resampling generators.

    Returns:
        {"diff": mean(a) - mean(b), "ci": 95% paired bootstrap CI of diff as (low, high),
        "p_value": two-sided sign-flip permutation p-value}.
    """
    values_a = _checked(values_a, n_resamples)
    values_b = _checked(values_b, n_resamples)
    if values_a.shape != values_b.shape:
        raise GtiError(f"paired runs need the same users, got {len(values_a)} and {len(values_b)} values")
    diffs = values_a - values_b  # (U,)
    observed = abs(diffs.mean())
    rng = np.random.default_rng(seed)
    n = len(diffs)
    signs = np.array([-1.0, 1.0])
    flipped = _resampled(n_resamples, n, lambda rows: np.abs(rng.choice(signs, size=(rows, n)) @ diffs / n))  # (R,)
    hits = int((flipped >= observed - 1e-12).sum())
    return {
        "diff": float(diffs.mean()),
        "ci": bootstrap_ci(diffs, n_resamples=n_resamples, seed=seed),
        "p_value": (1 + hits) / (1 + n_resamples),
    }


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjustment of a family of p-values (family-wise error at most the level, any dependence).

    The k-th smallest of m p-values is multiplied by (m - k + 1), then each adjusted value is raised to the
    largest adjusted value before it (so the order is kept) and capped at 1. Ties keep their input order.

    Args:
        p_values: {hypothesis name: raw p-value}, the whole family (every test that was run for the claim).

    Returns:
        {hypothesis name: Holm-adjusted p-value}, in the input's order.
    """
    for name, p in p_values.items():
        if not 0.0 <= p <= 1.0:
            raise GtiError(f"holm: the p-value of {name!r} is {p}; expected a number in [0, 1]")
    order = sorted(p_values, key=lambda name: p_values[name])
    adjusted, running = {}, 0.0
    for k, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - k) * p_values[name]))
        adjusted[name] = running
    return {name: adjusted[name] for name in p_values}
