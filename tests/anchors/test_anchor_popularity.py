"""`mostpop` on a constructed set: counts, the tie rule, and the evaluation files it writes."""

import json

import numpy as np
import torch

from gti.anchors import popularity_counts, top_rows
from gti.config import RunConfig, from_dict
from gti.data import Dataset, Item
from gti.rec.ties import tie_key
from gti.stages.anchor import run_anchor_eval, run_fit
from gti.stages.data import run_data

CATALOG = ["a", "b", "c", "d", "e", "f"]
SEQUENCES = {  # leave-one-out: the last item is the test target, the one before the validation target
    "u1": ["a", "b", "a", "c", "f", "d"],  # trains on a, b, a, c
    "u2": ["b", "a", "c", "e", "b"],  # trains on b, a, c
    "u3": ["c", "e", "a", "f"],  # trains on c, e
    "u4": ["d", "c", "a"],  # trains on d
}


def test_counts_are_the_training_occurrences_only():
    train = {user: items[:-2] for user, items in SEQUENCES.items()}
    assert popularity_counts(train, CATALOG).tolist() == [3, 2, 3, 1, 1, 0]  # f and the held-out items never count


def test_ties_go_to_the_lower_tie_key_not_to_the_catalog_order():
    keys = tie_key(torch.arange(6)).tolist()
    scores = np.array([3.0, 2.0, 3.0, 1.0, 1.0, 0.0])
    expected = sorted(range(6), key=lambda row: (-scores[row], keys[row]))
    assert top_rows(scores, 6).tolist() == expected
    assert top_rows(np.stack([scores, scores[::-1]]), 3).tolist() == [
        expected[:3], sorted(range(6), key=lambda row: (-scores[::-1][row], keys[row]))[:3]]
    flat = np.zeros(6)
    assert top_rows(flat, 6).tolist() == sorted(range(6), key=keys.__getitem__)


def test_mostpop_ranks_every_user_by_training_popularity(tmp_path):
    dataset = Dataset("tiny", {item: Item(item, f"title {item}") for item in CATALOG}, SEQUENCES)
    config = from_dict({"data": {"max_history": 20}, "eval": {"beams": 4}})
    assert isinstance(config, RunConfig)
    data = run_data(config.data, tmp_path / "data", dataset)
    fitted = run_fit("mostpop", config, data, tmp_path / "fit")
    manifest = json.loads((tmp_path / "fit" / "manifest.json").read_text())
    assert manifest["interactions_processed"] == 10 and manifest["epochs"] is None and "train_tokens" not in manifest
    run_anchor_eval("mostpop", config, fitted, data, tmp_path / "eval")
    keys = tie_key(torch.arange(6)).tolist()
    counts = [3, 2, 3, 1, 1, 0]
    order = [CATALOG[row] for row in sorted(range(6), key=lambda row: (-counts[row], keys[row]))][:4]
    predictions = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert [p["user_id"] for p in predictions] == ["u1", "u2", "u3", "u4"]
    for prediction in predictions:
        target = SEQUENCES[prediction["user_id"]][-1]
        assert prediction["target"] == target and prediction["top10"] == order  # nothing excluded, same list for all
        assert prediction["rank"] == (order.index(target) + 1 if target in order else None)
    ranks = [p["rank"] for p in predictions]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["recall@1"] == sum(r == 1 for r in ranks) / 4
    assert metrics["mrr"] == sum(1 / r for r in ranks if r) / 4
    assert set(metrics) == {"recall@1", "ndcg@1", "mrr"}  # the cut-offs up to eval.beams, as beam search reports
    output = json.loads((tmp_path / "eval" / "output.json").read_text())
    assert output["invalid_sid_rate"] is None and output["catalog_coverage@10"] == 4 / 6
    run_anchor_eval("mostpop", config, fitted, data, tmp_path / "valid", on="valid")
    valid = [json.loads(line) for line in (tmp_path / "valid" / "predictions.jsonl").read_text().splitlines()]
    assert [p["target"] for p in valid] == [SEQUENCES[p["user_id"]][-2] for p in valid]
    assert not (tmp_path / "valid" / "output.json").exists()
