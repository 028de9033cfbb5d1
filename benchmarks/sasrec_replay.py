"""The SASRec rows of the committed tables, re-run with the fixed SASRec on the same users and split.

Before the fix (issue 29) gti's SASRec started from PyTorch's N(0, 1) embeddings and trained badly
(below popularity), so every "against SASRec" statement of the earlier tables was void. This script
re-runs only the anchors (`--methods mostpop,sasrec`) of each table with the table's own command
(config, users, split, test users: `eval.sample=first`, the users those tables evaluated, and the first
`train.validate_users` validation users their grids chose on), SASRec tuned over the same `sasrec.lr`
grid on the 2,000-user slice and the other tables at that choice, as the LM methods were. Popularity is
re-run too: its metrics must equal the committed table's to the last digit, which checks that the users
and the split are the same.

The committed JSONs hold no per-user ranks of the LM methods, so SASRec cannot be paired with them: each
LM row is compared with an unpaired interval for the difference of two proportions (Newcombe's hybrid
score method, from the two Wilson intervals), which is wider than a paired one would be when the two
share users, i.e. conservative. Every replay writes its own full JSON (beside the table's) and this script
a summary, benchmarks/results/sasrec_replay_cpu.json.

Usage: python benchmarks/sasrec_replay.py [--tables fair,fair5000,toys,cold] [--out PATH] [--from-files]
"""

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

from gti.artifacts import read_json, write_json
from gti.methods import uses_text
from gti.rec import holm, wilson_ci
from machine import invocation, machine  # benchmarks/machine.py, next to this script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("benchmarks/results")
FIRST = ["--set", "eval.sample=first"]
CHOSEN = RESULTS / "beauty_fair_sasrec_cpu.json"
TABLES = {
    "fair": ("beauty_fair_cpu.json", "beauty_fair.py", ["--grid", "sasrec.lr=1e-3,3e-3"]),
    "fair5000": ("beauty_fair_5000_cpu.json", "beauty_fair.py", ["--choices", str(CHOSEN), "--set", "data.users=5000"]),
    "toys": ("toys_confirm_cpu.json", "beauty_fair.py", ["--choices", str(CHOSEN), "--set", "data.source=../shared/data/toys",
                                                         "--set", "data.users=5000"]),
    "cold": ("beauty_cold_cpu.json", "beauty_cold.py", ["--choices", str(CHOSEN)]),
}
"""Table -> (its committed JSON, the script that made it, the flags that replay its anchors)."""


def replay_commands(table: str, out: Path) -> list[list[str]]:
    """The commands that re-run a table's anchors into `out`: the table's own benchmark script, anchors only.
    (The demo is not replayed: `make demo` itself was re-run with the fixed SASRec, `demo_float32_cpu.json`.)"""
    _, script, flags = TABLES[table]
    return [[sys.executable, f"benchmarks/{script}", "--methods", "mostpop,sasrec", *flags, *FIRST,
             "--run-dir", f"runs/replay_{table}", "--out", str(out)]]


def replay_name(table_file: str) -> str:
    return table_file.replace("_cpu.json", "_sasrec_cpu.json")


def newcombe(hits_a: int, hits_b: int, n: int, level: float = 0.95) -> list[float]:
    """Newcombe's hybrid score interval (method 10) for p_a - p_b of two proportions over n users each."""
    p_a, p_b = hits_a / n, hits_b / n
    low_a, high_a = wilson_ci(hits_a, n, level)
    low_b, high_b = wilson_ci(hits_b, n, level)
    diff = p_a - p_b
    return [round(diff - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2), 4),
            round(diff + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2), 4)]


def metrics_of(record: dict, name: str, cold: bool) -> tuple[dict, int]:
    """(metrics, users) of a method in a table: the warm test set's plain search for the cold table."""
    method = record["methods"][name]
    if cold:
        entry = method["cold_start"]["warm"]["beam"]
        return entry["metrics"], entry["users"]
    users = len(record["per_user"]["users"]) if record.get("per_user") else record["config"]["eval"]["users"]
    return method["metrics"], users


def summary(table: str, committed: dict, replay: dict) -> dict:
    """The replay against the committed table: popularity equal?, SASRec before and after, each LM row against it."""
    cold = table == "cold"
    users = (replay.get("per_user") and len(replay["per_user"]["users"])) if not cold else None
    new, users_new = metrics_of(replay, "sasrec", cold)
    users = users or users_new
    old, _ = metrics_of(committed, "sasrec", cold)
    pop_new, _ = metrics_of(replay, "mostpop", cold)
    pop_old, _ = metrics_of(committed, "mostpop", cold)
    fit = replay["methods"]["sasrec"]["compute"]["fit"]
    hits = round(new["recall@10"] * users)
    rows = {}
    for name, result in committed["methods"].items():
        if result["kind"] != "lm":
            continue
        metrics, _ = metrics_of(committed, name, cold)
        lm_hits = round(metrics["recall@10"] * users)
        rows[name] = {"recall@10": metrics["recall@10"], "ndcg@10": round(metrics["ndcg@10"], 4),
                      "train_tokens": result["train_tokens"], "train_seconds": result["train_seconds"],
                      "lm_minus_sasrec_recall@10": round(metrics["recall@10"] - new["recall@10"], 4),
                      "unpaired_95ci": newcombe(lm_hits, hits, users)}
    return {
        "table": f"benchmarks/results/{TABLES[table][0]}", "replay": str(RESULTS / replay_name(TABLES[table][0])),
        "test_users": users, "test_set": "warm test users, plain beam search" if cold else "every test user",
        "mostpop_identical": pop_new == pop_old, "mostpop_recall@10": pop_new["recall@10"],
        "sasrec_before": {"recall@10": old["recall@10"], "ndcg@10": round(old["ndcg@10"], 4)},
        "sasrec_fixed": {"recall@10": new["recall@10"], "ndcg@10": round(new["ndcg@10"], 4),
                         "recall@10_ci": [round(v, 4) for v in wilson_ci(hits, users)],
                         "history": replay["methods"]["sasrec"].get("history"),
                         "chosen": ((replay.get("tuning") or {}).get("methods") or {}).get("sasrec", {}).get("settings"),
                         "train_seconds": fit["train_seconds"], "epochs": fit["epochs"], "best_epoch": fit["best_epoch"]},
        "sasrec_fixed_vs_mostpop": None if cold else  # paired over the same users (the cold table: see its replay JSON)
        (replay["methods"]["sasrec"].get("paired_vs_anchors") or {}).get("mostpop", {}).get("recall@10"),
        "lm_rows": rows,
    }


def cold_holm(committed: dict) -> dict:
    """GTI against every text-free method of the committed cold table (`gti_vs_each`), Holm over them, per test set
    and decoding: the comparator fixed in advance instead of the best one on test results."""
    found = {}
    for test_set, by_decoding in (committed.get("gti_vs_each") or {}).items():
        for decoding, by_method in by_decoding.items():
            tests = {name: test["recall@10"] for name, test in by_method.items()  # its SASRec was the broken one
                     if not uses_text(name) and name != "sasrec"}
            adjusted = holm({name: test["p_value"] for name, test in tests.items()})
            found.setdefault(test_set, {})[decoding] = {
                name: {"diff": round(test["diff"], 4), "ci": [round(v, 4) for v in test["ci"]],
                       "p_value": round(test["p_value"], 4), "p_holm": round(adjusted[name], 4)}
                for name, test in tests.items()}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--out", type=Path, default=RESULTS / "sasrec_replay_cpu.json")
    parser.add_argument("--from-files", action="store_true",
                        help="run nothing: summarize the replay JSONs already written (their commands are in them)")
    args = parser.parse_args()
    found = {}
    for table in args.tables.split(","):
        committed_file = TABLES[table][0]
        out = RESULTS / replay_name(committed_file)
        start = time.perf_counter()
        for command in [] if args.from_files else replay_commands(table, out):
            if subprocess.run(command, cwd=ROOT).returncode != 0:
                sys.exit(f"sasrec_replay: the {table} replay failed")
        replay = read_json(ROOT / out)
        found[table] = summary(table, read_json(ROOT / RESULTS / committed_file), replay)
        found[table]["wall_seconds"] = replay.get("wall_s") if args.from_files else round(time.perf_counter() - start, 1)
        if table == "cold":
            found[table]["gti_vs_every_text_free_holm"] = cold_holm(read_json(ROOT / RESULTS / committed_file))
        print(f"== {table}: {found[table]['sasrec_before']} -> {found[table]['sasrec_fixed']}", flush=True)
    write_json(ROOT / args.out, {"benchmark": "SASRec rows of the committed tables, re-run with the fixed SASRec",
                                 "tables": found, "machine": machine(), **invocation()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
