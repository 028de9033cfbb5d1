"""Helpers the model stages share: the extended backbone, saving weights, diagnostics, training stages."""

import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from gti.analysis import diagnose, plot_cosine_heatmap
from gti.artifacts import run_stage, work_dir, write_json
from gti.config import ModelConfig, TrainConfig
from gti.device import compute_device, resolve_precision
from gti.distributed import is_main
from gti.layout import RunLayout
from gti.lm.backbone import load_backbone
from gti.lm.vocab import embedding_matrices, extend_vocabulary
from gti.sid import SemanticIds, load_codebooks
from gti.stages.artifacts import SidsArtifact
from gti.train.loop import TrainResult


def extended_backbone(model_config: ModelConfig, sids: SemanticIds, start: Path | None = None):
    """The backbone with the SID tokens added; new rows (or the whole model) taken from a stage's output.

    Args:
        start: a `new_rows.safetensors` file, a model folder, or None (rows left to `initialize`).

    Returns:
        (model, tokenizer, new token ids, number of old tokens).
    """
    if start is not None and start.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(start)
        model = AutoModelForCausalLM.from_pretrained(start, dtype=torch.float32, use_safetensors=True).eval()
        new_ids = torch.tensor(tokenizer.convert_tokens_to_ids(sids.new_tokens()), dtype=torch.long)
        return model, tokenizer, new_ids, int(new_ids.min())
    model, tokenizer = load_backbone(model_config.name, model_config.trust_remote_code, config=model_config)
    n_old = len(tokenizer)
    new_ids = extend_vocabulary(model, tokenizer, sids.new_tokens())
    if start is not None:
        rows = load_file(start)
        with torch.no_grad():
            for i, weight in enumerate(embedding_matrices(model)):
                weight[new_ids] = rows[f"matrix_{i}"].to(weight.dtype)
    return model, tokenizer, new_ids, n_old


def save_rows(model, new_ids: torch.Tensor, path: Path) -> None:
    """The new rows of every embedding matrix (input, and output when untied) as safetensors."""
    save_file({f"matrix_{i}": w.detach()[new_ids].contiguous() for i, w in enumerate(embedding_matrices(model))}, path)


def save_model(model, tokenizer, folder: Path) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def write_diagnostics(model, tokenizer, new_ids: torch.Tensor, sids: SidsArtifact, out: Path, stage: Path) -> None:
    """The new rows' diagnostics (`diagnostics.json`) and a cosine heatmap, in a stage's temporary folder `out`.

    Args:
        stage: the stage's final folder (names the method and stage in the heatmap's title).
    """
    embeddings = model.get_input_embeddings().weight.detach()
    diagnostics = diagnose(
        embeddings, new_ids, sids.sids.codes, sids.sids.codebook_sizes,
        codebooks=load_codebooks(sids.codebooks), decode=lambda i: tokenizer.decode([int(i)]),
    )
    write_json(out / "diagnostics.json", diagnostics)
    plot_cosine_heatmap(embeddings, new_ids, out / "cosine_heatmap.png",
                        title=f"{RunLayout.describe(stage)}: cosine similarity of old and new (SID) tokens")


def train_key(options: TrainConfig, validation: bool) -> dict:
    """The [train] settings that change a training stage's result (checkpoints and logs do not)."""
    device = compute_device()
    key = {"precision": resolve_precision(options.precision, device), "grad_accum": options.grad_accum,
           "group_by_length": options.group_by_length,
           "deterministic": device.type == "cpu" if options.deterministic is None else options.deterministic}
    if validation and options.validate_every:
        key.update(validate_every=options.validate_every, validate_users=options.validate_users,
                   monitor=options.monitor, patience=options.patience)
    return key


def training_summary(result: TrainResult) -> dict:
    """What a training stage's manifest records about its training, compute first."""
    summary = {"train_tokens": result.tokens, "train_seconds": round(result.seconds, 3),
               "tokens_per_second": round(result.tokens_per_second, 1), "final_loss": result.final_loss,
               "precision": result.precision, "processes": result.processes, "deterministic": result.deterministic}
    if result.resumed_from is not None:
        summary["resumed_from_step"] = result.resumed_from
    if result.validations:
        summary.update(validations=result.validations, best_step=result.best_step, stopped_early=result.stopped_early)
    return summary


def training_stage(folder: Path, config: dict, inputs: dict, options: TrainConfig,
                   build: Callable[[Path, Path], dict]) -> dict:
    """`run_stage` for a training stage: `build(out, work)` gets a work folder for checkpoints and logs.

    An interrupted stage resumes from the checkpoint in its work folder; the training log is
    copied into the stage folder; the work folder goes once the stage is done (unless
    `train.keep_checkpoints`).

    Returns:
        The stage's manifest.
    """
    work = work_dir(folder, config, inputs)

    def build_with_work(out: Path) -> dict:
        summary = build(out, work)
        for log in () if not is_main() else ("train_log.jsonl", "tensorboard", "unfrozen/train_log.jsonl"):
            if (work / log).is_file():
                shutil.copy2(work / log, out / log.replace("/", "_"))
            elif (work / log).is_dir():
                shutil.copytree(work / log, out / log)
        return summary

    manifest, _ = run_stage(folder, config, inputs, build_with_work, collective=True)
    if is_main() and not options.keep_checkpoints:
        shutil.rmtree(work.parent, ignore_errors=True)
    return manifest
