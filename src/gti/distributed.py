"""One process or many: how the pipeline behaves under `accelerate launch` or torchrun.

Every process runs the same pipeline. Training stages run on every process (DDP, each
on its share of every batch); every other stage, and every file write, runs on the main
process while the others wait. The run folder must be on a filesystem all processes see.
"""

import os
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accelerate import Accelerator

# Processes wait at a barrier while the main process evaluates or builds SIDs: allow hours, not the 10-minute default.
BARRIER_TIMEOUT = timedelta(hours=6)


def distributed() -> bool:
    """True when started by a launcher with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@cache
def _state():
    import torch
    from accelerate import PartialState  # creates the process group on first use

    # without cpu=True accelerate ignores a torchrun launch on a machine with no GPU (and runs each process alone)
    return PartialState(cpu=not torch.cuda.is_available(), timeout=BARRIER_TIMEOUT)


def accelerator() -> "Accelerator":
    """An Accelerator on the shared process state (DDP over gloo on CPU-only machines, NCCL on GPUs).

    FSDP needs a GPU: Accelerate (1.15) shards only across accelerator devices. Launched with an
    FSDP config on a machine without one, it either stops inside its FSDP plugin ("There are
    currently no available devices found, ...", when fsdp_sync_module_states or
    fsdp_cpu_ram_efficient_loading is on) or quietly trains as plain DDP with no sharding (both
    off; tested). Either way the launch is refused here, with what to use instead.

    Raises:
        GtiError: an FSDP launch on a machine with no CUDA device.
    """
    import torch
    from accelerate import Accelerator

    from gti.errors import GtiError

    cpu = not torch.cuda.is_available()
    if cpu and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        raise GtiError(
            "FSDP needs a GPU: Accelerate shards only across accelerator devices, and on CPU processes it would "
            "run DDP without sharding; launch CPU runs with configs/accelerate/ddp.yaml or torchrun"
        )
    _state()
    return Accelerator(cpu=cpu)


def is_main() -> bool:
    """True in the process that writes files (the only one when not distributed)."""
    return not distributed() or _state().is_main_process


def wait() -> None:
    """Barrier: every process reaches this point before any goes on (no-op in one process)."""
    if distributed():
        _state().wait_for_everyone()


def finish() -> None:
    """Let every process reach the end, then tear the process group down (a process leaving early aborts gloo)."""
    if not distributed():
        return  # one process: nothing to tear down (and no torch to import for a verb that never needed it)
    import torch

    if torch.distributed.is_initialized():
        wait()
        torch.distributed.destroy_process_group()
