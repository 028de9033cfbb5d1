"""Cold-start results: every method on the warm and cold test sets, by decoding, with CIs and paired tests.

Reads what `gti.stages.cold` wrote into each evaluation folder (`cold_start.json`, `cold_start.jsonl`),
for one run or several seeds of a method, and builds the `cold_start` sections of `results.json`:

    methods.<m>.cold_start = {test set: {decoding: {"users", "metrics", "ci", "cold_share", "paired_vs_mean"}}}
    cold_start = {"split", "beams", "cold_beams", "reserved_beams", "decodings", "text_vs_text_free"}

`text_vs_text_free[test set][decoding][m]`: each method that reads item text (`gti.methods.uses_text`)
against every text-free method of the run, fixed in advance rather than picked on test results:
`{"family": [text-free methods], "against": {text-free method: {metric: {"diff", "ci", "p_value",
"p_holm"}}}, "beats_every": bool}`, the paired difference over users of recall@10 and NDCG@10 with
its 95% CI, raw p-value and Holm's adjustment over the family (per text method, test set, decoding
and metric); `beats_every` is true when every recall@10 difference is above zero with a Holm p
below 0.05. Methods are compared on the same users in the same order (checked).
"""

import json
from pathlib import Path

from gti.artifacts import read_json
from gti.budget import PAIRED_METRICS, mean_of, seed_averaged_values
from gti.errors import GtiError
from gti.methods import uses_text
from gti.rec import holm, metric_ci, paired_test
from gti.rec.cold import DECODINGS
from gti.results import Comparison

SUMMARY, PREDICTIONS = "cold_start.json", "cold_start.jsonl"


def has_cold_start(folder: Path) -> bool:
    """Whether an evaluation folder holds cold-start results (a cold-items split's)."""
    return (Path(folder) / SUMMARY).is_file()


def read_cold_ranks(folder: Path, test_set: str, decoding: str) -> tuple[list[str], list[int | None]]:
    """(user ids, target ranks) of one test set and decoding of an evaluation, in user order."""
    users, ranks = [], []
    for line in (Path(folder) / PREDICTIONS).read_text().splitlines():
        if line:
            row = json.loads(line)
            if row["test_set"] == test_set and row["decoding"] == decoding:
                users.append(row["user_id"])
                ranks.append(row["rank"])
    return users, ranks


def _seed_ranks(folders: list[Path], test_set: str, decoding: str) -> tuple[list[str], list[list[int | None]]]:
    """The users and each seed's ranks; every seed must have ranked the same users."""
    found = [read_cold_ranks(folder, test_set, decoding) for folder in folders]
    if any(users != found[0][0] for users, _ in found):
        raise GtiError(f"{folders[0]}: the seeds' {test_set} test sets hold other users; re-run the evaluation")
    return found[0][0], [ranks for _, ranks in found]


def paired(a: list[Path], b: list[Path], test_set: str, decoding: str) -> dict[str, dict]:
    """Paired tests of method a against method b (each: its evaluation folder per seed) on one test set and
    decoding: metric -> {"diff", "ci", "p_value"} for `PAIRED_METRICS`, per-user values averaged over seeds."""
    users_a, ranks_a = _seed_ranks(a, test_set, decoding)
    users_b, ranks_b = _seed_ranks(b, test_set, decoding)
    if users_a != users_b:
        raise GtiError(f"{a[0]} and {b[0]}: the {test_set} test sets hold other users; they are not paired")
    return {metric: paired_test(seed_averaged_values(ranks_a, metric), seed_averaged_values(ranks_b, metric))
            for metric in PAIRED_METRICS}


def method_section(folders: list[Path], reference: list[Path] | None = None) -> dict:
    """One method's `cold_start` section from its evaluation folder per seed (metrics are means over seeds,
    CIs over users of the per-user values averaged over seeds); with `reference` (mean init's folders), the
    paired tests against it."""
    summaries = [read_json(Path(folder) / SUMMARY) for folder in folders]
    section = {}
    for test_set, entry in summaries[0]["sets"].items():
        section[test_set] = {}
        for decoding, found in entry["decodings"].items():
            _, ranks = _seed_ranks(folders, test_set, decoding)
            per_seed = [summary["sets"][test_set]["decodings"][decoding] for summary in summaries]
            result = {
                "users": entry["users"],
                "metrics": mean_of([seed["metrics"] for seed in per_seed]),
                "ci": {metric: list(metric_ci(seed_averaged_values(ranks, metric), metric)) for metric in found["metrics"]}
                if entry["users"] else {},
                "cold_share": mean_of([seed["cold_share"] for seed in per_seed]),
            }
            if reference is not None and entry["users"]:
                result["paired_vs_mean"] = paired(folders, reference, test_set, decoding)
            section[test_set][decoding] = result
    return section


def comparison_section(split_stats: dict, eval_folder: Path) -> dict:
    """The comparison-wide `cold_start` section: the split's counts and the decodings' settings."""
    summary = read_json(Path(eval_folder) / SUMMARY)
    return {"split": split_stats, "beams": summary["beams"], "cold_beams": summary["cold_beams"],
            "reserved_beams": summary["reserved_beams"], "decodings": dict(DECODINGS), "text_vs_text_free": {}}


def text_vs_text_free(comparison: Comparison, folders: dict[str, list[Path]], level: float = 0.05) -> dict:
    """Each text method against every text-free method, per test set and decoding, with Holm's adjustment over the
    text-free methods (see the module docstring).

    Args:
        comparison: holds every method's `cold_start` section.
        folders: method -> its evaluation folder per seed.
        level: the family-wise level of `beats_every`.
    """
    names = [name for name in folders if comparison.methods[name].cold_start]
    text = [name for name in names if uses_text(name)]
    text_free = [name for name in names if not uses_text(name)]
    table: dict = {}
    if not text or not text_free:
        return table
    sets = comparison.methods[names[0]].cold_start
    for test_set, by_decoding in sets.items():
        for decoding, entry in by_decoding.items():
            if not entry["users"]:
                continue
            found = {}
            for name in text:
                tests = {other: paired(folders[name], folders[other], test_set, decoding) for other in text_free}
                for metric in PAIRED_METRICS:
                    adjusted = holm({other: tests[other][metric]["p_value"] for other in text_free})
                    for other in text_free:
                        tests[other][metric] = {**tests[other][metric], "p_holm": adjusted[other]}
                beats = all(test["recall@10"]["diff"] > 0 and test["recall@10"]["p_holm"] < level
                            for test in tests.values())
                found[name] = {"family": text_free, "against": tests, "beats_every": beats}
            table.setdefault(test_set, {})[decoding] = found
    return table


def headline(metrics: dict[str, float]) -> str:
    """The recall the cold-start tables lead with: `recall@10`, or the largest K measured when beams < 10."""
    if "recall@10" in metrics:
        return "recall@10"
    return max((name for name in metrics if name.startswith("recall@")), key=lambda name: int(name.split("@")[1]))


def attach(comparison: Comparison, folders: dict[str, list[Path]], split_stats: dict, reference: str | None) -> None:
    """Fill a comparison's cold-start sections from each method's evaluation folders (per seed).

    Args:
        folders: method -> its evaluation folder per seed (methods without cold-start files are skipped).
        split_stats: the data stage's split counts (`stats.json`'s `split`).
        reference: the method the paired tests are against (`mean`), or None.
    """
    found = {name: paths for name, paths in folders.items() if all(has_cold_start(path) for path in paths)}
    if not found:
        return
    for name, paths in found.items():
        comparison.methods[name].cold_start = method_section(paths, found.get(reference))
    comparison.cold_start = comparison_section(split_stats, next(iter(found.values()))[0])
    comparison.cold_start["text_vs_text_free"] = text_vs_text_free(comparison, found)
