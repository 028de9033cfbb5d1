"""Ctrl-C (SIGINT) inside a training stage leaves a checkpoint and the rerun says where it resumes; a run killed
with SIGKILL resumes from its last wall-time checkpoint and ends exactly like an uninterrupted run (tiny model).

That a resumed stage ends bit-identical is also tested in-process, quickly (tests/train/test_loop.py), so the
Ctrl-C test here checks the command's behaviour only; the SIGKILL one, marked slow, compares whole runs.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from test_pipeline_cli import run_args, tiny_dataset, tiny_model_dir  # noqa: F401 (fixtures)

STEPS = ["ground.steps=300", "finetune.steps=60", "train.precision=float32", "init.method=gti"]


def _gti(dataset, model_dir, out, *extra) -> subprocess.Popen:
    command = [sys.executable, "-m", "gti.cli", "run", *run_args(dataset, model_dir, out, *STEPS, *extra)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


def _result(out) -> tuple[str, str, dict]:
    weights = load_file(out / "gti" / "finetune" / "model" / "model.safetensors")
    return ((out / "gti" / "eval" / "predictions.jsonl").read_text(), (out / "gti" / "eval" / "metrics.json").read_text(),
            weights)


def _same(result, expected) -> bool:
    return result[:2] == expected[:2] and all((result[2][k] == expected[2][k]).all() for k in expected[2])


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset, tiny_model_dir, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("whole")
    status, _, err = _finish(_gti(tiny_dataset, tiny_model_dir, out, "train.checkpoint_minutes=0"))
    assert status == 0, err[-2000:]
    return _result(out)


def _wait_for(predicate, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not predicate() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before the interruption point"


def _logged_steps(out, stage: str) -> int:
    logs = list(out.glob(f"gti/{stage}.checkpoints/*/train_log.jsonl"))
    return len(logs[0].read_text().splitlines()) if logs else 0


def test_ctrl_c_in_grounding_saves_a_checkpoint_and_the_rerun_resumes_from_it(tiny_dataset, tiny_model_dir, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    process = _gti(tiny_dataset, tiny_model_dir, out, "train.checkpoint_minutes=0")  # only the Ctrl-C checkpoint
    _wait_for(lambda: _logged_steps(out, "ground") >= 20, process)
    process.send_signal(signal.SIGINT)
    status, _, err = _finish(process)
    assert status == 130 and err.rstrip().endswith("gti: interrupted"), err[-2000:]
    stopped = [line for line in err.splitlines() if line.startswith("ground: interrupted after step ")]
    assert len(stopped) == 1 and "saved a checkpoint in" in stopped[0], err[-2000:]
    step = int(stopped[0].split("after step ")[1].split(";")[0])
    assert 20 <= step < 300 and list(out.glob(f"gti/ground.checkpoints/*/step-{step:06d}"))
    assert not (out / "gti" / "ground").exists() and not list(out.rglob(".*tmp-*"))
    status, printed, err = _finish(_gti(tiny_dataset, tiny_model_dir, out, "train.checkpoint_minutes=0"))
    assert status == 0, err[-2000:]
    assert f"resuming ground from step {step} (" in printed
    assert json.loads((out / "gti" / "ground" / "manifest.json").read_text())["resumed_from_step"] == step
    assert (out / "gti" / "eval" / "metrics.json").is_file() and not list(out.rglob("*.checkpoints"))


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_from_its_last_wall_time_checkpoint(tiny_dataset, tiny_model_dir, tmp_path,  # noqa: F811
                                                                               uninterrupted):
    out = tmp_path / "run"
    often = "train.checkpoint_minutes=0.0002"  # every 12 ms: after nearly every step of the tiny model
    process = _gti(tiny_dataset, tiny_model_dir, out, often)
    _wait_for(lambda: any(int(p.name[5:]) >= 8 for p in out.glob("gti/finetune.checkpoints/*/step-*[0-9]")), process)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    status, printed, err = _finish(_gti(tiny_dataset, tiny_model_dir, out, often))
    assert status == 0, err[-2000:]
    resumed = json.loads((out / "gti" / "finetune" / "manifest.json").read_text())["resumed_from_step"]
    assert resumed >= 8 and f"resuming finetune (full) from step {resumed} (" in printed
    assert _same(_result(out), uninterrupted)
