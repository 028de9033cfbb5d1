"""Run by test_distributed.py, alone, under torchrun or under accelerate launch: a few training steps on a tiny model.

Writes the losses and the final parameters (safetensors) of rank 0 to the folder given as argv[1]; argv[2] is
train.grad_accum; with argv[3], checkpoints go there after every step (wall-time checkpoints, agreed by all ranks).
"""

import json
import random
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from gti.config import TrainConfig
from gti.distributed import accelerator, distributed, finish
from gti.lm.prompts import Sample
from gti.train.loop import train
from tiny_models import make_tiny_model


def main() -> None:
    out = Path(sys.argv[1])
    grad_accum = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    workdir = Path(sys.argv[3]) if len(sys.argv) > 3 else None  # given: a checkpoint after every step (wall time)
    rng = random.Random(0)
    samples = [
        Sample([rng.randrange(4, 80) for _ in range(rng.randrange(2, 12))], [rng.randrange(4, 80) for _ in range(rng.randrange(1, 4))])
        for _ in range(32)
    ]
    model = make_tiny_model(80)
    result = train(
        model, samples, list(model.parameters()), steps=4, lr=1e-2, batch_size=8, pad_id=0, seed=0,
        options=TrainConfig(precision="float32", grad_accum=grad_accum, checkpoint_minutes=1e-9), workdir=workdir,
    )
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    kind = accelerator().distributed_type.name if distributed() else "NO"  # DDP (MULTI_CPU) or FSDP
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        finish()
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / "losses.json").write_text(json.dumps({"world": world, "kind": kind, "losses": result.losses}))
    save_file({name: p.detach().contiguous() for name, p in model.named_parameters()}, out / "params.safetensors")
    finish()


if __name__ == "__main__":
    main()
