"""gti.analysis.convergence: the flattening verdict on validation curves."""

import pytest

from gti.analysis.convergence import convergence


def curve(measure: str, values: list[float]) -> list[dict]:
    return [{"step": 10 * (index + 1), measure: value} for index, value in enumerate(values)]


def test_a_loss_still_falling_in_its_last_window_is_still_improving():
    # the 3-epoch gti of the converged benchmark: its last three losses beat the earlier best (2.735) by 6.9%
    found = convergence(curve("loss", [3.25, 2.845, 2.735, 2.628, 2.627, 2.546]), "loss", window=3)
    assert found["verdict"] == "still improving"
    assert found["before_best"] == 2.735 and found["window_best"] == 2.546
    assert found["window_gain"] == pytest.approx((2.735 - 2.546) / 2.735)
    assert found["best_index"] == 5


def test_a_loss_that_rose_after_its_minimum_is_past_its_best():
    # the exploratory 5-epoch gti: the minimum at the sixth validation, three worse ones after it
    found = convergence(curve("loss", [3.256, 2.852, 2.75, 2.645, 2.639, 2.588, 2.623, 2.76, 2.838, 2.844]), "loss", 3)
    assert found["verdict"] == "past its best"
    assert found["best_index"] == 5 and found["best_value"] == 2.588
    assert found["window_gain"] < 0


def test_a_small_gain_is_flat_and_the_tolerance_decides():
    values = [0.020, 0.040, 0.050, 0.0502, 0.0504]
    assert convergence(curve("recall@10", values), "recall@10", window=2)["verdict"] == "flat"
    assert convergence(curve("recall@10", values), "recall@10", window=2, tolerance=0.001)["verdict"] == "still improving"


def test_higher_is_better_for_ranking_measures():
    # a falling recall is past its best; the same numbers as a loss are still improving
    values = [0.06, 0.05, 0.04, 0.03]
    assert convergence(curve("recall@10", values), "recall@10", 2)["verdict"] == "past its best"
    assert convergence(curve("loss", values), "loss", 2)["verdict"] == "still improving"


def test_a_best_of_zero_has_no_relative_gain():
    found = convergence(curve("recall@10", [0.0, 0.0, 0.003]), "recall@10", 1)
    assert found["window_gain"] is None and found["verdict"] == "still improving"
    assert convergence(curve("recall@10", [0.0, 0.0, 0.0]), "recall@10", 1)["verdict"] == "past its best"


def test_too_short_a_curve_and_missing_measures_give_none():
    assert convergence(curve("loss", [3.0, 2.0, 1.0]), "loss", window=3) is None
    # SASRec-style points without the measure are skipped, not read as zero
    assert convergence(curve("recall@10", [0.1, 0.2, 0.3]), "loss", window=1) is None
    with pytest.raises(ValueError, match="window"):
        convergence(curve("loss", [3.0, 2.0]), "loss", window=0)


def test_the_report_tabulates_each_curves_verdict():
    from gti.analysis.html import convergence_table
    from gti.results import Comparison, MethodResult

    lm = MethodResult(kind="lm", validations=[{"step": s, "loss": 3.0 - s / 10, "recall@10": 0.02} for s in range(1, 6)])
    sasrec = MethodResult(kind="anchor", validations=[{"epoch": e, "recall@10": r, "loss": 9.0 + e}
                                                      for e, r in enumerate([0.01, 0.05, 0.04, 0.04], 1)])
    short = MethodResult(kind="lm", validations=[{"step": 1, "loss": 3.0}])
    results = Comparison(config={}, seeds=None, methods={"gti": lm, "sasrec": sasrec, "mean": short})
    note, table = convergence_table(results, {"patience": 2, "monitor": "recall@10"})
    assert "last 2 validations" in note
    rows = [row.split("</td><td>") for row in table.split("<tr>")[2:]]
    verdicts = {(cells[0].removeprefix("<td>"), cells[1]): cells[-1].split("</td>")[0] for cells in rows}
    assert verdicts == {("gti", "loss"): "still improving", ("gti", "recall@10"): "past its best",
                        ("sasrec", "recall@10"): "past its best"}  # mean's one point: nothing to compare
    assert convergence_table(Comparison(config={}, seeds=None, methods={"mean": short}), {}) == []


def test_verdicts_read_an_lms_loss_and_monitor_and_an_anchors_recall():
    from gti.analysis.convergence import verdicts

    points = [{"step": s, "loss": 3.0 - s / 10, "recall@10": 0.02} for s in range(1, 6)]
    lm = verdicts(points, anchor=False, monitor="recall@10", patience=3)
    assert set(lm) == {"loss", "recall@10"} and lm["loss"]["window"] == 3
    assert set(verdicts(points, anchor=False, monitor="loss", patience=3)) == {"loss"}  # the monitor read once
    assert set(verdicts(points, anchor=True, monitor="loss", patience=3)) == {"recall@10"}
    assert verdicts(points, anchor=False, monitor="recall@10", patience=0)["loss"]["window"] == 2  # no patience: 2
    assert verdicts(None, anchor=True, monitor="recall@10", patience=3) == {"recall@10": None}
