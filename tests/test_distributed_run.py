"""`gti run` under torchrun with 2 CPU processes (DDP over gloo) trains like one process on the same global batch."""

import json
import os
import subprocess
import sys

import pytest

from test_pipeline_cli import run_args, tiny_dataset, tiny_model_dir  # noqa: F401 (fixtures)
from train.test_distributed import _free_port

SETTINGS = ["init.method=gti", "ground.steps=4", "finetune.steps=4", "ground.batch_size=8", "finetune.batch_size=8",
            "train.precision=float32"]


def _gti(prefix: list[str], dataset, model_dir, out) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    command = [*prefix, "-m", "gti.cli", "run", *run_args(dataset, model_dir, out, *SETTINGS)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-12000:]


@pytest.mark.slow
def test_gti_run_under_torchrun_matches_one_process(tiny_dataset, tiny_model_dir, tmp_path):  # noqa: F811
    _gti([sys.executable], tiny_dataset, tiny_model_dir, tmp_path / "one")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    _gti(torchrun, tiny_dataset, tiny_model_dir, tmp_path / "two")
    for stage in ("gti/ground", "gti/finetune"):
        one = json.loads((tmp_path / "one" / stage / "losses.json").read_text())
        two = json.loads((tmp_path / "two" / stage / "losses.json").read_text())
        if isinstance(one, dict):  # ground: {"ground": [...]}
            one, two = one["ground"], two["ground"]
        assert two == pytest.approx(one, abs=1e-4), stage
        assert json.loads((tmp_path / "two" / stage / "manifest.json").read_text())["processes"] == 2
    assert (tmp_path / "two" / "gti" / "eval" / "metrics.json").is_file()
    assert not [p for p in (tmp_path / "two").rglob("*") if ".tmp-" in p.name]
