"""The demo config end to end with the real default model, on a small slice."""

import json
from pathlib import Path

import pytest

from gti.cli import main
from gti.rec import metric_ci, per_user_values

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.toml"


@pytest.mark.slow
def test_demo_config_on_a_slice(tmp_path):
    out = tmp_path / "demo"
    settings = ["data.users=40", "sids.codes=16", "ground.steps=4", "finetune.steps=3", "eval.users=6",
                "sasrec.epochs=3"]
    args = ["demo", str(DEMO_CONFIG), "--out", str(out)] + [a for s in settings for a in ("--set", s)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == ["mostpop", "sasrec", "mean", "gti"]
    mean, gti = results["methods"]["mean"], results["methods"]["gti"]
    for method, result in results["methods"].items():
        folder = out / result["folder"]
        predictions = [json.loads(line) for line in (folder / "eval" / "predictions.jsonl").read_text().splitlines()]
        assert len(predictions) == 6
        for p in predictions:  # the rank is the target's place in the beam list (20 beams), None outside it
            assert p["rank"] is None or 1 <= p["rank"] <= 20
            if p["rank"] is not None and p["rank"] <= 10:
                assert p["top10"][p["rank"] - 1] == p["target"]
            else:
                assert p["target"] not in p["top10"]
        ranks = [p["rank"] for p in predictions]
        metrics = result["metrics"]
        assert set(metrics) >= {"recall@10", "ndcg@10", "recall@1", "ndcg@5", "mrr"}
        for name, value in metrics.items():  # every value recomputed exactly from the ranks
            assert value == pytest.approx(per_user_values(ranks, name).mean(), abs=1e-12), (method, name)
            assert tuple(result["metrics_ci"][name]) == pytest.approx(metric_ci(per_user_values(ranks, name), name))
            assert 0.0 <= value <= 1.0
        ks = sorted(int(name.split("@")[1]) for name in metrics if name.startswith("recall@"))
        assert [metrics[f"recall@{k}"] for k in ks] == sorted(metrics[f"recall@{k}"] for k in ks)  # monotone in k
        assert all(metrics[f"ndcg@{k}"] <= metrics[f"recall@{k}"] + 1e-12 for k in ks)
        output = result["output"]
        if method in ("mostpop", "sasrec"):  # anchors: no fine-tuning, no generation to be invalid
            assert output["invalid_sid_rate"] is None and result["train_tokens"] is None
            continue
        losses = json.loads((folder / "finetune" / "losses.json").read_text())
        assert len(losses) == 3 and result["finetune_final_loss"] == pytest.approx(sum(losses) / 3, abs=1e-4)
        assert output["catalog_coverage@10"] == pytest.approx(
            len({item for p in predictions for item in p["top10"]}) / results["sids"]["items"]
        )
        assert output["invalid_sid_rate"] * 6 == pytest.approx(round(output["invalid_sid_rate"] * 6), abs=1e-9)
    for result in (mean, gti):  # both start from the mean of the old rows: one point
        assert result["diagnostics"]["init"]["effective_rank"] == pytest.approx(1.0, abs=1e-3)
        assert result["diagnostics"]["init"]["mean_pairwise_cosine"] == pytest.approx(1.0, abs=1e-3)
    assert gti["diagnostics"]["grounded"]["effective_rank"] > gti["diagnostics"]["init"]["effective_rank"] + 0.1
    assert gti["diagnostics"]["grounded"]["mean_pairwise_cosine"] < 0.999
    assert set(gti["diagnostics"]) == {"init", "grounded", "finetuned"}
    assert (out / "effective_rank.png").is_file() and (out / "results.md").is_file()


@pytest.mark.slow
def test_same_config_and_seed_give_identical_sids_split_and_metrics(tmp_path):
    settings = ["data.users=30", "sids.codes=16", "ground.steps=3", "finetune.steps=3", "eval.users=5"]
    for name in ("first", "second"):
        args = ["run", str(DEMO_CONFIG), "--out", str(tmp_path / name), "--set", "init.method=gti"]
        assert main(args + [a for s in settings for a in ("--set", s)]) == 0
    first, second = tmp_path / "first", tmp_path / "second"
    for artifact in ("data/split.json", "sids/sids.json", "gti/ground/new_rows.safetensors",
                     "gti/eval/metrics.json", "gti/eval/predictions.jsonl"):
        assert (first / artifact).read_bytes() == (second / artifact).read_bytes(), artifact
    manifest = json.loads((first / "gti" / "finetune" / "manifest.json").read_text())
    assert manifest["config"]["finetune"]["seed"] == 0 and manifest["versions"]["torch"]
