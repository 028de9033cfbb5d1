"""`gti run` and `gti compare` on a cold-items split: the warm and cold test sets, every decoding, the report."""

import gzip
import json
import random

import pytest

from gti.cli import main
from gti.rec import holm, metric_ci, paired_test, per_user_values, ranking_metrics
from tiny_models import make_tiny_model, make_tiny_tokenizer

WORDS = "movie comedy drama action story toy love war night day man woman city house game red blue green".split()


@pytest.fixture(scope="module")
def cold_dataset(tmp_path_factory):
    """A normalized-format dataset: 40 items, 30 users with 4-8 interactions each."""
    folder = tmp_path_factory.mktemp("cold_dataset")
    rng = random.Random(1)
    with gzip.open(folder / "items.jsonl.gz", "wt") as items:
        for i in range(40):
            title = " ".join(rng.sample(WORDS, 3))
            items.write(json.dumps({"item_id": f"i{i}", "title": title, "categories": [rng.choice(WORDS)]}) + "\n")
    lines = ["user_id\titem_id\ttimestamp"]
    for user in range(30):
        for step, item in enumerate(rng.sample(range(40), rng.randint(4, 8))):
            lines.append(f"u{user}\ti{item}\t{1000 + step}")
    (folder / "interactions.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    tokenizer = make_tiny_tokenizer()
    make_tiny_model(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def args(dataset, model, out, *extra):
    settings = [
        f"data.source={json.dumps(str(dataset))}", f"model.name={json.dumps(str(model))}", "data.split=cold-items",
        "data.cold_fraction=0.2", "sids.levels=2", "sids.codes=4", "ground.steps=2", "ground.batch_size=4",
        "finetune.steps=2", "finetune.batch_size=4", "eval.beams=5", "eval.cold_beams=0.4", *extra,
    ]
    return [arg for s in settings for arg in ("--set", s)] + ["--out", str(out)]


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_run_on_a_cold_split_writes_both_test_sets_and_every_decoding(cold_dataset, model_dir, tmp_path):
    out = tmp_path / "run"
    assert main(["run", *args(cold_dataset, model_dir, out, "init.method=mean")]) == 0
    split = json.loads((out / "data" / "split.json").read_text())
    cold = set(split["cold_items"])
    assert len(cold) == 8 and split["cold_test"]
    assert not cold & {item for sequence in split["train"].values() for item in sequence}
    assert not cold & {item for row in split["valid"] + split["test"] + split["cold_test"] for item in row["history"]}
    assert not cold & {row["target"] for row in split["valid"] + split["test"]}
    stats = json.loads((out / "data" / "stats.json").read_text())["split"]
    assert stats["test"] == {"warm": len(split["test"]), "cold": len(split["cold_test"])} and stats["cold_items"] == 8

    evaluation = out / "mean" / "eval"
    predictions = lines(evaluation / "predictions.jsonl")
    assert [p["user_id"] for p in predictions] == [row["user_id"] for row in split["test"]]
    assert {p["test_set"] for p in predictions} == {"warm"}
    summary = json.loads((evaluation / "cold_start.json").read_text())
    assert summary["reserved_beams"] == 2 and summary["cold_items"] == 8 and summary["catalog_items"] == 40
    assert summary["sets"]["cold"]["users"] == len(split["cold_test"])
    assert list(summary["sets"]["warm"]["decodings"]) == ["beam", "cold-beams"]
    assert list(summary["sets"]["cold"]["decodings"]) == ["beam", "cold-beams", "cold-only"]
    ranked = lines(evaluation / "cold_start.jsonl")
    targets = {"warm": [row["target"] for row in split["test"]], "cold": [row["target"] for row in split["cold_test"]]}
    for test_set, entry in summary["sets"].items():
        for decoding, found in entry["decodings"].items():
            rows = [r for r in ranked if r["test_set"] == test_set and r["decoding"] == decoding]
            assert [r["target"] for r in rows] == targets[test_set]
            assert found["metrics"] == pytest.approx(ranking_metrics([r["rank"] for r in rows], (1, 5)))
            share = sum(sum(item in cold for item in r["top10"][:5]) / 5 for r in rows) / len(rows)
            assert found["cold_share"]["cold_share@5"] == pytest.approx(share)
            for r in rows:
                assert r["rank"] == (r["top10"].index(r["target"]) + 1 if r["target"] in r["top10"] else None)
                assert r["cold_in_top10"] == sum(item in cold for item in r["top10"])
                if decoding == "cold-only":
                    assert set(r["top10"]) <= cold and len(r["top10"]) == 5
                if decoding == "cold-beams":
                    assert r["cold_in_top10"] >= 2 and len(r["top10"]) == 5
    plain_warm = [r for r in ranked if r["test_set"] == "warm" and r["decoding"] == "beam"]
    assert [r["top10"] for r in plain_warm] == [p["top10"] for p in predictions]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == pytest.approx(summary["sets"]["warm"]["decodings"]["beam"]["metrics"])
    root = json.loads((out / "cold_start.json").read_text())
    assert root["cold"]["cold-only"]["metrics"] == summary["sets"]["cold"]["decodings"]["cold-only"]["metrics"]


def test_compare_on_a_cold_split_reports_cold_and_warm_metrics_with_paired_tests(cold_dataset, model_dir, tmp_path):
    out = tmp_path / "compare"
    sasrec = ["sasrec.hidden=8", "sasrec.heads=1", "sasrec.epochs=2", "sasrec.batch_size=8"]
    assert main(["compare", "--methods", "mostpop,sasrec,mean,gti,lcrec", *args(cold_dataset, model_dir, out, *sasrec)]) == 0
    results = json.loads((out / "results.json").read_text())
    info = results["cold_start"]
    assert info["split"]["cold_items"] == 8 and info["reserved_beams"] == 2 and set(info["decodings"]) == {
        "beam", "cold-beams", "cold-only"}

    def ranks(method, test_set, decoding):
        rows = lines(out / method / "eval" / "cold_start.jsonl")
        return [r["rank"] for r in rows if r["test_set"] == test_set and r["decoding"] == decoding]

    for method in ("mostpop", "sasrec", "mean", "gti", "lcrec"):
        section = results["methods"][method]["cold_start"]
        assert set(section) == {"warm", "cold"} and set(section["cold"]) == {"beam", "cold-beams", "cold-only"}
        for test_set, by_decoding in section.items():
            for decoding, entry in by_decoding.items():
                values = per_user_values(ranks(method, test_set, decoding), "recall@5")
                assert entry["metrics"]["recall@5"] == pytest.approx(values.mean())
                assert tuple(entry["ci"]["recall@5"]) == pytest.approx(metric_ci(values, "recall@5"))
                expected = paired_test(per_user_values(ranks(method, test_set, decoding), "recall@10"),
                                       per_user_values(ranks("mean", test_set, decoding), "recall@10"))
                assert entry["paired_vs_mean"]["recall@10"]["diff"] == pytest.approx(expected["diff"])
                assert entry["paired_vs_mean"]["recall@10"]["p_value"] == pytest.approx(expected["p_value"])
        assert results["methods"][method]["metrics"] == pytest.approx(section["warm"]["beam"]["metrics"])
    # popularity gives every cold item a count of 0: never in its plain lists, one fixed order over the cold items
    popular = lines(out / "mostpop" / "eval" / "cold_start.jsonl")
    assert all(r["cold_in_top10"] == 0 for r in popular if r["decoding"] == "beam")
    assert len({tuple(r["top10"]) for r in popular if r["decoding"] == "cold-only"}) == 1
    assert results["methods"]["mostpop"]["cold_start"]["cold"]["beam"]["metrics"]["recall@5"] == 0
    versus = info["text_vs_text_free"]
    assert set(versus) == {"warm", "cold"} and set(versus["cold"]["cold-only"]) == {"gti", "lcrec"}
    for test_set, by_decoding in versus.items():
        for decoding, by_method in by_decoding.items():
            recall = {name: results["methods"][name]["cold_start"][test_set][decoding]["metrics"]["recall@5"]
                      for name in ("mostpop", "sasrec", "mean")}  # the text-free methods, in order
            for method, entry in by_method.items():
                assert entry["family"] == list(recall) == list(entry["against"])  # every text-free method, fixed
                for other, test in entry["against"].items():
                    expected = paired_test(per_user_values(ranks(method, test_set, decoding), "ndcg@10"),
                                           per_user_values(ranks(other, test_set, decoding), "ndcg@10"))
                    assert test["ndcg@10"]["diff"] == pytest.approx(expected["diff"])
                    assert test["ndcg@10"]["p_value"] == pytest.approx(expected["p_value"])
                raw = {other: test["recall@10"]["p_value"] for other, test in entry["against"].items()}
                assert {other: test["recall@10"]["p_holm"] for other, test in entry["against"].items()} == holm(raw)
                assert entry["beats_every"] == all(t["recall@10"]["diff"] > 0 and t["recall@10"]["p_holm"] < 0.05
                                                   for t in entry["against"].values())
    markdown = (out / "results.md").read_text()
    assert "Cold-start items: warm and cold test sets" in markdown and "cold-only" in markdown
    assert "Text methods against every text-free method" in markdown
    assert "Cold-start items" in (out / "report.html").read_text() and "mostpop counts 0 for every cold item" in markdown
