"""Stage `evaluate`: trie-constrained beam search over the test users, ranking metrics and output measures.

`evaluate_into` is also what fine-tuning calls for its budget points and validation uses
for its beam-search measures, so every evaluation of a run is the same computation. With
`on="valid"` it ranks the validation targets instead (a learning-rate grid's points are chosen
on those, never on the test targets) and writes predictions and metrics only. In a cold-items split the usual
test files hold the warm test set (each prediction line says so), and `gti.stages.cold` adds both
test sets ranked by every decoding (`cold_start.json[l]`).
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from gti.analysis import plot_pool_metrics
from gti.anchors import popularity_counts
from gti.artifacts import atomic_write, run_stage, write_json
from gti.config import EvalConfig, RunConfig, TrainConfig, to_dict
from gti.data import Example, Split, subsample
from gti.device import compute_device, resolve_precision
from gti.errors import GtiError
from gti.lm.prompts import PromptBuilder
from gti.rec import catalog_coverage, evaluate, invalid_sid_rate, pool_metrics, pool_ranks, popularity_bias
from gti.sid import SemanticIds
from gti.stages.artifacts import EvalArtifact, Shared, Weights
from gti.stages.cold import cold_start_into, lm_ranker
from gti.stages.common import extended_backbone
from gti.train.loop import answer_loss, collate


def eval_key(config: EvalConfig, options: TrainConfig, cold: bool = False) -> dict:
    """The settings that change an evaluation's result (budget points are the fine-tuning stage's).

    `precision` is the evaluation's own (`eval.precision`, resolved on this machine); `options` is kept
    for callers that pass the training options. `cold_beams` counts only for a cold-items split (`cold`),
    so a leave-one-out evaluation keeps the key it had before that setting existed.
    """
    unused = ("at_steps",) if cold else ("at_steps", "cold_beams")
    settings = {key: value for key, value in to_dict(config).items() if key not in unused}
    return {**settings, "precision": resolve_precision(config.precision, compute_device())}


def eval_settings(config: RunConfig, on: str = "test") -> EvalConfig:
    """The evaluation settings for the test targets (`eval`), or for the validation targets: the same search on the
    `train.validate_users` validation users."""
    return config.eval if on == "test" else dataclasses.replace(config.eval, users=config.train.validate_users)


def eval_examples(config: EvalConfig, split: Split, on: str = "test") -> list[Example]:
    """The examples an evaluation ranks: `eval.users` test (or validation) targets drawn as `eval.sample` says
    (`gti.data.subsample`), in user order."""
    return subsample(split.test if on == "test" else split.valid, config.users, config.users_seed, config.sample)


def write_predictions(out: Path, examples: list[Example], ranks: list[int | None], top: list[list[int]],
                      item_ids: list[str], metrics: dict, test_set: str | None = None) -> None:
    """`predictions.jsonl` (per user: target, its rank, the first 10 items, and `test_set` when given: `warm`
    in a cold-items split) and `metrics.json` into `out`."""
    which = {} if test_set is None else {"test_set": test_set}
    lines = [
        json.dumps({"user_id": e.user_id, "target": e.target, "rank": rank, "top10": [item_ids[row] for row in rows[:10]],
                    **which})
        for e, rank, rows in zip(examples, ranks, top)
    ]
    atomic_write(out / "predictions.jsonl", "\n".join(lines) + "\n")
    write_json(out / "metrics.json", metrics)


def output_measures(top: list[list[int]], split: Split, item_ids: list[str]) -> dict:
    """Catalog coverage and popularity bias of the top-10 lists (popularity counted on the training sequences)."""
    counts = popularity_counts(split.train, item_ids).astype(np.float64)
    return {"catalog_coverage@10": catalog_coverage(top, len(item_ids), k=10),
            "popularity_bias@10": popularity_bias(top, counts, k=10)}


def evaluate_into(model, tokenizer, builder: PromptBuilder, config: EvalConfig, split: Split, sids: SemanticIds,
                  out: Path, on: str = "test") -> dict:
    """Beam-search the test users (`on="valid"`: the validation targets); write predictions and metrics, and for
    the test users output measures and pool curves, into `out` (and, for a cold-items split, the cold-start
    files of `gti.stages.cold`)."""
    examples = eval_examples(config, split, on)
    prompts = [builder.seqrec(e.history).prompt for e in examples]
    targets = [sids.row(e.target) for e in examples]
    result = evaluate(
        model, prompts, targets, sids.trie(), builder.level_ids, beams=config.beams, batch_size=config.batch_size,
        pad_token_id=tokenizer.pad_token_id, progress=True, precision=config.precision,
    )
    top = [[row for row, _ in ranked] for ranked in result.ranked]
    write_predictions(out, examples, result.ranks, top, sids.item_ids, result.metrics,
                      "warm" if split.is_cold and on == "test" else None)
    if on != "test":
        return {"users": len(examples), "split": on}
    if split.is_cold:
        cold_start_into(out, config, split, sids.item_ids, lm_ranker(model, tokenizer, builder, config, sids, split),
                        known={("warm", "beam"): top})
    write_json(out / "output.json", {
        **output_measures(top, split, sids.item_ids),
        "invalid_sid_rate": invalid_sid_rate(
            model, prompts[: config.invalid_users or None], sids.trie(), builder.level_ids, pad_token_id=tokenizer.pad_token_id,
            batch_size=config.batch_size, precision=config.precision,
        ),
        "invalid_sid_users": min(len(prompts), config.invalid_users or len(prompts)),
    })
    if config.pool_sizes:
        ranks_by_size = {
            size: pool_ranks(
                model, prompts, targets, sids.codes, builder.level_ids,
                min(size, len(sids.item_ids) - 1), len(sids.item_ids), config.seed, precision=config.precision,
            )
            for size in config.pool_sizes
        }
        pool = pool_metrics(ranks_by_size)
        write_json(out / "pool.json", pool)
        plot_pool_metrics(pool, out / "pool.png", ["recall@10", "ndcg@10"])
    return {"users": len(examples)}


def validator(config: RunConfig, builder: PromptBuilder, tokenizer, split: Split, sids: SemanticIds):
    """Validation for fine-tuning: answer loss and, unless monitoring loss, beam-search metrics; None when off."""
    options = config.train
    if not options.validate_every:
        return None
    examples = subsample(split.valid, options.validate_users, config.eval.users_seed, config.eval.sample)
    if not examples:
        raise GtiError("train.validate_every: the split has no validation examples (users need 3+ items)")
    prompts = [builder.seqrec(e.history).prompt for e in examples]
    samples = [builder.seqrec(e.history, e.target) for e in examples]
    batch_size = config.eval.batch_size

    def validate(model) -> dict[str, float]:
        total, count = 0.0, 0
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            batch = collate(chunk, tokenizer.pad_token_id).to(model.device)
            total += float(answer_loss(model, batch, reduction="sum"))
            count += sum(len(s.answer) for s in chunk)
        measures = {"loss": total / count}
        if options.monitor != "loss":
            result = evaluate(
                model, prompts, [sids.row(e.target) for e in examples], sids.trie(), builder.level_ids,
                beams=config.eval.beams, batch_size=batch_size, pad_token_id=tokenizer.pad_token_id,
                precision=config.eval.precision,
            )
            measures.update(result.metrics)
        return measures

    return validate


def run_eval(config: RunConfig, previous: Weights, shared: Shared, folder: Path, on: str = "test") -> EvalArtifact:
    """Evaluate the fine-tuned model of `previous` on the test (or, `on="valid"`, validation) targets into `folder` (once)."""
    def build(out: Path) -> dict:
        model, tokenizer, _, _ = extended_backbone(config.model, shared.sids.sids, previous.path)
        model.to(compute_device())
        with torch.no_grad():
            return evaluate_into(model, tokenizer, shared.builder(tokenizer, config.model.name), eval_settings(config, on),
                                 shared.data.split, shared.sids.sids, out, on)

    key = eval_key(eval_settings(config, on), config.train, shared.data.split.is_cold and on == "test") | (
        {} if on == "test" else {"split": on})
    manifest, _ = run_stage(folder, key, {"finetune": previous.key}, build)
    return EvalArtifact(manifest["key"], folder)
