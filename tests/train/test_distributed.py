"""Two CPU processes (DDP over gloo, started by torchrun) train like one process on the same global batch."""

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


def _run(command: list[str], out: Path) -> tuple[list[float], dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKER.parents[1]), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "losses.json").read_text())
    return record["world"], record["losses"], load_file(out / "params.safetensors")


@pytest.mark.parametrize("grad_accum", [2])
def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path, grad_accum):
    single = _run([sys.executable, str(WORKER), str(tmp_path / "one"), "1"], tmp_path / "one")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    double = _run(torchrun + [str(WORKER), str(tmp_path / "two"), str(grad_accum)], tmp_path / "two")
    assert (single[0], double[0]) == (1, 2)  # really two processes
    assert double[1] == pytest.approx(single[1], abs=1e-5)
    for name, value in single[2].items():
        assert torch.allclose(double[2][name], value, atol=1e-5), name
