"""Two CPU processes (DDP over gloo, started by torchrun) train like one process on the same global batch;
an FSDP launch on a machine without a GPU is refused clearly."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ROOT = WORKER.parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKER.parents[1]), os.environ.get("PYTHONPATH", "")]),
       "OMP_NUM_THREADS": "1"}


def _run(command: list[str], out: Path) -> tuple[list[float], dict]:
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "losses.json").read_text())
    return record["world"], record["losses"], load_file(out / "params.safetensors"), record["kind"]


@pytest.mark.parametrize("grad_accum", [2])
def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path, grad_accum):
    single = _run([sys.executable, str(WORKER), str(tmp_path / "one"), "1"], tmp_path / "one")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    double = _run(torchrun + [str(WORKER), str(tmp_path / "two"), str(grad_accum)], tmp_path / "two")
    assert (single[0], double[0]) == (1, 2)  # really two processes
    assert double[3] == "MULTI_CPU"
    assert double[1] == pytest.approx(single[1], abs=1e-5)
    for name, value in single[2].items():
        assert torch.allclose(double[2][name], value, atol=1e-5), name


def test_two_processes_take_wall_time_checkpoints_at_the_same_steps(tmp_path):
    """The main process's clock decides for every process: no rank waits at a checkpoint the others skip."""
    single = _run([sys.executable, str(WORKER), str(tmp_path / "one"), "1"], tmp_path / "one")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    work = tmp_path / "work"
    double = _run(torchrun + [str(WORKER), str(tmp_path / "two"), "1", str(work)], tmp_path / "two")
    assert double[0] == 2 and [p.name for p in work.glob("step-*")] == ["step-000003"]
    assert double[1] == pytest.approx(single[1], abs=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal concerns machines without a GPU")
@pytest.mark.parametrize("overrides", [[], ["--fsdp_sync_module_states", "false", "--fsdp_cpu_ram_efficient_loading", "false"]])
def test_the_fsdp_config_is_refused_clearly_without_a_gpu(tmp_path, overrides):
    """As shipped, Accelerate itself would stop with an error naming no option; with the two device options
    off it would train as plain DDP (no sharding). Both are refused before training, in one line."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(ROOT / "configs/accelerate/fsdp.yaml"), "--num_processes", "2", "--main_process_port",
              str(_free_port()), "--fsdp_transformer_layer_cls_to_wrap", "LlamaDecoderLayer", *overrides]
    done = subprocess.run(launch + [str(WORKER), str(tmp_path / "two"), "1"], env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode != 0 and not (tmp_path / "two" / "losses.json").exists()
    assert "FSDP needs a GPU: Accelerate shards only across accelerator devices" in done.stderr


def test_an_fsdp_launch_without_a_gpu_is_refused(monkeypatch):
    from gti import distributed
    from gti.errors import GtiError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(GtiError, match=r"^FSDP needs a GPU: .* launch CPU runs with configs/accelerate/ddp\.yaml or torchrun$"):
        distributed.accelerator()
