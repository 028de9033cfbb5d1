"""Two CPU processes (DDP over gloo started by torchrun, or FSDP started by accelerate launch with
configs/accelerate/fsdp.yaml) train like one process on the same global batch."""

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


def _fsdp_launch(*overrides: str) -> list[str]:
    """accelerate launch with the shipped FSDP config, 2 processes, the tiny Llama's layer class."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "configs/accelerate/fsdp.yaml"),
            "--num_processes", "2", "--main_process_port", str(_free_port()),
            "--fsdp_transformer_layer_cls_to_wrap", "LlamaDecoderLayer", *overrides]


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


@pytest.mark.slow
def test_fsdp_config_on_two_cpu_processes_matches_one_process(tmp_path):
    """configs/accelerate/fsdp.yaml over gloo, with the two options that need a GPU turned off."""
    single = _run([sys.executable, str(WORKER), str(tmp_path / "one"), "1"], tmp_path / "one")
    launch = _fsdp_launch("--fsdp_sync_module_states", "false", "--fsdp_cpu_ram_efficient_loading", "false")
    sharded = _run(launch + [str(WORKER), str(tmp_path / "two"), "1"], tmp_path / "two")
    assert sharded[0] == 2 and sharded[3] == "FSDP"
    assert sharded[1] == pytest.approx(single[1], abs=1e-5)
    for name, value in single[2].items():
        assert torch.allclose(sharded[2][name], value, atol=1e-5), name


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal concerns machines without a GPU")
def test_fsdp_config_as_shipped_is_refused_clearly_without_a_gpu(tmp_path):
    done = subprocess.run(_fsdp_launch() + [str(WORKER), str(tmp_path / "two"), "1"], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    assert "FSDP on a machine without a GPU: fsdp_sync_module_states and fsdp_cpu_ram_efficient_loading must be false" \
        in done.stderr


def test_fsdp_options_that_need_a_device_are_named(monkeypatch):
    from gti import distributed
    from gti.errors import GtiError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_SYNC_MODULE_STATES", "true")
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "false")
    with pytest.raises(GtiError, match=r"fsdp_sync_module_states must be false .* --fsdp_sync_module_states false"):
        distributed.accelerator()
