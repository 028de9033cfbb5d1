"""What a training run leaves behind while it runs: checkpoints to resume from and a per-step log; and how it
stops when interrupted (after its step, with a checkpoint)."""

import json
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gti.errors import GtiError


class Checkpoints:
    """`workdir/step-NNNNNN/` folders: trained weights, optimizer moments and loop state.

    Written under a temporary name and renamed, so a folder under its final name is
    complete; only the newest is kept. Everything is safetensors or JSON (nothing pickled).
    """

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)

    def latest(self) -> Path | None:
        found = sorted(self.workdir.glob("step-*[0-9]"))
        return found[-1] if found else None

    def save(self, step: int, named: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer,
             state: dict, best: dict[str, torch.Tensor] | None) -> None:
        final = self.workdir / f"step-{step:06d}"
        partial = self.workdir / f".step-{step:06d}.partial"
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        save_file({name: p.detach().cpu().contiguous() for name, p in named.items()}, partial / "weights.safetensors")
        moments = {}
        names = {id(p): name for name, p in named.items()}
        for parameter, values in optimizer.state.items():
            for key, value in values.items():
                moments[f"{names[id(parameter)]}::{key}"] = value.detach().cpu().reshape(value.shape).contiguous()
        save_file(moments, partial / "optimizer.safetensors")
        save_file({"torch": torch.get_rng_state()}, partial / "rng.safetensors")
        if best is not None:
            save_file({name: t.contiguous() for name, t in best.items()}, partial / "best.safetensors")
        (partial / "state.json").write_text(json.dumps({**state, "step": step}))
        partial.rename(final)
        for old in self.workdir.glob("step-*[0-9]"):
            if old != final:
                shutil.rmtree(old)

    def load(self, folder: Path, named: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer) -> tuple[dict, dict | None]:
        """Restore weights, optimizer moments and RNG; return the loop state and the best weights."""
        try:
            weights = load_file(folder / "weights.safetensors")
            moments = load_file(folder / "optimizer.safetensors")
            state = json.loads((folder / "state.json").read_text())
        except (OSError, ValueError, SafetensorError) as error:
            raise GtiError(f"{folder}: unreadable checkpoint ({error}); delete it to start the stage over") from None
        if set(weights) != set(named):
            raise GtiError(f"{folder}: checkpoint holds other parameters than this run trains; delete it to start over")
        with torch.no_grad():
            for name, parameter in named.items():
                parameter.copy_(weights[name])
        for name, parameter in named.items():
            values = {key.split("::", 1)[1]: value for key, value in moments.items() if key.split("::", 1)[0] == name}
            if values:
                optimizer.state[parameter] = {k: v.to(parameter.device) for k, v in values.items()}
        torch.set_rng_state(load_file(folder / "rng.safetensors")["torch"])
        best = load_file(folder / "best.safetensors") if (folder / "best.safetensors").is_file() else None
        return state, best


class TrainLog:
    """Per-step records in `workdir/train_log.jsonl` (and TensorBoard when asked), main process only."""

    def __init__(self, workdir: Path | None, tensorboard: bool, resume_step: int, enabled: bool):
        self.path = Path(workdir) / "train_log.jsonl" if workdir is not None and enabled else None
        self.writer = None
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if self.path.is_file():  # drop what was logged after the checkpoint being resumed
            kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] < resume_step]
        self.path.write_text("".join(line + "\n" for line in kept))
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise GtiError("train.tensorboard: the `tensorboard` package is not installed; "
                               "pip install 'gti[tensorboard]' or set train.tensorboard=false") from None
            self.writer = SummaryWriter(str(Path(workdir) / "tensorboard"), purge_step=resume_step)

    def write(self, record: dict) -> None:
        if self.path is None:
            return
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@contextmanager
def interruptible() -> Iterator[Callable[[], bool]]:
    """Inside, the first SIGINT (Ctrl-C) or SIGTERM only sets a flag, read by the callable it yields: the loop
    finishes its step, saves a checkpoint and stops. A second one stops at once. Outside the main thread
    (where Python delivers signals) this does nothing."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(number, _frame) -> None:
        if caught:
            raise KeyboardInterrupt
        caught.append(number)
        print("\ngti: stopping after this training step to save a checkpoint (again to stop at once)", file=sys.stderr,
              flush=True)

    previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(caught)
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def checkpoint_due(options, done: int, steps: int, last_checkpoint: float) -> bool:
    """Whether `train.checkpoint_every` or `train.checkpoint_minutes` (since the monotonic time `last_checkpoint`)
    asks for a checkpoint after `done` of `steps` steps (never after the last: the stage is then saved whole)."""
    if done >= steps:
        return False
    by_steps = bool(options.checkpoint_every) and done % options.checkpoint_every == 0
    return by_steps or bool(options.checkpoint_minutes) and time.monotonic() - last_checkpoint >= 60 * options.checkpoint_minutes
