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
