"""The demo config end to end with the real default model, on a small slice."""

import json
from pathlib import Path

import pytest

from gti.cli import main

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.toml"


@pytest.mark.slow
def test_demo_config_on_a_slice(tmp_path):
    out = tmp_path / "demo"
    settings = ["data.users=40", "sids.codes=16", "ground.steps=4", "finetune.steps=3", "eval.users=6"]
    args = ["demo", str(DEMO_CONFIG), "--out", str(out)] + [a for s in settings for a in ("--set", s)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    mean, gti = results["methods"]["mean"], results["methods"]["gti"]
    assert set(mean["metrics"]) >= {"recall@10", "ndcg@10", "recall@1", "ndcg@5"}
    assert mean["diagnostics"]["init"]["effective_rank"] == pytest.approx(1.0, abs=1e-3)
    assert mean["diagnostics"]["init"]["mean_pairwise_cosine"] == pytest.approx(1.0, abs=1e-3)
    assert gti["diagnostics"]["grounded"]["effective_rank"] > gti["diagnostics"]["init"]["effective_rank"] + 0.1
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
