"""Killing `gti run` with SIGKILL at several points, then running it again, gives the uninterrupted result."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from test_pipeline_cli import run_args, tiny_dataset, tiny_model_dir  # noqa: F401 (fixtures)

STEPS = ["ground.steps=120", "finetune.steps=120", "train.checkpoint_every=4", "train.precision=float32"]


def _gti(dataset, model_dir, out) -> subprocess.Popen:
    command = [sys.executable, "-m", "gti.cli", "run", *run_args(dataset, model_dir, out, *STEPS, "init.method=gti")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _result(out) -> tuple[str, str, dict]:
    weights = load_file(out / "gti" / "finetune" / "model" / "model.safetensors")
    return ((out / "gti" / "eval" / "predictions.jsonl").read_text(), (out / "gti" / "eval" / "metrics.json").read_text(),
            weights)


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset, tiny_model_dir, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("whole")
    process = _gti(tiny_dataset, tiny_model_dir, out)
    assert process.wait(timeout=600) == 0, process.stderr.read()[-2000:]
    return _result(out)


def _reached(out, kill_when: tuple[str, int | None]) -> bool:
    """A file matching the pattern exists; for checkpoints, one of at least the given step.

    Only the newest checkpoint is kept, so "step N exists" holds for a few milliseconds on a tiny
    model; "a checkpoint at step >= N exists" holds until the stage ends.
    """
    pattern, min_step = kill_when
    found = list(out.glob(pattern))
    return bool(found) if min_step is None else any(int(path.name.rsplit("-", 1)[1]) >= min_step for path in found)


@pytest.mark.slow
@pytest.mark.parametrize("kill_when", [
    ("sids/manifest.json", None),  # between stages
    ("gti/ground.checkpoints/*/step-*[0-9]", 8),  # inside grounding
    ("gti/finetune.checkpoints/*/step-*[0-9]", 12),  # inside fine-tuning
])
def test_a_killed_run_finishes_with_the_uninterrupted_result(tiny_dataset, tiny_model_dir, tmp_path, uninterrupted, kill_when):  # noqa: F811
    out = tmp_path / "run"
    process = _gti(tiny_dataset, tiny_model_dir, out)
    deadline = time.monotonic() + 600
    while not _reached(out, kill_when) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run ended before the kill point"
    assert not (out / "gti" / "eval").exists()
    finals = [p for p in out.rglob("*") if p.name.startswith(".") and ".tmp-" in p.name]
    rerun = _gti(tiny_dataset, tiny_model_dir, out)
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read()[-2000:]
    predictions, metrics, weights = _result(out)
    assert predictions == uninterrupted[0] and metrics == uninterrupted[1]
    assert weights.keys() == uninterrupted[2].keys()
    assert all((weights[k] == uninterrupted[2][k]).all() for k in weights)
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name or p.name.endswith(".checkpoints")], finals
    pattern, min_step = kill_when
    if min_step is not None:  # the killed stage resumed from its checkpoint instead of starting over
        stage = pattern.split("/")[1].split(".")[0]
        manifest = json.loads((out / "gti" / stage / "manifest.json").read_text())
        assert manifest["resumed_from_step"] >= min_step
