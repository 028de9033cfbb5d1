"""Anchors, the rows-first control and the validation grid inside `gti compare`, on a tiny model and dataset."""

import json
import os

import pytest

import gti.runner
import gti.stages.anchor
import gti.stages.evaluate
import gti.stages.ground
import gti.train.finetune
from gti.cli import main
from gti.rec import paired_test, per_user_values
from gti.tuning import CHOICE
from test_pipeline_cli import run_args, tiny_dataset, tiny_model_dir  # noqa: F401 (fixtures)

SASREC = ("sasrec.hidden=8", "sasrec.heads=1", "sasrec.epochs=3", "sasrec.batch_size=4")


def read(path):
    return json.loads(path.read_text())


def ranks_of(folder):
    return [json.loads(line)["rank"] for line in (folder / "predictions.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def fair_run(tiny_dataset, tiny_model_dir, tmp_path_factory):  # noqa: F811
    """mostpop, sasrec, mean, rows-first and gti; the grounding and fine-tuning calls recorded."""
    out = tmp_path_factory.mktemp("fair") / "run"
    calls = {"ground": [], "train": []}
    ground, train = gti.stages.ground.ground, gti.train.finetune.train
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gti.stages.ground, "ground", lambda *a, **k: calls["ground"].append((a, k)) or ground(*a, **k))
        patch.setattr(gti.train.finetune, "train", lambda *a, **k: calls["train"].append((a, k)) or train(*a, **k))
        args = ["compare", "--methods", "mostpop,sasrec,mean,rows-first,gti",
                *run_args(tiny_dataset, tiny_model_dir, out, *SASREC)]
        assert main(args) == 0
    return out, calls


def test_anchors_appear_in_every_result_file(fair_run):
    out, _ = fair_run
    results = read(out / "results.json")
    assert list(results["methods"]) == ["mostpop", "sasrec", "mean", "rows-first", "gti"]
    for anchor in ("mostpop", "sasrec"):
        result = results["methods"][anchor]
        assert result["kind"] == "anchor" and result["train_tokens"] is None and result["diagnostics"] == {}
        assert result["by_budget"] == [] and result["finetune_final_loss"] is None
        assert set(result["seconds"]) == {"fit", "eval"} and result["output"]["invalid_sid_rate"] is None
        assert result["metrics"] == read(out / anchor / "eval" / "metrics.json")
        assert result["compute"]["fit"]["interactions_processed"] > 0
        assert not (out / anchor / "init").exists() and not (out / anchor / "finetune").exists()
    fit = results["methods"]["sasrec"]["compute"]["fit"]
    manifest = read(out / "sasrec" / "fit" / "manifest.json")
    assert fit["epochs"] == manifest["epochs"] == 3 and fit["steps"] == manifest["steps"] > 0
    assert results["methods"]["mean"]["kind"] == "lm"
    # the same users in the same order as beam search, so the paired tests pair them
    users = [json.loads(line)["user_id"] for line in (out / "mean" / "eval" / "predictions.jsonl").read_text().splitlines()]
    for anchor in ("mostpop", "sasrec"):
        lines = (out / anchor / "eval" / "predictions.jsonl").read_text().splitlines()
        assert [json.loads(line)["user_id"] for line in lines] == users
    for name in ("sasrec", "mean", "rows-first", "gti"):
        tests = results["methods"][name]["paired_vs_anchors"]
        expected = paired_test(per_user_values(ranks_of(out / name / "eval"), "recall@10"),
                               per_user_values(ranks_of(out / "mostpop" / "eval"), "recall@10"))
        assert tests["mostpop"]["recall@10"]["diff"] == pytest.approx(expected["diff"], abs=1e-12)
        assert tests["mostpop"]["recall@10"]["p_value"] == pytest.approx(expected["p_value"], abs=1e-12)
    assert "mostpop" not in results["methods"]["mostpop"]["paired_vs_anchors"]
    assert set(results["methods"]["mostpop"]["paired_vs_mean"]) == {"recall@10", "ndcg@10"}
    table = (out / "results.md").read_text()
    assert "| mostpop |" in table and "| sasrec |" in table and "Against the anchors" in table
    page = (out / "report.html").read_text()
    assert "Against the anchors" in page and "<td>sasrec</td>" in page and "<td>mostpop</td>" in page
    diagnostics = read(out / "diagnostics.json")
    assert set(diagnostics) == {"mean", "rows-first", "gti"}
    # GTI meets the rows-first control at matched tokens
    matched = {entry["method"]: entry["vs"] for entry in results["compute_matched"]}
    assert set(matched) == {"rows-first", "gti"} and set(matched["gti"]) == {"mean", "rows-first"}


def test_rows_first_grounds_exactly_as_gti_but_on_next_item_prompts(fair_run):
    out, calls = fair_run
    (rows_args, rows_kwargs), (gti_args, gti_kwargs) = calls["ground"]  # in the order of --methods
    assert rows_kwargs.pop("workdir").parent.parent.name == "rows-first"  # each its own stage's checkpoints
    assert gti_kwargs.pop("workdir").parent.parent.name == "gti"
    assert rows_kwargs == gti_kwargs and set(gti_kwargs) == {"steps", "lr", "batch_size", "pad_id", "seed", "options"}
    assert rows_args[1].tolist() == gti_args[1].tolist()  # the same new rows train
    assert rows_args[2] != gti_args[2]  # only the samples differ ...
    ground_manifests = {name: read(out / name / "ground" / "manifest.json") for name in ("gti", "rows-first")}
    rows_config = dict(ground_manifests["rows-first"]["config"])
    assert rows_config.pop("samples") == {"on": "next-item", "finetune": {"samples": "last", "seed": 0}}
    assert rows_config == ground_manifests["gti"]["config"]
    assert ground_manifests["rows-first"]["inputs"] == ground_manifests["gti"]["inputs"]  # the same init rows
    # ... and the control's are exactly its fine-tuning samples (next-item prompts)
    finetune_samples = [args[1] for args, _ in calls["train"]]
    assert rows_args[2] in finetune_samples
    assert all(any(token in sample.answer for token in rows_args[1].tolist()) for sample in rows_args[2])


def test_a_grid_is_chosen_on_the_validation_targets_only(tiny_dataset, tiny_model_dir, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "grid"
    log = []
    for module in (gti.stages.evaluate, gti.stages.anchor):
        original = module.eval_examples
        monkeypatch.setattr(module, "eval_examples",
                            lambda config, split, on="test", original=original: log.append(("eval", on)) or original(config, split, on))
    tune, run_method = gti.runner.tune, gti.runner.run_method
    monkeypatch.setattr(gti.runner, "tune", lambda name, *a: log.append(("tune", name)) or _logged(log, name, tune(name, *a)))
    monkeypatch.setattr(gti.runner, "run_method", lambda c, lay, name, *a: log.append(("run", name)) or run_method(c, lay, name, *a))
    grid = ["--grid", "finetune.lr=1e-3,1e-2", "--grid", "finetune.new_rows_lr=same,5e-2", "--grid", "sasrec.lr=1e-3,1e-2"]
    args = ["compare", "--methods", "mostpop,sasrec,mean,mean-rowlr", *grid,
            *run_args(tiny_dataset, tiny_model_dir, out, *SASREC, "eval.beams=10")]
    assert main(args) == 0
    # every evaluation a method's choice rests on is a validation one; the test targets come after the choice
    for name in ("sasrec", "mean", "mean-rowlr"):
        start, chosen = log.index(("tune", name)), log.index(("chosen", name))
        assert {entry for entry in log[start:chosen] if entry[0] == "eval"} == {("eval", "valid")}
        assert log[chosen + 1] == ("run", name)
    assert ("tune", "mostpop") in log and ("chosen", "mostpop") not in log  # nothing to tune
    tuning = read(out / "results.json")["tuning"]
    assert tuning["grid"] == {"finetune.lr": [1e-3, 1e-2], "finetune.new_rows_lr": [None, 5e-2], "sasrec.lr": [1e-3, 1e-2]}
    assert tuning["split"] == "valid" and tuning["metric"] == "recall@10"
    assert set(tuning["methods"]) == {"sasrec", "mean", "mean-rowlr"}
    mean, rowlr = tuning["methods"]["mean"], tuning["methods"]["mean-rowlr"]
    assert mean["tuned"] == ["finetune.lr"] and mean["fixed"] == {"finetune.new_rows_lr": None} and len(mean["points"]) == 2
    assert rowlr["tuned"] == ["finetune.lr", "finetune.new_rows_lr"] and len(rowlr["points"]) == 4
    shared = [p for p in rowlr["points"] if p["settings"]["finetune.new_rows_lr"] is None]
    assert [p["folder"] for p in shared] == [p["folder"] for p in mean["points"]]  # trained once, in mean's folder
    assert [p["valid"] for p in shared] == [p["valid"] for p in mean["points"]]
    for point in mean["points"]:  # a point's compute is its fine-tuning's
        assert point["compute"]["train_tokens"] == read(out / point["folder"] / "finetune" / "manifest.json")["train_tokens"]
    assert mean["search"]["points"] == 2 and mean["search"]["train_tokens"] == sum(
        p["compute"]["train_tokens"] for p in mean["points"])
    assert tuning["methods"]["sasrec"]["search"]["train_tokens"] is None
    split = read(out / "data" / "split.json")
    valid_targets = {row["user_id"]: row["target"] for row in split["valid"]}
    for record in tuning["methods"].values():
        for point in record["points"]:
            predictions = [json.loads(line) for line in (out / point["folder"] / "valid" / "predictions.jsonl").read_text().splitlines()]
            assert all(p["target"] == valid_targets[p["user_id"]] for p in predictions)
            assert point["valid"] == read(out / point["folder"] / "valid" / "metrics.json")
        best = max(range(len(record["points"])),  # the rule: CHOICE in order, then the earliest point
                   key=lambda i: (*(record["points"][i]["valid"][m] for m in CHOICE), -i))
        assert record["chosen"] == best and record["settings"] == record["points"][best]["settings"]
    finetune = read(out / "mean-rowlr" / "finetune" / "manifest.json")["config"]["finetune"]
    assert finetune["lr"] == rowlr["settings"]["finetune.lr"]
    assert finetune.get("new_rows_lr") == rowlr["settings"]["finetune.new_rows_lr"]
    assert read(out / "sasrec" / "fit" / "manifest.json")["config"]["sasrec"]["lr"] == tuning["methods"]["sasrec"]["settings"]["sasrec.lr"]
    # the chosen point is the method's run (same key: no budget points, the search's seed): linked, not retrained
    for name, stage in (("mean", "finetune"), ("mean-rowlr", "finetune"), ("sasrec", "fit")):
        record = tuning["methods"][name]
        point = out / record["points"][record["chosen"]]["folder"] / stage
        assert os.path.samefile(out / name / stage / "manifest.json", point / "manifest.json")
        assert all(os.path.samefile(f, out / name / stage / f.relative_to(point)) for f in point.rglob("*") if f.is_file())
    assert "Grid on the validation targets" in (out / "report.html").read_text()
    assert "Grid points on the validation targets" in (out / "results.md").read_text()


def test_choices_reuse_an_earlier_grid(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    grid_run, reuse_run = tmp_path / "grid", tmp_path / "reuse"
    grid = ["--grid", "finetune.lr=1e-3,1e-2", "--grid", "finetune.new_rows_lr=same,5e-2"]
    assert main(["compare", "--methods", "mean-rowlr", *grid, *run_args(tiny_dataset, tiny_model_dir, grid_run, "eval.beams=10")]) == 0
    earlier = read(grid_run / "results.json")["tuning"]
    chosen = earlier["methods"]["mean-rowlr"]["settings"]
    args = run_args(tiny_dataset, tiny_model_dir, reuse_run, "eval.beams=10")
    assert main(["compare", "--methods", "mean-rowlr,gti", "--choices", str(grid_run / "results.json"), *args]) == 0
    tuning = read(reuse_run / "results.json")["tuning"]
    assert tuning["choices_from"] == str(grid_run / "results.json") and tuning["untuned"] == ["gti"]
    assert tuning["methods"]["mean-rowlr"] == earlier["methods"]["mean-rowlr"] and "gti" not in tuning["methods"]
    finetune = read(reuse_run / "mean-rowlr" / "finetune" / "manifest.json")["config"]["finetune"]
    assert finetune["lr"] == chosen["finetune.lr"] and finetune.get("new_rows_lr") == chosen["finetune.new_rows_lr"]
    untuned = read(reuse_run / "gti" / "finetune" / "manifest.json")["config"]["finetune"]
    assert untuned["lr"] == read(reuse_run / "config.json")["finetune"]["lr"] and untuned.get("new_rows_lr") is None
    assert not list(reuse_run.glob("*/grid"))  # nothing is searched again
    assert "reused here" in (reuse_run / "report.html").read_text()
    # several files: each method's choice from the file that tuned it (same protocol), none chosen twice
    later = tmp_path / "later.json"  # a constructed record of a method tuned in another run with the same grid
    record = {**earlier["methods"]["mean-rowlr"], "settings": {"finetune.lr": 1e-2, "finetune.new_rows_lr": None}}
    later.write_text(json.dumps({"tuning": {**earlier, "methods": {"gti": record}}}))
    both_run = tmp_path / "both"
    both = f"{grid_run / 'results.json'},{later}"
    assert main(["compare", "--methods", "mean-rowlr,gti", "--choices", both,
                 *run_args(tiny_dataset, tiny_model_dir, both_run, "eval.beams=10")]) == 0
    tuning = read(both_run / "results.json")["tuning"]
    assert tuning["choices_from"] == both and tuning["untuned"] == [] and set(tuning["methods"]) == {"mean-rowlr", "gti"}
    assert read(both_run / "gti" / "finetune" / "manifest.json")["config"]["finetune"]["lr"] == 1e-2
    other_grid = tmp_path / "other_grid.json"
    other_grid.write_text(json.dumps({"tuning": {**earlier, "grid": {"finetune.lr": [1e-3]}, "methods": {}}}))
    # bad input: one line, exit 2, nothing claimed
    (tmp_path / "plain.json").write_text("{}")
    for flags, message in ((["--choices", str(tmp_path / "none.json")], "no such file"),
                           (["--choices", str(tmp_path / "plain.json")], "holds no grid record"),
                           (["--choices", f"{grid_run / 'results.json'},{grid_run / 'results.json'}"], "is also chosen in"),
                           (["--choices", f"{grid_run / 'results.json'},{other_grid}"], "differs from"),
                           (["--choices", str(grid_run / "results.json"), *grid], "--grid and --choices: give one")):
        out = tmp_path / "bad"
        assert main(["compare", "--methods", "mean-rowlr", *flags, *run_args(tiny_dataset, tiny_model_dir, out, "eval.beams=10")]) == 2
        assert message in capsys.readouterr().err and not out.exists()


def _logged(log, name, record):
    if record is not None:
        log.append(("chosen", name))
    return record


@pytest.mark.parametrize(("flags", "message"), [
    (["--grid", "finetune.lr"], "--grid 'finetune.lr': expected section.key=value,value"),
    (["--grid", "ground.lr=1e-3,1e-2"], "--grid ground.lr: only finetune.* and sasrec.* settings can be tuned"),
    (["--grid", "finetune.lr=1e-3,1e-3"], "--grid finetune.lr: a value is repeated"),
    (["--grid", "finetune.lr=1e-3,,1e-2"], "--grid finetune.lr: expected comma-separated values"),
    (["--grid", "finetune.lr=-1"], "--grid finetune.lr: finetune.lr: must be positive"),
    (["--grid", "finetune.lrr=1"], "unknown key 'lrr'"),
    (["--grid", "finetune.lr=1e-3", "--grid", "finetune.lr=1e-2"], "--grid finetune.lr: given twice"),
    (["--methods", "mean,popular"], "--methods: 'popular' is not one of"),
    (["--methods", "mean,mean"], "--methods: a method is named twice"),
])
def test_bad_grids_and_methods_are_one_line_errors(tiny_dataset, tiny_model_dir, tmp_path, capsys, flags, message):  # noqa: F811
    args = ["compare", *flags, *run_args(tiny_dataset, tiny_model_dir, tmp_path / "r", "eval.beams=10")]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error
    assert not (tmp_path / "r").exists()


def test_a_grid_needs_recall_at_10(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    assert main(["compare", "--grid", "finetune.lr=1e-3,1e-2", *run_args(tiny_dataset, tiny_model_dir, tmp_path / "r")]) == 2
    assert "set eval.beams to at least 10 (it is 5)" in capsys.readouterr().err


def test_gti_run_runs_an_anchor(tiny_dataset, tiny_model_dir, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out, "init.method=mostpop")]) == 0
    assert read(out / "metrics.json") == read(out / "mostpop" / "eval" / "metrics.json")
    assert sorted(p.name for p in (out / "mostpop").iterdir()) == ["eval", "fit", "metrics.json"]


def test_seeds_with_anchors_and_a_grid(tiny_dataset, tiny_model_dir, tmp_path):  # noqa: F811
    out = tmp_path / "seeds"
    args = ["compare", "--methods", "mostpop,sasrec,mean", "--seeds", "1,2", "--grid", "sasrec.lr=1e-3,1e-2",
            *run_args(tiny_dataset, tiny_model_dir, out, *SASREC, "eval.beams=10")]
    assert main(args) == 0
    results = read(out / "results.json")
    record = results["tuning"]["methods"]["sasrec"]
    assert list(results["tuning"]["methods"]) == ["sasrec"]  # mean has no sasrec.* key to tune, mostpop nothing
    for point in record["points"]:  # the search runs with the first seed
        assert read(out / point["folder"] / "fit" / "manifest.json")["config"]["sasrec"]["seed"] == 1
    for seed in (1, 2):
        config = read(out / "sasrec" / f"seed-{seed}" / "fit" / "manifest.json")["config"]["sasrec"]
        assert config["seed"] == seed and config["lr"] == record["settings"]["sasrec.lr"]
    for anchor in ("mostpop", "sasrec"):
        result = results["methods"][anchor]
        assert result["kind"] == "anchor" and result["train_tokens"] is None and set(result["by_seed"]) == {"1", "2"}
        values = [result["by_seed"][s]["metrics"]["recall@10"] for s in ("1", "2")]
        assert result["metrics"]["recall@10"] == pytest.approx(sum(values) / 2)
    mostpop = results["methods"]["mostpop"]["by_seed"]
    assert mostpop["1"]["metrics"] == mostpop["2"]["metrics"]  # popularity has no seed


def test_every_method_records_the_history_it_read(fair_run):
    out, _ = fair_run
    results = read(out / "results.json")
    config = results["config"]
    shared = min(config["data"]["max_history"], config["prompts"]["history"])
    assert results["methods"]["mostpop"].get("history") is None
    assert {name: results["methods"][name]["history"] for name in ("sasrec", "mean", "rows-first", "gti")} == \
        dict.fromkeys(("sasrec", "mean", "rows-first", "gti"), shared)
    assert read(out / "sasrec" / "fit" / "manifest.json")["config"]["history"] == shared
    assert "history items" in (out / "results.md").read_text()


def test_a_run_of_anchors_only_builds_no_sids(tiny_dataset, tiny_model_dir, tmp_path):  # noqa: F811
    out = tmp_path / "anchors"
    assert main(["compare", "--methods", "mostpop,sasrec", *run_args(tiny_dataset, tiny_model_dir, out, *SASREC,
                                                                       "prompts.history=3")]) == 0
    results = read(out / "results.json")
    assert not (out / "sids").exists() and results["sids"] == {}
    assert results["methods"]["sasrec"]["history"] == 3 and "no SIDs (anchors only)" in (out / "report.html").read_text()
