"""CPU smoke tests of every CLI verb and of the pipeline's caching, on a tiny model and dataset."""

import gzip
import json
import random
import shutil

import pytest

from gti.cli import main
from gti.rec import metric_ci, paired_test, per_user_values
from tiny_models import make_tiny_model, make_tiny_tokenizer

WORDS = "movie comedy drama action story toy love war night day man woman city house game red blue green".split()


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """A normalized-format dataset: 40 items, 12 users with 4-8 interactions each."""
    folder = tmp_path_factory.mktemp("dataset")
    rng = random.Random(0)
    with gzip.open(folder / "items.jsonl.gz", "wt") as items:
        for i in range(40):
            title = " ".join(rng.sample(WORDS, 3))
            items.write(json.dumps({"item_id": f"i{i}", "title": title, "categories": [rng.choice(WORDS)], "brand": None}) + "\n")
    lines = ["user_id\titem_id\ttimestamp"]
    for user in range(12):
        for step, item in enumerate(rng.sample(range(40), rng.randint(4, 8))):
            lines.append(f"u{user}\ti{item}\t{1000 + step}")
    (folder / "interactions.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    tokenizer = make_tiny_tokenizer()
    make_tiny_model(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_args(dataset, model_dir, out, *extra):
    settings = [
        f"data.source={json.dumps(str(dataset))}", f"model.name={json.dumps(str(model_dir))}",
        "sids.levels=2", "sids.codes=4", "ground.steps=2", "ground.batch_size=4",
        "finetune.steps=2", "finetune.batch_size=4", "eval.beams=5", *extra,
    ]
    return [arg for s in settings for arg in ("--set", s)] + ["--out", str(out)]


def test_data_stats_json(tiny_dataset, capsys):
    assert main(["data", "stats", str(tiny_dataset), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["items"] == 40 and stats["users"] == 12
    assert stats["interactions"] == sum(1 for _ in open(tiny_dataset / "interactions.tsv")) - 1


def test_bad_dataset_path_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gti: error:") and "missing" in err and "\n" not in err


def test_sids_verb_writes_ids_report_and_codebooks(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "sids"
    assert main(["sids", str(tiny_dataset), "--out", str(out), "--levels", "2", "--codes", "4"]) == 0
    sids = json.loads((out / "sids.json").read_text())["sids"]
    assert len(sids) == 40 and len({tuple(v) for v in sids.values()}) == 40
    report = json.loads((out / "report.json").read_text())
    assert 0.0 <= report["collision_rate"] <= 1.0 and len(report["distinct_codes_per_level"]) == 2
    assert (out / "codebooks.safetensors").is_file()
    assert report["semantic_check"]["items"] == 40
    assert main(["sids", str(tiny_dataset), "--out", str(out)]) == 2  # refuses to overwrite
    capsys.readouterr()
    assert main(["sids", str(tiny_dataset), "--out", str(tmp_path / "big"), "--codes", "64"]) == 2
    error = capsys.readouterr().err.strip()
    assert f"dataset {tiny_dataset.name} has 40 items, fewer than sids.codes = 64" in error and "\n" not in error
    vae = tmp_path / "vae"
    args = ["--levels", "2", "--codes", "4", "--quantizer", "rq-vae", "--collisions", "reassign"]
    assert main(["sids", str(tiny_dataset), "--out", str(vae), *args]) == 0
    vae_sids = json.loads((vae / "sids.json").read_text())["sids"]
    assert len({tuple(v) for v in vae_sids.values()}) == 40
    assert json.loads((vae / "report.json").read_text())["quantizer"] == "rq-vae"


def test_run_writes_every_stage_and_reuses_them(tiny_dataset, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out, "init.method=gti")]) == 0
    for stage in ["data", "sids", "gti/init", "gti/ground", "gti/finetune", "gti/eval"]:
        manifest = json.loads((out / stage / "manifest.json").read_text())
        assert {"config", "inputs", "versions", "seconds", "key"} <= set(manifest)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"recall@1", "recall@5", "ndcg@5", "mrr"}
    assert len((out / "gti/eval/predictions.jsonl").read_text().splitlines()) == 12
    before = {p: p.stat().st_mtime_ns for p in out.rglob("manifest.json")}
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out, "init.method=gti")]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("manifest.json")} == before
    # another config in the same folder is refused, and nothing is touched
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out, "init.method=gti", "finetune.steps=3")]) == 2
    assert {p: p.stat().st_mtime_ns for p in out.rglob("manifest.json")} == before


def test_compare_shares_sids_and_reports_diagnostics(tiny_dataset, tiny_model_dir, tmp_path):
    out = tmp_path / "compare"
    assert main(["compare", "--methods", "mean,text,gti", *run_args(tiny_dataset, tiny_model_dir, out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == ["mean", "text", "gti"]
    assert set(results["methods"]["gti"]["diagnostics"]) == {"init", "grounded", "finetuned"}
    assert set(results["methods"]["mean"]["diagnostics"]) == {"init", "finetuned"}
    assert results["methods"]["mean"]["diagnostics"]["init"]["effective_rank"] == pytest.approx(1.0, abs=1e-3)
    assert results["methods"]["text"]["diagnostics"]["init"]["effective_rank"] > 1.5
    # every figure recomputed from the predictions it summarizes
    predictions = {
        method: [json.loads(line) for line in (out / method / "eval" / "predictions.jsonl").read_text().splitlines()]
        for method in ("mean", "gti")
    }
    assert [p["user_id"] for p in predictions["gti"]] == [p["user_id"] for p in predictions["mean"]]
    ranks = {method: [p["rank"] for p in rows] for method, rows in predictions.items()}
    gti = results["methods"]["gti"]
    assert {"recall@1", "recall@5", "ndcg@5", "mrr"} <= set(gti["metrics"])
    for name in gti["metrics"]:
        assert gti["metrics"][name] == pytest.approx(per_user_values(ranks["gti"], name).mean(), abs=1e-12)
        assert tuple(gti["metrics_ci"][name]) == pytest.approx(metric_ci(per_user_values(ranks["gti"], name), name))
    assert set(gti["paired_vs_mean"]) == {"recall@10", "ndcg@10"}
    for name in ("recall@10", "ndcg@10"):
        expected = paired_test(per_user_values(ranks["gti"], name), per_user_values(ranks["mean"], name))
        assert gti["paired_vs_mean"][name]["diff"] == pytest.approx(expected["diff"], abs=1e-12)
        assert gti["paired_vs_mean"][name]["p_value"] == pytest.approx(expected["p_value"], abs=1e-12)
    top = {item for p in predictions["gti"] for item in p["top10"]}
    assert gti["output"]["catalog_coverage@10"] == pytest.approx(len(top) / 40)
    for p in predictions["gti"]:  # 5 beams: 5 ranked items, the rank is the target's place among them
        assert len(p["top10"]) == 5
        assert p["rank"] == (p["top10"].index(p["target"]) + 1 if p["target"] in p["top10"] else None)
    invalid = gti["output"]["invalid_sid_rate"] * len(predictions["gti"])  # a count of users
    assert invalid == pytest.approx(round(invalid), abs=1e-9)
    assert "p vs mean" in (out / "results.md").read_text()
    assert (out / "spectrum.png").stat().st_size > 0 and (out / "effective_rank.png").stat().st_size > 0
    assert (out / "gti" / "ground" / "cosine_heatmap.png").stat().st_size > 0


def test_invalid_sid_rate_on_the_first_invalid_users(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    args = run_args(tiny_dataset, tiny_model_dir, out, "init.method=gti")
    assert main(["run", *args, "--set", "eval.invalid_users=3"]) == 0
    first = json.loads((out / "gti" / "eval" / "output.json").read_text())
    metrics = (out / "gti" / "eval" / "metrics.json").read_text()
    users = len((out / "gti" / "eval" / "predictions.jsonl").read_text().splitlines())
    assert users > 3 and first["invalid_sid_users"] == 3
    assert first["invalid_sid_rate"] * 3 == pytest.approx(round(first["invalid_sid_rate"] * 3), abs=1e-9)
    assert main(["run", *args, "--set", "eval.invalid_users=0", "--overwrite"]) == 0  # 0: every evaluated user
    every = json.loads((out / "gti" / "eval" / "output.json").read_text())
    assert every["invalid_sid_users"] == users
    assert every["invalid_sid_rate"] * users == pytest.approx(round(every["invalid_sid_rate"] * users), abs=1e-9)
    assert (out / "gti" / "eval" / "metrics.json").read_text() == metrics  # a diagnostic: the ranking is unchanged
    assert main(["run", *args, "--set", "eval.invalid_users=-1", "--overwrite"]) == 2
    assert "eval.invalid_users: must not be negative" in capsys.readouterr().err


def test_unknown_config_key_fails_cleanly(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[finetune]\nstepz = 3\n")
    assert main(["run", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "stepz" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_ground_verb_then_run_reuses_grounding(tiny_dataset, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "ground"
    args = run_args(tiny_dataset, tiny_model_dir, out, "init.method=gti")
    assert main(["ground", *args]) == 0
    assert (out / "gti/ground/new_rows.safetensors").is_file() and not (out / "gti/finetune").exists()
    ground_manifest = (out / "gti/ground/manifest.json").stat().st_mtime_ns
    assert main(["run", *args]) == 0
    assert (out / "gti/ground/manifest.json").stat().st_mtime_ns == ground_manifest
    assert main(["diagnose", str(out)]) == 0
    diagnostics = json.loads((out / "diagnostics.json").read_text())
    assert set(diagnostics["gti"]) == {"init", "grounded", "finetuned"}
    assert (out / "effective_rank.png").is_file()
    assert main(["diagnose", str(tmp_path / "nowhere")]) == 2


def test_unfrozen_phase_saves_a_whole_model(tiny_dataset, tiny_model_dir, tmp_path):
    out = tmp_path / "unfrozen"
    extra = ["init.method=gti", "ground.unfreeze_steps=2", "eval.pool_sizes=[5, 10]"]
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out, *extra)]) == 0
    pool = json.loads((out / "gti/eval/pool.json").read_text())
    assert list(pool) == ["5", "10"] and pool["5"]["recall@5"] >= pool["10"]["recall@5"]
    assert (out / "gti/eval/pool.png").stat().st_size > 0
    assert (out / "gti/ground/model/model.safetensors").is_file()
    losses = json.loads((out / "gti/ground/losses.json").read_text())
    assert len(losses["ground"]) == 2 and len(losses["unfrozen"]) == 2
    assert (out / "gti/eval/metrics.json").is_file()


def test_validation_early_stopping_and_training_logs(tiny_dataset, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    args = run_args(tiny_dataset, tiny_model_dir, out, "finetune.steps=12", "train.validate_every=2",
                    "train.patience=1", "train.monitor=loss", "train.grad_accum=2", "train.checkpoint_every=3")
    assert main(["run", *args]) == 0
    manifest = json.loads((out / "mean" / "finetune" / "manifest.json").read_text())
    validations = manifest["validations"]
    assert validations and all("loss" in v for v in validations)
    best = min(validations, key=lambda v: v["loss"])
    assert manifest["best_step"] == best["step"]
    assert manifest["stopped_early"] == (validations[-1]["step"] < 12)
    log = [json.loads(line) for line in (out / "mean" / "finetune" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == list(range(validations[-1]["step"]))
    assert not (out / "mean" / "finetune.checkpoints").exists()  # removed once the stage is done


def test_compare_over_seeds_writes_an_html_report_and_finishes_only_what_is_missing(tiny_dataset, tiny_model_dir, tmp_path):
    out = tmp_path / "seeds"
    args = ["compare", "--methods", "mean,gti,gti+lcrec", "--seeds", "1,2", *run_args(tiny_dataset, tiny_model_dir, out)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [1, 2]
    for method in ("mean", "gti", "gti+lcrec"):
        result = results["methods"][method]
        assert set(result["by_seed"]) == {"1", "2"} and result["folder"] == f"{method}/seed-1"
        seed_values = [result["by_seed"][s]["metrics"]["recall@5"] for s in ("1", "2")]
        assert result["metrics"]["recall@5"] == pytest.approx(sum(seed_values) / 2)
        low, high = result["metrics_ci"]["recall@5"]
        assert low <= result["metrics"]["recall@5"] <= high
    ground = [json.loads((out / "gti" / f"seed-{s}" / "ground" / "manifest.json").read_text()) for s in (1, 2)]
    assert ground[0]["config"]["ground"]["seed"] == 1 and ground[1]["config"]["ground"]["seed"] == 2
    assert not (out / "gti+lcrec" / "seed-1" / "ground").exists()  # grounding shared with gti
    page = (out / "report.html").read_text()
    assert "Against mean initialization" in page and "data:image/png;base64," in page and "training loss" in page
    # an interrupted comparison: only the missing stage is computed again
    shutil.rmtree(out / "gti" / "seed-2" / "eval")
    kept = (out / "gti" / "seed-2" / "finetune" / "manifest.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "gti" / "seed-2" / "eval" / "manifest.json").is_file()
    assert (out / "gti" / "seed-2" / "finetune" / "manifest.json").stat().st_mtime_ns == kept
    assert json.loads((out / "results.json").read_text())["methods"]["gti"]["metrics"] == results["methods"]["gti"]["metrics"]


def test_bad_seeds_are_one_line(tiny_dataset, tiny_model_dir, tmp_path, capsys):
    assert main(["compare", "--seeds", "1,x", *run_args(tiny_dataset, tiny_model_dir, tmp_path / "r")]) == 2
    assert "--seeds: expected comma-separated integers" in capsys.readouterr().err
