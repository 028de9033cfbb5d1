"""The one training loop, shared by grounding and fine-tuning.

Samples are (prompt ids, answer ids), tokenized once by the caller; the loss is the
cross-entropy over answer tokens only, averaged over every answer token of the step's
batch. Batches are left-padded so every answer ends at the last position, which lets
the model compute logits for the last few positions only (`logits_to_keep`): the LM
head over a 49k vocabulary is a fifth of a small model's cost per token.

A step's batch is a pure function of (seed, step), so a run resumed from a checkpoint
sees exactly the batches an uninterrupted run would. The batch is split across
processes (DDP under `accelerate launch`) and then into `grad_accum` micro-batches;
every piece's loss is normalized by the answer-token count of the whole batch, so the
gradient is the same however the batch is split.
"""

import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm import tqdm
from transformers import PreTrainedModel

from gti.config import TrainConfig
from gti.device import autocast, resolve_precision
from gti.distributed import accelerator as make_accelerator
from gti.errors import GtiError
from gti.lm.padding import left_pad
from gti.lm.prompts import Sample
from gti.train.memory import check_fits

LENGTH_GROUP_BATCHES = 64  # length grouping sorts windows of this many batches


@dataclass
class Batch:
    """A left-padded batch; answers occupy the last positions of each row."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    position_ids: torch.Tensor  # (B, T)
    answer_mask: torch.Tensor  # (B, A+1): which of the last A+1 next-token targets are answer tokens
    tokens: int

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.position_ids.to(device),
                     self.answer_mask.to(device), self.tokens)


def collate(samples: Sequence[Sample], pad_id: int) -> Batch:
    """Left-pad prompt+answer sequences and mark the answer targets."""
    input_ids, attention_mask, position_ids = left_pad([s.prompt + s.answer for s in samples], pad_id)  # (B, T)
    answer_len = max(len(s.answer) for s in samples)
    answer_mask = torch.zeros((len(samples), answer_len + 1), dtype=torch.bool)
    for row, sample in enumerate(samples):
        # logits at the last answer_len+1 positions predict tokens [T-answer_len, T+1); the final one predicts nothing
        answer_mask[row, answer_len - len(sample.answer): answer_len] = True
    return Batch(input_ids, attention_mask, position_ids, answer_mask, int(attention_mask.sum()))


def answer_loss(model: PreTrainedModel, batch: Batch, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over the answer tokens of a batch: their `mean` or their `sum`."""
    keep = batch.answer_mask.shape[1]
    logits = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=keep,
        use_cache=False,
    ).logits  # (B, keep, V)
    targets = batch.input_ids[:, -keep + 1:]  # (B, keep-1)
    mask = batch.answer_mask[:, :-1]  # (B, keep-1)
    return torch.nn.functional.cross_entropy(logits[:, :-1][mask].float(), targets[mask], reduction=reduction)


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """One epoch's batches of sample indices: shuffled with (seed, epoch); a short tail is dropped.

    With `group_by_length`, windows of LENGTH_GROUP_BATCHES batches are sorted by length
    before cutting, then the batches are shuffled again, so batches hold similar lengths
    (little padding) and still come in random order.
    """
    rng = random.Random(f"{seed}/{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        window = batch_size * LENGTH_GROUP_BATCHES
        order = [i for start in range(0, len(order), window) for i in sorted(order[start:start + window], key=lengths.__getitem__)]
    batches = [order[start:start + batch_size] for start in range(0, max(1, len(order) - batch_size + 1), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


class BatchPlan:
    """The batch of any step: a pure function of (seed, step), epochs computed on demand."""

    def __init__(self, samples: Sequence[Sample], batch_size: int, seed: int, group_by_length: bool):
        self.lengths = [len(s.prompt) + len(s.answer) for s in samples]
        self.batch_size, self.seed, self.group_by_length = batch_size, seed, group_by_length
        self.epochs: dict[int, list[list[int]]] = {}
        self.per_epoch = len(self._epoch(0))

    def _epoch(self, epoch: int) -> list[list[int]]:
        if epoch not in self.epochs:
            self.epochs = {epoch: epoch_batches(self.lengths, self.batch_size, self.seed, epoch, self.group_by_length)}
        return self.epochs[epoch]

    def indices(self, step: int) -> list[int]:
        """Sample indices of `step`'s batch, sorted by length (micro-batches then pad little)."""
        rows = self._epoch(step // self.per_epoch)[step % self.per_epoch]
        return sorted(rows, key=self.lengths.__getitem__)


@dataclass
class TrainResult:
    """What a training run did."""

    losses: list[float] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    validations: list[dict] = field(default_factory=list)
    """One {"step": ..., measure: value} per validation."""
    best_step: int | None = None
    """Step whose weights were kept (validation runs only)."""
    stopped_early: bool = False
    resumed_from: int | None = None
    """Step of the checkpoint the run resumed from."""
    precision: str = "float32"
    processes: int = 1
    """Processes that shared each batch (DDP)."""

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def final_loss(self) -> float | None:
        """Mean loss of the last 10 steps (None when nothing trained)."""
        tail = self.losses[-10:]
        return round(sum(tail) / len(tail), 4) if tail else None


def _named(model: PreTrainedModel, parameters: list[torch.nn.Parameter]) -> dict[str, torch.nn.Parameter]:
    """Names of the trained parameters (a tied matrix appears once)."""
    wanted = {id(p) for p in parameters}
    return {name: p for name, p in model.named_parameters() if id(p) in wanted}


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


def _better(value: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return value < best if monitor == "loss" else value > best


def _take_snapshot(snapshot: Callable, step: int, model, result: TrainResult, accelerator) -> None:
    """Run `snapshot` on the main process as the loop's docstring says, leaving the training state as it was."""
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    model.eval()
    if accelerator.is_main_process:
        with torch.no_grad(), autocast(result.precision, accelerator.device):
            snapshot(step, accelerator.unwrap_model(model), result)
    accelerator.wait_for_everyone()
    model.train()
    torch.set_rng_state(rng)
    if cuda_rng is not None:
        torch.cuda.set_rng_state_all(cuda_rng)


def train(
    model: PreTrainedModel,
    samples: Sequence[Sample],
    parameters: list[torch.nn.Parameter],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    pad_id: int,
    seed: int = 0,
    warmup_steps: int = 0,
    max_grad_norm: float = 1.0,
    description: str = "train",
    on_step: Callable[[int, float], None] | None = None,
    options: TrainConfig | None = None,
    workdir: Path | None = None,
    validate: Callable[[PreTrainedModel], dict[str, float]] | None = None,
    schedule: str = "linear",
    snapshot_steps: Sequence[int] = (),
    snapshot: Callable[[int, PreTrainedModel, TrainResult], None] | None = None,
) -> TrainResult:
    """Train `parameters` of `model` for `steps` AdamW steps (weight decay 0) on `samples`.

    Args:
        model, samples, parameters: what trains, on what (`parameters` may be a subset).
        steps, lr, batch_size: optimizer steps, peak learning rate, prompts per step (across processes).
        pad_id: padding token id.
        seed: fixes the batches and the torch RNG.
        warmup_steps: linear warmup, then `schedule`.
        schedule: after warmup, `linear` (decay to zero at `steps`) or `constant`.
        max_grad_norm: gradient clipping.
        on_step: called with (step, loss) after every step.
        options: precision, gradient accumulation, length grouping, checkpoints, logs, validation.
        workdir: folder for checkpoints and `train_log.jsonl`; a run finding a checkpoint there resumes it.
        validate: returns validation measures for the model; called every `options.validate_every`
            steps, the best weights by `options.monitor` are kept and early stopping applies.
        snapshot_steps, snapshot: after each of these steps (before the last), `snapshot(step, model,
            result)` runs on the main process with the model in eval mode, under no_grad and the run's
            autocast. The torch RNG is restored afterwards and its time is not counted in
            `result.seconds`, so training goes on exactly as without it.
    """
    options = options or TrainConfig()
    result = TrainResult()
    if steps == 0 or not samples:
        return result
    accelerator = make_accelerator()
    world, rank = accelerator.num_processes, accelerator.process_index
    result.processes = world
    if min(batch_size, len(samples)) < world * options.grad_accum:
        raise GtiError(f"a batch of {min(batch_size, len(samples))} prompts cannot be split over processes x "
                       f"train.grad_accum ({world} x {options.grad_accum}); raise the batch size or lower grad_accum")
    sharded = accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")
    if sharded and workdir is not None and options.checkpoint_every:
        raise GtiError(f"train.checkpoint_every: checkpoints are written for one process or DDP, not "
                       f"{accelerator.distributed_type.name}; set it to 0 or launch with configs/accelerate/ddp.yaml")
    result.precision = resolve_precision(options.precision, accelerator.device)
    rows = math.ceil(min(batch_size, len(samples)) / (world * options.grad_accum))
    check_fits(model, parameters, rows, max(len(s.prompt) + len(s.answer) for s in samples), result.precision,
               accelerator.device, description)
    torch.manual_seed(seed)
    adamw = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)  # Accelerate wraps it; checkpoints hold this one
    named = _named(model, parameters)

    checkpoints = Checkpoints(workdir) if workdir is not None else None
    start_step, best_value, best_weights, bad = 0, None, None, 0
    latest = checkpoints.latest() if checkpoints is not None else None
    if latest is not None:
        state, best_weights = checkpoints.load(latest, named, adamw)
        start_step = result.resumed_from = state["step"]
        result.losses, result.tokens, result.seconds = state["losses"], state["tokens"], state["seconds"]
        result.validations, result.best_step = state["validations"], state["best_step"]
        best_value, bad = state["best_value"], state["bad"]
        if accelerator.is_main_process:
            print(f"{description}: resuming from {latest}")
    log = TrainLog(workdir, options.tensorboard, start_step, accelerator.is_main_process)

    if schedule not in ("linear", "constant"):
        raise GtiError(f"schedule: {schedule!r} is not one of linear, constant")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        return max(0.0, (steps - step) / max(1, steps - warmup_steps))

    model, optimizer = accelerator.prepare(model, adamw)
    model.train()
    plan = BatchPlan(samples, batch_size, seed, options.group_by_length)
    start = time.perf_counter() - result.seconds
    progress = tqdm(range(start_step, steps), desc=description, leave=False, initial=start_step, total=steps,
                    disable=not accelerator.is_main_process)
    for step in progress:
        if result.stopped_early:
            break
        indices = plan.indices(step)
        answer_tokens = sum(len(samples[i].answer) for i in indices)
        mine = indices[rank::world]
        pieces = [mine[i::options.grad_accum] for i in range(options.grad_accum)]
        total, tokens = torch.zeros((), device=accelerator.device), 0
        for number, piece in enumerate(pieces):
            batch = collate([samples[i] for i in piece], pad_id).to(accelerator.device)
            sync = number == len(pieces) - 1 or world == 1
            with (nullcontext() if sync else accelerator.no_sync(model)), autocast(result.precision, accelerator.device):
                loss_sum = answer_loss(model, batch, reduction="sum")
            # DDP averages gradients over processes, hence the factor `world`
            accelerator.backward(loss_sum * world / answer_tokens)
            total += loss_sum.detach()
            tokens += batch.tokens
        step_lr = lr * factor(step)
        for group in optimizer.param_groups:
            group["lr"] = step_lr
        accelerator.clip_grad_norm_(parameters, max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if world > 1:
            total = accelerator.reduce(total, reduction="sum")
            tokens = int(accelerator.reduce(torch.tensor(tokens, device=accelerator.device), reduction="sum"))
        value = float(total) / answer_tokens
        if not math.isfinite(value):
            raise FloatingPointError(f"{description}: loss became {value} at step {step}; lower the learning rate")
        result.losses.append(value)
        result.tokens += tokens
        result.seconds = time.perf_counter() - start
        progress.set_postfix(loss=f"{value:.3f}", tok_s=f"{result.tokens_per_second:.0f}")
        log.write({"step": step, "loss": value, "lr": step_lr, "tokens": result.tokens,
                   "tokens_per_s": round(result.tokens_per_second, 1), "seconds": round(result.seconds, 2)})
        if on_step is not None:
            on_step(step, value)
        done = step + 1
        if validate is not None and options.validate_every and (done % options.validate_every == 0 or done == steps):
            model.eval()
            with torch.no_grad(), autocast(result.precision, accelerator.device):
                measures = validate(accelerator.unwrap_model(model))
            model.train()
            if options.monitor not in measures:
                raise GtiError(f"train.monitor: {options.monitor!r} is not a validation measure ({', '.join(measures)})")
            result.validations.append({"step": done, **measures})
            log.write({"step": step, **{f"validation/{k}": v for k, v in measures.items()}})
            if _better(measures[options.monitor], best_value, options.monitor):
                best_value, bad, result.best_step = measures[options.monitor], 0, done
                best_weights = {name: p.detach().cpu().clone() for name, p in named.items()}
            else:
                bad += 1
                result.stopped_early = bool(options.patience) and bad >= options.patience
        if snapshot is not None and done in snapshot_steps and done < steps:
            paused = time.perf_counter()
            _take_snapshot(snapshot, done, model, result, accelerator)
            start += time.perf_counter() - paused  # evaluation is not training time
        if checkpoints is not None and options.checkpoint_every and done % options.checkpoint_every == 0 and done < steps:
            if accelerator.is_main_process:
                checkpoints.save(done, named, adamw, {
                    "losses": result.losses, "tokens": result.tokens, "seconds": result.seconds,
                    "validations": result.validations, "best_step": result.best_step,
                    "best_value": best_value, "bad": bad,
                }, best_weights)
            accelerator.wait_for_everyone()
    progress.close()
    log.close()
    if best_weights is not None:  # keep the best validated weights
        with torch.no_grad():
            for name, parameter in named.items():
                parameter.copy_(best_weights[name].to(parameter.device))
    model = accelerator.unwrap_model(model)
    model.eval()
    return result
