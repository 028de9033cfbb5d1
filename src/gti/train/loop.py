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

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedModel

from gti.config import TrainConfig
from gti.device import autocast, compute_device, deterministic, resolve_precision
from gti.distributed import accelerator as make_accelerator
from gti.errors import GtiError
from gti.lm.prompts import Sample
from gti.progress import Progress
from gti.train.batches import LENGTH_GROUP_BATCHES, Batch, BatchPlan, answer_loss, collate, collate_packed, epoch_batches  # noqa: F401 (the loop's batching, importable from here)
from gti.train.memory import check_fits
from gti.train.records import Checkpoints, TrainLog, checkpoint_due, interruptible
from gti.train.rows import RowGroup


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
    deterministic: bool = False
    """Whether deterministic algorithms were on (`train.deterministic`)."""

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


def _better(value: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return value < best if monitor == "loss" else value > best


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
    rows: RowGroup | None = None,
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
        rows: rows (of matrices in `parameters`) that step at their own peak learning rate, with the
            same warmup and schedule (see `RowGroup`); None: everything steps at `lr`.
    """
    options = options or TrainConfig()
    if steps == 0 or not samples:
        return TrainResult()
    if schedule not in ("linear", "constant"):
        raise GtiError(f"schedule: {schedule!r} is not one of linear, constant")
    with deterministic(options.deterministic, compute_device()) as exact:
        result = _train(model, samples, parameters, steps=steps, lr=lr, batch_size=batch_size, pad_id=pad_id,
                        seed=seed, warmup_steps=warmup_steps, max_grad_norm=max_grad_norm, on_step=on_step,
                        description=description, options=options, workdir=workdir, validate=validate,
                        schedule=schedule, snapshot_steps=snapshot_steps, snapshot=snapshot, rows=rows)
    result.deterministic = exact
    return result


def _train(model, samples, parameters, *, steps, lr, batch_size, pad_id, seed, warmup_steps, max_grad_norm, on_step,
           description, options, workdir, validate, schedule, snapshot_steps, snapshot, rows) -> TrainResult:
    """`train` inside its determinism context."""
    run = _setup(model, samples, parameters, steps=steps, lr=lr, batch_size=batch_size, pad_id=pad_id, seed=seed,
                 warmup_steps=warmup_steps, max_grad_norm=max_grad_norm, description=description, options=options,
                 workdir=workdir, schedule=schedule, row_group=rows)
    progress = Progress(steps, description, "step", run.start_step, enabled=run.accelerator.is_main_process)
    with interruptible() as interrupted, progress:
        for step in range(run.start_step, steps):
            if run.result.stopped_early:
                break
            value = _step(run, step)
            progress.update(step + 1, loss=f"{value:.3f}", tokens_per_s=f"{run.result.tokens_per_second:.0f}")
            if on_step is not None:
                on_step(step, value)
            done = step + 1
            out_of_time = bool(options.max_seconds) and run.result.seconds >= options.max_seconds
            if validate is not None and options.validate_every and (
                    done % options.validate_every == 0 or done == steps or out_of_time):
                with _paused(run):
                    _validate(run, validate, step)
            run.result.stopped_early |= out_of_time
            if snapshot is not None and done in snapshot_steps and done < steps:
                with _paused(run):
                    _take_snapshot(run, snapshot, done)
            _checkpoint_if_due(run, done, interrupted())
    return _finish(run)


@dataclass
class _Run:
    """One training run's state between steps."""

    model: PreTrainedModel  # as prepared by Accelerate (DDP-wrapped under a launcher)
    samples: Sequence[Sample]
    parameters: list[torch.nn.Parameter]
    named: dict[str, torch.nn.Parameter]
    adamw: torch.optim.AdamW  # the optimizer checkpoints hold (Accelerate wraps it as `optimizer`)
    optimizer: object
    accelerator: object
    options: TrainConfig
    plan: BatchPlan
    log: TrainLog
    checkpoints: Checkpoints | None
    result: TrainResult
    steps: int
    lr: float
    warmup_steps: int
    schedule: str
    max_grad_norm: float
    pad_id: int
    description: str
    rows: RowGroup | None = None
    start_step: int = 0
    clock: float = 0.0  # perf_counter origin of the training time (pauses move it forward)
    last_checkpoint: float = 0.0  # monotonic time of the last checkpoint (or of the start)
    best_value: float | None = None
    best_weights: dict[str, torch.Tensor] | None = None
    bad: int = 0

    def factor(self, step: int) -> float:
        """The learning rate's multiplier at `step`: warmup, then constant or a linear decay to zero."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        return max(0.0, (self.steps - step) / max(1, self.steps - self.warmup_steps))


def _setup(model, samples, parameters, *, steps, lr, batch_size, pad_id, seed, warmup_steps, max_grad_norm,
           description, options, workdir, schedule, row_group) -> _Run:
    """Checks, precision, memory, optimizer, resume from the latest checkpoint, the batch plan."""
    accelerator = make_accelerator()
    world = accelerator.num_processes
    result = TrainResult(processes=world)
    if min(batch_size, len(samples)) < world * options.grad_accum:
        raise GtiError(f"a batch of {min(batch_size, len(samples))} prompts cannot be split over processes x "
                       f"train.grad_accum ({world} x {options.grad_accum}); raise the batch size or lower grad_accum")
    sharded = accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")
    if sharded and workdir is not None and options.checkpoint_every:
        raise GtiError(f"train.checkpoint_every: checkpoints are written for one process or DDP, not "
                       f"{accelerator.distributed_type.name}; set it to 0 or launch with configs/accelerate/ddp.yaml")
    if sharded and workdir is not None and options.checkpoint_minutes and accelerator.is_main_process:
        print(f"{description}: no checkpoints under {accelerator.distributed_type.name} (train.checkpoint_minutes "
              "is ignored); an interrupted stage starts over", file=sys.stderr)
    if sharded and row_group is not None:
        raise GtiError(f"finetune.new_rows_lr: needs whole embedding matrices on every process (one process or DDP), "
                       f"not {accelerator.distributed_type.name}; unset it or launch with configs/accelerate/ddp.yaml")
    result.precision = resolve_precision(options.precision, accelerator.device)
    rows = math.ceil(min(batch_size, len(samples)) / (world * options.grad_accum))
    check_fits(model, parameters, rows, max(len(s.prompt) + len(s.answer) for s in samples), result.precision,
               accelerator.device, description)
    torch.manual_seed(seed)
    groups = [{"params": parameters, "peak_lr": lr}]
    named = _named(model, parameters)
    if row_group is not None:
        groups.append({"params": row_group.prepare(accelerator.device), "lr": row_group.lr, "peak_lr": row_group.lr})
        named.update(row_group.named())
    adamw = torch.optim.AdamW(groups, lr=lr, weight_decay=0.0)
    checkpoints = Checkpoints(workdir) if workdir is not None and not sharded else None
    latest = checkpoints.latest() if checkpoints is not None else None
    run_state: dict = {}
    if latest is not None:
        state, best_weights = checkpoints.load(latest, named, adamw)
        if row_group is not None:
            row_group.write_back()
        result.resumed_from = state["step"]
        result.losses, result.tokens, result.seconds = state["losses"], state["tokens"], state["seconds"]
        result.validations, result.best_step = state["validations"], state["best_step"]
        run_state = {"start_step": state["step"], "best_value": state["best_value"], "bad": state["bad"],
                     "best_weights": best_weights}
        if accelerator.is_main_process:
            print(f"resuming {description} from step {state['step']} ({latest})", flush=True)
    log = TrainLog(workdir, options.tensorboard, run_state.get("start_step", 0), accelerator.is_main_process)
    prepared, optimizer = accelerator.prepare(model, adamw)
    prepared.train()
    return _Run(
        model=prepared, samples=samples, parameters=parameters, named=named, adamw=adamw, optimizer=optimizer,
        accelerator=accelerator, options=options, plan=BatchPlan(samples, batch_size, seed, options.group_by_length),
        log=log, checkpoints=checkpoints, result=result, steps=steps, lr=lr, warmup_steps=warmup_steps,
        schedule=schedule, max_grad_norm=max_grad_norm, pad_id=pad_id, description=description, rows=row_group,
        clock=time.perf_counter() - result.seconds, last_checkpoint=time.monotonic(), **run_state,
    )


def _step(run: _Run, step: int) -> float:
    """One optimizer step on `step`'s batch (split over processes and micro-batches); returns its loss."""
    accelerator, options, result = run.accelerator, run.options, run.result
    world, rank = accelerator.num_processes, accelerator.process_index
    indices = run.plan.indices(step)
    answer_tokens = sum(len(run.samples[i].answer) for i in indices)
    mine = indices[rank::world]
    pieces = [mine[i::options.grad_accum] for i in range(options.grad_accum)]
    total, tokens = torch.zeros((), device=accelerator.device), 0
    for number, piece in enumerate(pieces):
        batch = (collate_packed if options.pack else collate)([run.samples[i] for i in piece], run.pad_id).to(accelerator.device)
        sync = number == len(pieces) - 1 or world == 1
        with (nullcontext() if sync else accelerator.no_sync(run.model)), autocast(result.precision, accelerator.device):
            loss_sum = answer_loss(run.model, batch, reduction="sum")
        # DDP averages gradients over processes, hence the factor `world`
        accelerator.backward(loss_sum * world / answer_tokens)
        total += loss_sum.detach()
        tokens += batch.tokens
    step_lr = run.lr * run.factor(step)
    for group in run.optimizer.param_groups:
        group["lr"] = group["peak_lr"] * run.factor(step)
    accelerator.clip_grad_norm_(run.parameters, run.max_grad_norm)
    if run.rows is not None:
        run.rows.take_gradients()
    run.optimizer.step()
    if run.rows is not None:
        run.rows.write_back()
    run.optimizer.zero_grad(set_to_none=True)
    if world > 1:
        total = accelerator.reduce(total, reduction="sum")
        tokens = int(accelerator.reduce(torch.tensor(tokens, device=accelerator.device), reduction="sum"))
    value = float(total) / answer_tokens
    if not math.isfinite(value):
        raise FloatingPointError(f"{run.description}: loss became {value} at step {step}; lower the learning rate")
    result.losses.append(value)
    result.tokens += tokens
    result.seconds = time.perf_counter() - run.clock
    rows_lr = {} if run.rows is None else {"new_rows_lr": run.rows.lr * run.factor(step)}
    run.log.write({"step": step, "loss": value, "lr": step_lr, **rows_lr, "tokens": result.tokens,
                   "tokens_per_s": round(result.tokens_per_second, 1), "seconds": round(result.seconds, 2)})
    return value


@contextmanager
def _paused(run: _Run) -> Iterator[None]:
    """Time spent inside is not training time (validation, budget-point evaluation)."""
    paused = time.perf_counter()
    try:
        yield
    finally:
        run.clock += time.perf_counter() - paused


def _validate(run: _Run, validate: Callable, step: int) -> None:
    """Validation measures after `step`; keep the best weights by `train.monitor`, count patience."""
    options, result, done = run.options, run.result, step + 1
    run.model.eval()
    with torch.no_grad(), autocast(result.precision, run.accelerator.device):
        measures = validate(run.accelerator.unwrap_model(run.model))
    run.model.train()
    if options.monitor not in measures:
        raise GtiError(f"train.monitor: {options.monitor!r} is not a validation measure ({', '.join(measures)})")
    result.validations.append({"step": done, "train_tokens": result.tokens, "train_seconds": round(result.seconds, 2),
                               **measures})
    run.log.write({"step": step, **{f"validation/{k}": v for k, v in measures.items()}})
    if _better(measures[options.monitor], run.best_value, options.monitor):
        run.best_value, run.bad, result.best_step = measures[options.monitor], 0, done
        run.best_weights = {name: p.detach().cpu().clone() for name, p in run.named.items()}
    else:
        run.bad += 1
        result.stopped_early = bool(options.patience) and run.bad >= options.patience


def _take_snapshot(run: _Run, snapshot: Callable, step: int) -> None:
    """Run `snapshot` on the main process as `train`'s docstring says, leaving the training state as it was."""
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    run.model.eval()
    if run.accelerator.is_main_process:
        with torch.no_grad(), autocast(run.result.precision, run.accelerator.device):
            snapshot(step, run.accelerator.unwrap_model(run.model), run.result)
    run.accelerator.wait_for_everyone()
    run.model.train()
    torch.set_rng_state(rng)
    if cuda_rng is not None:
        torch.cuda.set_rng_state_all(cuda_rng)


def _checkpoint_if_due(run: _Run, done: int, interrupted: bool) -> None:
    """Save a checkpoint every `train.checkpoint_every` steps, every `train.checkpoint_minutes`, and on an
    interruption (then raise KeyboardInterrupt). Under several processes the main process's clock and
    every process's interruption decide, so that all of them save at the same step."""
    due = checkpoint_due(run.options, done, run.steps, run.last_checkpoint)
    if run.accelerator.num_processes > 1:
        flags = torch.tensor([int(due and run.accelerator.is_main_process), int(interrupted)], device=run.accelerator.device)
        due, interrupted = (bool(flag) for flag in run.accelerator.reduce(flags, reduction="sum").tolist())
    if not (due or interrupted):
        return
    if run.checkpoints is not None:
        with _paused(run):
            _checkpoint(run, done)
        run.last_checkpoint = time.monotonic()
    if interrupted:
        if run.accelerator.is_main_process:
            saved = (f"saved a checkpoint in {run.checkpoints.latest()}; run the same command again to resume"
                     if run.checkpoints is not None else "no checkpoint (none can be written here)")
            print(f"{run.description}: interrupted after step {done}; {saved}", file=sys.stderr, flush=True)
        raise KeyboardInterrupt


def _checkpoint(run: _Run, done: int) -> None:
    """Save weights, optimizer moments, RNG and the loop state after `done` steps (main process)."""
    result = run.result
    if run.accelerator.is_main_process:
        run.checkpoints.save(done, run.named, run.adamw, {
            "losses": result.losses, "tokens": result.tokens, "seconds": result.seconds,
            "validations": result.validations, "best_step": result.best_step,
            "best_value": run.best_value, "bad": run.bad,
        }, run.best_weights)
    run.accelerator.wait_for_everyone()


def _finish(run: _Run) -> TrainResult:
    """Close the log, keep the best validated weights, hand the model back unwrapped in eval mode."""
    run.log.close()
    if run.best_weights is not None:
        with torch.no_grad():
            for name, parameter in run.named.items():
                parameter.copy_(run.best_weights[name].to(parameter.device))
        if run.rows is not None:
            run.rows.write_back()
    run.accelerator.unwrap_model(run.model).eval()
    return run.result
