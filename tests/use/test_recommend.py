"""`gti recommend` and `gti.Recommender`: the same prompts and beam search as evaluation, clear errors."""

import json
import subprocess
import sys

import pytest

from gti.cli import main
from gti.errors import GtiError


def test_batch_matches_the_evaluation_top_items(trained_run, recommender):
    """With evaluation's beams and batches, the top items are exactly those of eval/predictions.jsonl."""
    split = json.loads((trained_run / "data" / "split.json").read_text())
    predictions = [json.loads(line) for line in (trained_run / "gti/eval/predictions.jsonl").read_text().splitlines()]
    histories = [example["history"] for example in split["test"]]
    assert recommender.settings.beams == 5 and len(histories) == len(predictions) == 12
    answers = recommender.recommend_batch(histories, k=5)
    for answer, prediction in zip(answers, predictions):
        assert [item["item_id"] for item in answer] == prediction["top10"]
    scores = [item["score"] for item in answers[0]]
    assert scores == sorted(scores, reverse=True) and all(s < 0 for s in scores)


def test_recommend_returns_k_items_with_titles(recommender, trained_run):
    titles = {}
    for line in (trained_run.parent / "dataset" / "items.jsonl").read_text().splitlines():
        record = json.loads(line)
        titles[record["item_id"]] = record["title"]
    items = recommender.recommend(["i1", "i2", "i3"], k=12)
    assert len(items) == 12 and len({item["item_id"] for item in items}) == 12
    assert all(item["title"] == titles[item["item_id"]] for item in items)
    assert len(recommender.recommend(["i1"], k=40)) == 40  # the whole catalog
    # a longer history than data.max_history (20) is cut to its last items, like evaluation's
    long = [f"i{i % 40}" for i in range(30)]
    assert recommender.recommend(long, k=3) == recommender.recommend(long[-20:], k=3)


def test_exclude_history_leaves_out_history_items(recommender):
    top = [item["item_id"] for item in recommender.recommend(["i1"], k=40)]
    history = top[:3]
    items = recommender.recommend(history, k=10, exclude_history=True)
    assert len(items) == 10 and not {item["item_id"] for item in items} & set(history)


@pytest.mark.parametrize(("history", "k", "message"), [
    (["i1", "nope"], 10, "unknown item id 'nope'"),
    ([], 10, "non-empty list"),
    ("i1", 10, "non-empty list"),
    (["i1", None], 10, "must be strings"),
    (["i1"], 0, "k: expected an integer"),
])
def test_bad_requests_are_one_line_errors(recommender, history, k, message):
    with pytest.raises(GtiError, match=message):
        recommender.recommend(history, k=k)


def test_cli_json_and_table(trained_run, recommender, capsys):
    assert main(["recommend", str(trained_run), "--history", "i1,i2,i3", "--k", "4", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer == {"items": recommender.recommend(["i1", "i2", "i3"], k=4)}
    assert main(["recommend", str(trained_run), "--history", "i1,i2,i3", "--k", "4"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["rank", "item_id", "score", "title"] and len(table) == 5
    assert table[1].split()[1] == answer["items"][0]["item_id"]


@pytest.mark.parametrize(("args", "message"), [
    (["--history", "i1,zzz"], "unknown item id 'zzz'"),
    (["--history", ","], "non-empty list"),
    (["--history", "i1", "--method", "mean"], "no fine-tuned model for method 'mean'"),
    (["--history", "i1", "--seed", "3"], "seed 3"),
    ([], "either --history"),
])
def test_cli_errors_exit_2_with_one_line(trained_run, capsys, args, message):
    assert main(["recommend", str(trained_run), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gti: error:") and message in err[0]


def test_not_a_run_folder(tmp_path, capsys):
    assert main(["recommend", str(tmp_path), "--history", "i1"]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_input_file_many_users(trained_run, recommender, tmp_path, capsys):
    requests = tmp_path / "requests.jsonl"
    lines = [{"history": ["i1", "i2"], "k": 3, "user_id": "u1"}, {"history": ["i5"]},
             {"history": ["i7", "i8"], "k": 2, "exclude_history": True}]
    requests.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["recommend", str(trained_run), "--input", str(requests), "--output", str(out), "--k", "6"]) == 0
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert [a.get("user_id") for a in answers] == ["u1", None, None]
    assert [len(a["items"]) for a in answers] == [3, 6, 2]
    assert answers[0]["items"] == recommender.recommend(["i1", "i2"], k=3)
    assert not {item["item_id"] for item in answers[2]["items"]} & {"i7", "i8"}
    assert main(["recommend", str(trained_run), "--input", str(requests), "--output", str(out)]) == 2  # no overwrite
    assert "already exists" in capsys.readouterr().err
    assert main(["recommend", str(trained_run), "--input", str(requests), "--k", "6"]) == 0  # stdout
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()][1] == answers[1]
    requests.write_text('{"history": ["i1"]}\n{"history": ["i1", "bad"]}\n')
    assert main(["recommend", str(trained_run), "--input", str(requests)]) == 2
    err = capsys.readouterr()
    assert f"{requests}:2: history: unknown item id 'bad'" in err.err and err.out == ""


def test_import_gti_stays_light():
    code = ("import gti, sys; assert 'torch' not in sys.modules and 'gti.recommend' not in sys.modules; "
            "assert 'Recommender' in gti.__all__ and gti._EXPORTS['Recommender'] == 'gti.recommend'")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_ids_and_request_files_are_checked_before_torch_loads(trained_run, tmp_path):
    """An unknown id, a bad k or a bad line of --input is reported from sids.json alone, without torch."""
    import time
    from pathlib import Path

    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"history": ["i1"]}\n{"history": ["i2"], "k": 0}\n')
    code = ("import sys; from gti.cli import main; status = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(status)")
    for argv, message in [
        (["--history", "i1,nope"], "history: unknown item id 'nope': not in the catalog"),
        (["--history", "i1", "--k", "1001"], "--k: expected an integer from 1 to 1000, got 1001"),
        (["--input", str(requests)], f"{requests}:2: k: expected an integer from 1 to 1000, got 0"),
        (["--history", "i1", "--method", "text"], "no fine-tuned model for method 'text'"),
    ]:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code, "recommend", str(trained_run), *argv], capture_output=True,
                              text=True, cwd=Path(__file__).resolve().parents[2])
        assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert time.perf_counter() - start < 10  # about 0.1 s here
