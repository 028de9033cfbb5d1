"""Budget curves (`gti compare --budgets`, `eval.at_steps`), compute accounting and the compute-matched table."""

import json

import pytest

import gti.stages.finetune
from gti.cli import main
from test_pipeline_cli import run_args, tiny_dataset, tiny_model_dir  # noqa: F401 (fixtures)

CONSTANT = ("finetune.schedule=constant", "finetune.samples=sliding", "finetune.warmup_steps=1")


def read(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def budget_run(tiny_dataset, tiny_model_dir, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("budget") / "run"
    args = ["compare", "--methods", "mean,gti", "--budgets", "2,4,6", *run_args(tiny_dataset, tiny_model_dir, out, *CONSTANT)]
    assert main(args) == 0
    return out


def test_by_budget_points_in_order_with_compute_of_every_stage(budget_run):
    results = read(budget_run / "results.json")
    for method in ("mean", "gti"):
        result = results["methods"][method]
        curve = result["by_budget"]
        assert [p["finetune_steps"] for p in curve] == [2, 4, 6]
        tokens = [p["train_tokens"] for p in curve]
        assert tokens == sorted(tokens) and len(set(tokens)) == 3
        assert curve[-1]["metrics"] == read(budget_run / method / "eval" / "metrics.json")
        assert curve[-1]["train_tokens"] == result["train_tokens"]
        for point in curve:
            assert set(point["ci"]) == set(point["metrics"]) and point["seconds"] > 0
        finetune = read(budget_run / method / "finetune" / "manifest.json")
        assert result["compute"]["finetune"]["train_tokens"] == finetune["train_tokens"] > 0
    ground = read(budget_run / "gti" / "ground" / "manifest.json")
    assert ground["train_tokens"] > 0 and ground["train_seconds"] > 0
    gti, mean = results["methods"]["gti"], results["methods"]["mean"]
    assert gti["train_tokens"] == ground["train_tokens"] + gti["compute"]["finetune"]["train_tokens"]
    assert mean["compute"]["ground"]["train_tokens"] == 0
    # the same batches for both methods: fine-tuning tokens match step by step, grounding comes on top
    for g, m in zip(gti["by_budget"], mean["by_budget"]):
        assert g["train_tokens"] == m["train_tokens"] + ground["train_tokens"]


def test_point_equals_a_plain_run_of_that_many_steps(budget_run, tiny_dataset, tiny_model_dir, tmp_path):  # noqa: F811
    plain = tmp_path / "plain"
    args = run_args(tiny_dataset, tiny_model_dir, plain, *CONSTANT, "finetune.steps=4", "init.method=gti")
    assert main(["run", *args]) == 0
    point = budget_run / "gti" / "finetune" / "points" / "step-000004"
    assert (point / "predictions.jsonl").read_text() == (plain / "gti" / "eval" / "predictions.jsonl").read_text()
    assert read(point / "metrics.json") == read(plain / "gti" / "eval" / "metrics.json")
    assert read(point / "output.json") == read(plain / "gti" / "eval" / "output.json")
    assert read(point / "point.json")["train_tokens"] == read(plain / "gti" / "finetune" / "manifest.json")["train_tokens"]


def test_compute_matched_pairs_each_gti_point_with_a_costlier_mean_point(budget_run):
    table = read(budget_run / "results.json")["compute_matched"]
    assert [entry["finetune_steps"] for entry in table] == [2, 4, 6]
    for entry in table:
        versus = entry["vs"]["mean"]
        if versus is None:  # no mean point has as many tokens
            mean_tokens = [p["train_tokens"] for p in read(budget_run / "results.json")["methods"]["mean"]["by_budget"]]
            assert max(mean_tokens) < entry["train_tokens"]
            continue
        assert versus["train_tokens"] >= entry["train_tokens"]
        for name in ("recall@10", "ndcg@10"):
            assert set(versus[name]) == {"diff", "ci", "p_value"} and 0 < versus[name]["p_value"] <= 1
    report = (budget_run / "report.html").read_text()
    assert "Budget curves" in report and "Compute-matched comparison" in report
    assert (budget_run / "budget_curves.png").is_file() and "budget_curves.png" not in report  # inlined


def test_resumed_run_does_not_redo_finished_points(tiny_dataset, tiny_model_dir, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "run"
    args = ["run", *run_args(tiny_dataset, tiny_model_dir, out, *CONSTANT, "finetune.steps=6", "eval.at_steps=[2, 4]")]
    evaluated = []
    original = gti.stages.finetune.evaluate_into

    def interrupted(*args):
        evaluated.append(args[-1].name)
        if args[-1].name == ".step-000004.tmp":
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(gti.stages.finetune, "evaluate_into", interrupted)
    assert main(args) == 130  # interrupted while evaluating step 4
    assert evaluated == [".step-000002.tmp", ".step-000004.tmp"]
    monkeypatch.setattr(gti.stages.finetune, "evaluate_into", lambda *a: (evaluated.append(a[-1].name), original(*a))[1])
    evaluated.clear()
    assert main(args) == 0
    assert evaluated[0] == ".step-000004.tmp" and ".step-000002.tmp" not in evaluated
    points = sorted(p.name for p in (out / "mean" / "finetune" / "points").iterdir())
    assert points == ["step-000002", "step-000004"]


@pytest.mark.parametrize("extra, message", [
    (("eval.at_steps=[2]", "finetune.steps=4"), "finetune.schedule"),
    (("eval.at_steps=[3, 2]", "finetune.steps=4", "finetune.schedule=constant"), "increasing"),
    (("eval.at_steps=[9]", "finetune.steps=4", "finetune.schedule=constant"), "finetune.steps = 4"),
])
def test_bad_budget_points_are_one_line_errors(tiny_dataset, tiny_model_dir, tmp_path, capsys, extra, message):  # noqa: F811
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, tmp_path / "r", *extra)]) == 2
    err = capsys.readouterr().err.strip()
    assert "eval.at_steps" in err and message in err and "\n" not in err
    assert not (tmp_path / "r" / "mean").exists()
