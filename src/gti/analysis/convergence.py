"""Did a validation curve flatten? One rule for every method's curve, so that "converged" is a computed verdict
rather than a reading of a plot.

The rule compares the best value of the last `window` validations with the best value before them (the same
window as early stopping's `train.patience`: stopping waits that many validations without a better one):
- `still improving`: the last window beat everything before it by more than `tolerance` (relative);
- `flat`: it beat it, by at most `tolerance`;
- `past its best`: it did not beat it at all (the curve's best lies before the window: a longer cap would not
  have been chosen, and for a loss it usually means the model began to overfit).

Which measure to read matters. A method's validation answer loss (`loss`: the teacher-forced loss on the
validation targets' SID tokens) is computed on the same users at every point and is continuous, so its changes
between points are small and paired; a beam-search recall on a few hundred users moves by whole users (about
+-0.02 at 300 users and these rates) and its verdict is correspondingly noisy. SASRec's `loss` is a cross-entropy
over the whole catalog, which keeps rising as the model grows confident while its ranking still improves; read
its recall instead.
"""

LOWER_IS_BETTER = ("loss",)
"""Measures where smaller is better; every other measure (recall@k, ndcg@k, mrr) is better when larger."""


def convergence(points: list[dict], measure: str, window: int, tolerance: float = 0.01) -> dict | None:
    """The verdict of the module docstring on one validation curve.

    Args:
        points: the curve, oldest first: dicts holding `measure` (`MethodResult.validations`); points without it
            are skipped.
        measure: the measure to read (`loss`, `recall@10`, ...).
        window: how many of the last validations form the window (the run's `train.patience`), at least 1.
        tolerance: the relative gain up to which the window counts as flat (0.01: 1%).

    Returns:
        {"measure", "window", "tolerance", "values", "best_index", "best_value", "before_best", "window_best",
        "window_gain" (relative, positive: better; None from a best of 0), "verdict"}, or None when the curve has no more than
        `window` points holding `measure` (nothing before the window to compare with).
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, not {window}")
    values = [float(point[measure]) for point in points if point.get(measure) is not None]
    if len(values) <= window:
        return None
    lower = measure in LOWER_IS_BETTER
    best_of = min if lower else max
    before, within = best_of(values[:-window]), best_of(values[-window:])
    improvement = (before - within) if lower else (within - before)
    gain = improvement / abs(before) if before != 0 else None  # from zero (a recall of 0): no relative gain
    if gain is None:
        verdict = "still improving" if improvement > 0 else "past its best"
    else:
        verdict = "still improving" if gain > tolerance else "flat" if gain > 0 else "past its best"
    best_index = values.index(best_of(values))
    return {"measure": measure, "window": window, "tolerance": tolerance, "values": values,
            "best_index": best_index, "best_value": values[best_index], "before_best": before,
            "window_best": within, "window_gain": gain, "verdict": verdict}


def verdicts(validations: list[dict] | None, anchor: bool, monitor: str, patience: int) -> dict[str, dict | None]:
    """Measure -> `convergence` of one method's validation curve, as the report and the benchmarks read it: an LM
    method's answer loss and its `train.monitor`, an anchor's (SASRec's) recall@10 (its loss is catalog-wide); the
    window is `train.patience` validations, 2 without patience."""
    measures = ["recall@10"] if anchor else list(dict.fromkeys(["loss", monitor]))
    return {measure: convergence(validations or [], measure, patience or 2) for measure in measures}
