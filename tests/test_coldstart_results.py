"""Cold-start results from evaluation folders: any ranker's lists, over seeds, paired tests, text vs text-free.

The rankers here score every item (`gti.rec.cold.rank_scores`), as a method without SIDs would: the files and
sections are the same as beam search's.
"""

import json
import random

import numpy as np
import pytest
import torch

from gti.coldstart import attach, method_section, read_cold_ranks
from gti.config import EvalConfig
from gti.data import Dataset, Item, cold_items_split
from gti.errors import GtiError
from gti.rec import metric_ci, paired_test, per_user_values
from gti.rec.cold import rank_scores, reserved_count
from gti.results import Comparison, MethodResult
from gti.stages.cold import cold_start_into


@pytest.fixture
def split():
    rng = random.Random(3)
    items = {f"i{n}": Item(f"i{n}", f"item {n}") for n in range(25)}
    sequences = {f"u{u}": [f"i{rng.randrange(25)}" for _ in range(rng.randrange(3, 9))] for u in range(60)}
    return cold_items_split(Dataset("d", items, sequences), 0.2, seed=0), list(items)


def scored_ranker(item_ids, cold_rows, config, seed):
    """Random scores per user (a stand-in for a scoring method), ranked by each decoding."""
    def rank(examples, decoding):
        scores = torch.from_numpy(np.random.default_rng(seed).normal(size=(len(examples), len(item_ids))))
        return rank_scores(scores, cold_rows, config.beams, decoding, reserved_count(config.cold_beams, config.beams))
    return rank


def evaluate(tmp_path, split, item_ids, name, seed, config):
    folder = tmp_path / name / f"seed-{seed}"
    folder.mkdir(parents=True)
    cold_rows = [item_ids.index(item) for item in split.cold_items]
    cold_start_into(folder, config, split, item_ids, scored_ranker(item_ids, cold_rows, config, seed + 10 * len(name)))
    return folder


def test_sections_over_seeds_with_paired_tests_and_the_best_text_free_method(tmp_path, split):
    split, item_ids = split
    config = EvalConfig(beams=10, cold_beams=0.3, users=20)
    folders = {name: [evaluate(tmp_path, split, item_ids, name, seed, config) for seed in (1, 2)]
               for name in ("mean", "random", "gti")}
    summary = json.loads((folders["gti"][0] / "cold_start.json").read_text())
    assert summary["sets"]["warm"]["users"] == 20 and summary["sets"]["cold"]["users"] == min(20, len(split.cold_test))
    assert summary["reserved_beams"] == 3
    users, ranks = read_cold_ranks(folders["gti"][0], "cold", "cold-only")
    assert users == [e.user_id for e in split.cold_test[:20]]
    rows = [json.loads(line) for line in (folders["gti"][0] / "cold_start.jsonl").read_text().splitlines()]
    cold = set(split.cold_items)
    assert all(set(r["top10"]) <= cold for r in rows if r["decoding"] == "cold-only")
    assert all(r["cold_in_top10"] >= 3 for r in rows if r["decoding"] == "cold-beams")
    assert all(r["test_set"] == "warm" or r["target"] in cold for r in rows)

    comparison = Comparison({}, [1, 2], {name: MethodResult() for name in folders})
    attach(comparison, folders, {"cold_items": len(cold)}, "mean")
    section = comparison.methods["gti"].cold_start
    for test_set, by_decoding in section.items():
        for decoding, entry in by_decoding.items():
            seed_ranks = [read_cold_ranks(folder, test_set, decoding)[1] for folder in folders["gti"]]
            values = np.mean([per_user_values(r, "recall@10") for r in seed_ranks], axis=0)
            assert entry["metrics"]["recall@10"] == pytest.approx(values.mean())
            assert tuple(entry["ci"]["recall@10"]) == pytest.approx(metric_ci(values, "recall@10"))
            reference = np.mean([per_user_values(read_cold_ranks(f, test_set, decoding)[1], "recall@10")
                                 for f in folders["mean"]], axis=0)
            expected, found = paired_test(values, reference), entry["paired_vs_mean"]["recall@10"]
            assert (found["diff"], found["p_value"], *found["ci"]) == pytest.approx(
                (expected["diff"], expected["p_value"], *expected["ci"]))
    versus = comparison.cold_start["text_vs_text_free"]
    for test_set, by_decoding in versus.items():
        for decoding, by_method in by_decoding.items():
            assert set(by_method) == {"gti"}  # mean and random read no item text
            recall = {name: comparison.methods[name].cold_start[test_set][decoding]["metrics"]["recall@10"]
                      for name in ("mean", "random")}
            assert by_method["gti"]["family"] == ["mean", "random"] and set(by_method["gti"]["against"]) == set(recall)
    assert comparison.cold_start["split"] == {"cold_items": len(cold)} and comparison.cold_start["beams"] == 10
    assert Comparison.from_json(comparison.to_json()).cold_start == comparison.cold_start
    assert MethodResult.from_json(comparison.methods["gti"].to_json()).cold_start == section


def test_seeds_that_ranked_other_users_are_refused(tmp_path, split):
    split, item_ids = split
    first = evaluate(tmp_path, split, item_ids, "gti", 1, EvalConfig(beams=10, users=20))
    second = evaluate(tmp_path, split, item_ids, "gti", 2, EvalConfig(beams=10, users=10))
    with pytest.raises(GtiError, match="other users"):
        method_section([first, second])
