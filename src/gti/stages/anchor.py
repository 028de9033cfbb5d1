"""Stages of the non-LM anchors (`mostpop`, `sasrec`): `fit` on the training sequences, then `evaluate`.

Their evaluation writes the files of the LM methods' (`predictions.jsonl`, `metrics.json`,
`output.json`): the whole catalog ranked per user (ties by `gti.rec.ties.tie_key` over catalog
rows), the top `eval.beams` items kept, a target beyond them a miss, so metrics, bootstrap CIs
and paired tests mean the same as for beam search. Nothing is excluded from the ranking (the LM
methods' beam search does not exclude history items either). Catalog rows are the dataset's item
order, which is also the SIDs' row order. Anchors have no invalid SIDs (`invalid_sid_rate` null)
and no pool curves. In a cold-items split they write the cold-start files too
(`gti.stages.cold`), ranking the same scores by every decoding (`gti.rec.cold.rank_scores`):
mostpop counts 0 for every cold item, so among cold items only the tie rule orders it (the same
order for every user), and SASRec never trains on a cold item as a target or in a history.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from gti.anchors import SASRec, popularity_counts, sasrec_scores, top_rows, train_sasrec
from gti.artifacts import read_json, run_stage, write_json
from gti.config import RunConfig, history_items, to_dict
from gti.device import compute_device
from gti.errors import GtiError
from gti.rec import rank_of, ranking_metrics
from gti.rec.cold import rank_scores, reserved_count
from gti.stages.artifacts import DataArtifact, EvalArtifact, Weights
from gti.stages.cold import cold_start_into
from gti.stages.evaluate import eval_examples, eval_settings, output_measures, write_predictions


def _catalog(data: DataArtifact) -> list[str]:
    return list(data.dataset.items)


def run_fit(name: str, config: RunConfig, data: DataArtifact, folder: Path) -> Weights:
    """Fit an anchor on the training sequences into `folder` (once): popularity counts or SASRec's weights.

    The manifest records `train_seconds` and `interactions_processed` (training items counted, or
    next-item targets trained on over all epochs); SASRec's also its epochs, steps and best epoch,
    with its per-epoch validation measures in `validations.json`. Anchors process no LM tokens.
    """
    catalog = _catalog(data)
    rows = {item: row for row, item in enumerate(catalog)}

    def build_mostpop(out: Path) -> dict:
        start = time.perf_counter()
        counts = popularity_counts(data.split.train, catalog)
        seconds = time.perf_counter() - start
        write_json(out / "popularity.json", {item: int(count) for item, count in zip(catalog, counts)})
        return {"train_seconds": round(seconds, 3), "interactions_processed": int(counts.sum()),
                "epochs": None, "steps": None}

    def build_sasrec(out: Path) -> dict:
        train = [[rows[item] for item in sequence] for sequence in data.split.train.values()]
        valid = [([rows[item] for item in e.history], rows[e.target]) for e in data.split.valid]
        if not valid:
            raise GtiError("sasrec: the split has no validation examples to stop on (users need 3+ items)")
        fit = train_sasrec(train, valid, len(catalog), history_items(config), config.sasrec, compute_device())
        save_file({key: value.detach().cpu().contiguous() for key, value in fit.model.state_dict().items()},
                  out / "model.safetensors")
        write_json(out / "validations.json", fit.validations)
        return {"train_seconds": round(fit.train_seconds, 3), "interactions_processed": fit.interactions,
                "epochs": fit.epochs, "steps": fit.steps, "best_epoch": fit.best_epoch,
                "stopped_early": fit.stopped_early}

    key = {"anchor": name} if name == "mostpop" else {"anchor": name, "sasrec": to_dict(config.sasrec),
                                                      "history": history_items(config), "init": "normal-0.02"}
    manifest, _ = run_stage(folder, key, {"data": data.key}, build_mostpop if name == "mostpop" else build_sasrec)
    return Weights(manifest["key"], folder)


def _scores(name: str, config: RunConfig, fitted: Weights, catalog: list[str], histories: list[list[int]]
            ) -> Iterator[np.ndarray]:
    """(B, N) scores of every catalog row per history, batch by batch."""
    if name == "mostpop":
        counts = read_json(fitted.path / "popularity.json")
        scores = np.array([counts[item] for item in catalog], dtype=np.float64)  # (N,): the same for every user
        for start in range(0, len(histories), 256):
            yield np.broadcast_to(scores, (len(histories[start:start + 256]), len(catalog)))
        return
    model = SASRec(len(catalog), history_items(config), config.sasrec)
    model.load_state_dict(load_file(fitted.path / "model.safetensors"))
    yield from sasrec_scores(model.to(compute_device()), histories)


def run_anchor_eval(name: str, config: RunConfig, fitted: Weights, data: DataArtifact, folder: Path,
                    on: str = "test") -> EvalArtifact:
    """Rank the catalog for the test users (or `train.validate_users` validation targets) with a fitted anchor into
    `folder` (once)."""
    catalog = _catalog(data)
    rows = {item: row for row, item in enumerate(catalog)}
    beams = min(config.eval.beams, len(catalog))

    settings = eval_settings(config, on)
    cold = data.split.is_cold and on == "test"  # then every decoding of both test sets too
    cold_rows = [rows[item] for item in data.split.cold_items]
    reserved = reserved_count(settings.cold_beams, settings.beams)

    def rank_cold(examples, decoding: str) -> list[list[int]]:
        """A decoding of a cold-items split over the anchor's scores of every item (`gti.rec.cold.rank_scores`)."""
        histories = [[rows[item] for item in e.history] for e in examples]
        return [ranked for scores in _scores(name, config, fitted, catalog, histories)
                for ranked in rank_scores(torch.from_numpy(np.array(scores, dtype=np.float32)), cold_rows, beams,
                                          decoding, reserved)]

    def build(out: Path) -> dict:
        examples = eval_examples(settings, data.split, on)
        histories = [[rows[item] for item in e.history] for e in examples]
        top = [list(row) for scores in _scores(name, config, fitted, catalog, histories) for row in top_rows(scores, beams)]
        ranks = [rank_of(rows[e.target], row) for e, row in zip(examples, top)]
        ks = tuple(k for k in (1, 5, 10, 20) if k <= config.eval.beams)
        write_predictions(out, examples, ranks, top, catalog, ranking_metrics(ranks, ks), "warm" if cold else None)
        if on == "test":
            write_json(out / "output.json", {**output_measures(top, data.split, catalog), "invalid_sid_rate": None})
        if cold:
            cold_start_into(out, settings, data.split, catalog, rank_cold, known={("warm", "beam"): top})
        return {"users": len(examples), "split": on}

    key = {"beams": settings.beams, "users": settings.users} | (
        {"sample": settings.sample, "users_seed": settings.users_seed} if settings.users else {}) | ({} if on == "test" else {"split": on}) | (
        {"cold_beams": settings.cold_beams} if cold else {})
    manifest, _ = run_stage(folder, key, {"fit": fitted.key}, build)
    return EvalArtifact(manifest["key"], folder)
