"""`make bench-converged`: can a language model beat SASRec on Amazon Beauty, and does GTI matter, once models
train on every interaction? (issue 31)

Every method runs on `configs/beauty_converged.toml` (5,000 Beauty users, whole-sequence fine-tuning, at most
`finetune.epochs` epochs validated every half epoch with the best weights kept, 1,000 random test users, the
same 20-item history for every method). Two cores cannot train every method in one session, so the benchmark
runs in parts: each part is one `gti compare` of its methods with the part's own settings (`PARTS`), all LM
parts on the Semantic IDs of the first one that ran (`--sids`), and each writes its own JSON to
benchmarks/results/beauty_converged_parts/<part>.json the moment it finishes: the method's results (metrics
with CIs, training tokens and seconds, grounding included, the validation curve and the kept step), the test
users and their target ranks (`per_user`), a digest of the SIDs and of the data split, the config, the machine
and the command. A part that already has its JSON is skipped unless named in --parts.

`--merge` (also run after the parts) combines every part JSON into benchmarks/results/beauty_converged_cpu.json:
it refuses parts whose test users, split or SIDs differ, or whose configs differ beyond their parts' own
settings; it then reports every method's row and the paired tests of issue 31 (best LM vs sasrec, best LM vs
scratch, gti vs rows-first, gti vs mean-rowlr; every LM method vs mostpop and vs sasrec with Holm over the LM
methods) over the same test users, beside the published full-Beauty figures (labelled as published, another
user set) and a list of the parts still missing.

Usage: python benchmarks/beauty_converged.py [--parts P,P,...] [--merge | --no-merge] [--set KEY=VALUE ...]
                                             [--run-dir DIR] [--name NAME] [--sids DIR] [--results DIR] [--quick]
  --parts: the parts to run, in order (default: every part of PARTS without a JSON yet); --merge alone runs none.
  The seed parts (gti-seed1, gti-seed2, rows-first-seed1, rows-first-seed2: issue 31's seeds) run only when named;
  the merge then reports each method's spread over seeds 0-2 and gti - rows-first averaged over them (`seeds`).
  The grid parts (`GRID_PARTS`: each trained method's learning rate at half and twice its value, e.g. gti-lr0.0001,
  sasrec-lr0.006; `make bench-converged-grid`) also run only when named; the merge then reports every point, each
  method at the point its validation chose and the issue's tests on the chosen points (`tuned`).
  --name: the JSONs' names (default beauty_converged; the Toys confirmation: toys_converged with
  --set data.source=../shared/data/toys --run-dir runs/toys_converged).
  --confirms JSON: a confirmation (Toys: --confirms benchmarks/results/beauty_converged_cpu.json): the best LM method
  is the one JSON chose (the confirmation makes no choice; its own validation's pick is recorded beside it), and
  each pre-registered test is confirmed only where it has JSON's sign, its CI excludes zero and its Holm p < 0.05.
  --exploratory DIR: also report the parts in DIR (run later under another --name, with other settings), each
  against the best LM method, sasrec and mostpop, outside the pre-registered family.
  --sids DIR: every LM part on the SIDs in DIR (a `gti sids` folder): parts run on another machine (a GPU, or
  another kind of CPU, whose float32 encoder can give a few items other codes) on the same SIDs.
  --no-merge: run the parts only (benchmarks/gpu_converged.sh runs every part at once on one GPU, then merges).
  --results: the folder of the part JSONs (its beauty_converged_parts/) and of the merged JSON.
  --quick: a tiny random model and catalog in a temporary folder, written to beauty_converged_quick.json and
  beauty_converged_quick_parts/: a smoke test of the script, not a measurement.
"""

import argparse
import hashlib
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gti.analysis.convergence import verdicts
from gti.artifacts import read_json, write_json
from gti.budget import read_ranks, read_users
from gti.rec import holm, paired_test, per_user_values
from gti.tuning import CHOICE
from machine import invocation, machine, relative_command, stage_seconds, without_paths  # next to this script
from tiny_catalog import tiny_inputs  # benchmarks/tiny_catalog.py, next to this script

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path("configs/beauty_converged.toml")
RESULTS = Path("benchmarks/results")
PARTS = {
    "scratch": (["scratch"], ["finetune.lr=1e-3"]),
    "anchors": (["mostpop", "sasrec"], []),
    "gti": (["gti"], []),
    "rows-first": (["rows-first"], []),
    "mean-rowlr": (["mean-rowlr"], ["finetune.new_rows_lr=1e-2"]),
}
"""Part -> (its methods, its own settings). The LM methods' settings are fixed in advance
(benchmarks/preregistered/beauty_converged.md): `finetune.new_rows_lr` as the fair benchmark chose it on Beauty's
validation targets (gti and rows-first: the new rows at `finetune.lr`; mean-rowlr: 1e-2), `sasrec.lr` 3e-3 as
SASRec's replay chose it, the scratch decoder at lr 1e-3 (a random decoder needs a higher rate than a pretrained
one; not tuned here)."""
SEEDS = (1, 2)
SEED_PARTS = {f"{method}-seed{seed}": ([method], [f"init.seed={seed}", f"ground.seed={seed}", f"finetune.seed={seed}",
                                                 *PARTS[method][1]])
              for method in ("gti", "rows-first") for seed in SEEDS}
"""Issue 31's seeds (gti and rows-first came within 0.005): the same part with every training seed after the SIDs at
1 or 2 (the config's are 0), as `gti compare --seeds` sets them. Run only when named in --parts."""
GRID = {"gti": ("finetune.lr", 2e-4), "rows-first": ("finetune.lr", 2e-4), "mean-rowlr": ("finetune.lr", 2e-4),
        "scratch": ("finetune.lr", 1e-3), "sasrec": ("sasrec.lr", 3e-3)}
"""The tuning grid (benchmarks/preregistered/beauty_converged_grid.md): each trained method's learning rate at half,
once and twice its pre-registered value (the LM methods' `finetune.lr`, SASRec's `sasrec.lr`; every other setting
of its part kept: mean-rowlr's new rows stay at 1e-2), the same three-point grid for every method. The value itself is
the method's main part; the two others are the grid parts."""
GRID_FACTORS = (0.5, 2)
MAIN_PART = {"sasrec": "anchors"}
"""The part that holds a method's run at its pre-registered settings, where it is not the method's own name."""


def grid_part(method: str, value: float) -> str:
    return f"{method}-lr{value:g}"


GRID_PARTS = {grid_part(method, base * factor): (
    [method], [s for s in PARTS[MAIN_PART.get(method, method)][1] if not s.startswith(key + "=")]
    + [f"{key}={base * factor:g}"]) for method, (key, base) in GRID.items() for factor in GRID_FACTORS}
"""The grid's points beside the main parts (e.g. gti-lr0.0001, sasrec-lr0.006). Run only when named in --parts
(`make bench-converged-grid`); the merge then reports each method at the point its validation chose (`tuned`)."""
ALL_PARTS = {**PARTS, **SEED_PARTS, **GRID_PARTS}
PUBLISHED = {
    "note": "published full-Beauty figures (all 22,363 users, leave-one-out, full ranking), not run here: another "
            "user set and other code, for orientation only",
    "sasrec_bce_tiger_table": {"recall@5": 0.0387, "recall@10": 0.0605, "ndcg@5": 0.0249, "ndcg@10": 0.0318},
    "sasrec_ce_reproduction": {"recall@10": 0.0859},
    "tiger": {"recall@5": 0.0454, "recall@10": 0.0648, "ndcg@5": 0.0321, "ndcg@10": 0.0384},
    "lcrec_qwen3_1.7b": {"recall@10": [0.070, 0.079]},
}
TESTS = (("gti", "rows-first"), ("gti", "mean-rowlr"))
QUICK_SETTINGS = [
    "data.users=null", "sids.levels=2", "sids.codes=4", "ground.steps=2", "ground.batch_size=4", "finetune.epochs=1",
    "finetune.batch_size=4", "finetune.warmup_steps=1", "eval.users=null", "eval.batch_size=8", "eval.beams=10",
    "train.validate_every=2", "train.validate_users=4", "train.monitor=recall@5", "prompts.history=4",
    "data.max_history=4", "sasrec.hidden=8", "sasrec.heads=1", "sasrec.epochs=3", "sasrec.batch_size=8",
    "model.scratch_layers=1", "model.scratch_hidden=16", "model.scratch_heads=2",
]


def digest(path: Path) -> str | None:
    """sha256 of a file (the SIDs, the split), or None when there is none (an anchors-only part builds no SIDs)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def sids_file(run_dir: Path) -> Path:
    return run_dir / "sids" / "sids.json"


def run_part(name: str, run_root: Path, overrides: list[str], sids: Path | None, out_dir: Path,
             scratch: Path | None = None) -> Path:
    """One part: `gti compare` of its methods into run_root/<part>, then its JSON (see the module docstring).
    `scratch` (--quick's temporary folder) is written as `<quick>` in the JSON: the tiny inputs are the same in every
    --quick invocation (seeded), so parts of separate invocations compare as the same settings."""
    methods, settings = ALL_PARTS[name]
    run_dir = run_root / name
    command = [sys.executable, "-m", "gti.cli", "compare", str(CONFIG), "--methods", ",".join(methods),
               "--out", str(run_dir), "--overwrite"]
    command += [word for setting in overrides + settings for word in ("--set", setting)]
    command += ["--sids", str(sids)] if sids is not None and any(m not in ("mostpop", "sasrec") for m in methods) else []
    start = time.perf_counter()
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        sys.exit(f"beauty_converged: part {name} failed: {relative_command(command[3:], str(ROOT))}")
    wall = time.perf_counter() - start
    results = read_json(ROOT / run_dir / "results.json")
    users = read_users(ROOT / run_dir / results["methods"][methods[0]]["folder"] / "eval")
    out = out_dir / f"{name}.json"
    part = {
        "benchmark": "converged Beauty benchmark: one part", "part": name, "methods": methods,
        "part_settings": settings, "overrides": overrides, "wall_s": round(wall, 1),
        "sids_sha256": digest(sids_file(ROOT / run_dir)),
        "split_sha256": digest(ROOT / run_dir / "data" / "split.json"),
        "config": results["config"], "results": {m: results["methods"][m] for m in methods},
        "sids": results.get("sids"), "stage_seconds": stage_seconds(ROOT / run_dir),
        "per_user": {"users": users, "ranks": {m: read_ranks(ROOT / run_dir / results["methods"][m]["folder"] / "eval")
                                               for m in methods}},
        "command_part": relative_command(["python", *command[1:]], str(ROOT)), "machine": machine(), **invocation(),
    }
    if scratch is not None:
        part = json.loads(json.dumps(part).replace(str(scratch), "<quick>"))
    write_json(ROOT / out, without_paths(part))
    print(f"beauty_converged: part {name} done in {wall:.0f} s; wrote {out}")
    return out


def comparable(config: dict, settings: list[str]) -> dict:
    """A part's config without what its own settings change (and the run folder)."""
    config = json.loads(json.dumps(config))
    config.pop("out", None)
    config.get("data", {}).setdefault("catalog", "all")  # parts run before `data.catalog` existed kept every item
    for setting in settings:
        section, key = setting.split("=", 1)[0].split(".", 1)
        config.get(section, {}).pop(key, None)
    return config


def check_parts(parts: dict[str, dict]) -> None:
    """Refuse parts that were not run on the same users, split, SIDs and settings (beyond their own)."""
    names = list(parts)
    own = [setting for part in parts.values() for setting in part["part_settings"]]  # what parts may set apart
    for name in names[1:]:
        one, first = parts[name], parts[names[0]]
        if one["per_user"]["users"] != first["per_user"]["users"]:
            sys.exit(f"beauty_converged: part {name} evaluated other test users than part {names[0]}")
        if one["split_sha256"] != first["split_sha256"]:
            sys.exit(f"beauty_converged: part {name} ran on another split than part {names[0]}")
        if one["overrides"] != first["overrides"] or comparable(one["config"], own) != comparable(first["config"], own):
            sys.exit(f"beauty_converged: part {name} ran with other settings than part {names[0]} beyond the parts' own")
    sids = {part["sids_sha256"] for part in parts.values() if part["sids_sha256"] is not None}
    if len(sids) > 1:
        sids_parts = {name: part["sids_sha256"][:12] for name, part in parts.items() if part["sids_sha256"]}
        sys.exit(f"beauty_converged: the parts ran on different SIDs ({sids_parts}); SIDs built on another kind of "
                 "CPU can differ: run the parts on one SIDs folder (--sids)")


def row(part: dict, method: str) -> dict:
    """A method's row: metrics with CIs, compute (grounding included), its validation curve and kept step."""
    result = part["results"][method]
    return {"kind": result["kind"], "part": part["part"], "part_settings": part["part_settings"],
            "history": result.get("history"),
            **{metric: result["metrics"].get(metric) for metric in ("recall@5", "recall@10", "ndcg@5", "ndcg@10")},
            "ci": {metric: result["metrics_ci"].get(metric) for metric in ("recall@5", "recall@10", "ndcg@5", "ndcg@10")},
            "train_tokens": result["train_tokens"], "train_seconds": result["train_seconds"],
            "compute": result["compute"], "validations": result.get("validations"), "best_step": result.get("best"),
            "convergence": flattened(part, method)}


def flattened(part: dict, method: str) -> dict:
    """`gti.analysis.convergence.verdicts` of a part's method (answer loss and monitor; SASRec: recall@10)."""
    result, train = part["results"][method], part["config"]["train"]
    return verdicts(result.get("validations"), result["kind"] == "anchor", train["monitor"], train["patience"])


def validated(one: dict, monitor: str) -> float:
    """A method's validation `monitor` (train.monitor) at its kept step: how the best LM method is chosen, never on test."""
    kept = [point for point in one["validations"] or [] if point["step"] == one["best_step"]]
    return kept[0][monitor] if kept else float("-inf")


def paired(ranks: dict, one: str, other: str) -> dict:
    return {metric: paired_test(per_user_values(ranks[one], metric), per_user_values(ranks[other], metric))
            for metric in ("recall@10", "ndcg@10")}


def exploratory(folders: list[Path], first: dict, rows: dict, ranks: dict, best: str | None) -> tuple[dict, dict]:
    """Parts run after the pre-registration with other settings (each folder one `--name`'s parts, e.g. the scratch
    decoder with a longer cap): each method's row and its paired tests against the best LM method, the same method's
    main row, sasrec and mostpop on the same users; and, per folder, the issue's method tests (`TESTS`: gti vs
    rows-first, gti vs mean-rowlr) between the folder's own parts where both ran. Not part of the pre-registered
    family (no Holm), reported as exploratory. A part on other SIDs (built on another kind of CPU, say) is reported
    with `same_sids` false: its SIDs are one more way in which it differs. A grid point (part `<method>-lr<rate>`) is
    labelled by its part and also tested against its method's main part in the same folder."""
    found, between = {}, {}
    for folder in folders:
        own_ranks, variants, suffix = {}, {}, f", exploratory: {folder.name.removeprefix('beauty_converged_').removesuffix('_parts')}"
        for path in sorted((ROOT / folder).glob("*.json")):
            part = read_json(path)
            if part["per_user"]["users"] != first["per_user"]["users"] or part["split_sha256"] != first["split_sha256"]:
                sys.exit(f"beauty_converged: exploratory {path}: other test users or split than the parts'")
            sids = {p for p in (part["sids_sha256"], first["sids_sha256"]) if p is not None}
            for method in part["methods"]:
                # a grid point (part "mean-rowlr-lr0.0001") is labelled by its part, a main part by its method
                variant = part["part"].removeprefix(method) if part["part"].startswith(method) else ""
                label = f"{method}{variant}{suffix}"
                own = part["per_user"]["ranks"][method]
                against = {name: paired({"x": own, name: ranks[name]}, "x", name)
                           for name in dict.fromkeys([best, method, "sasrec", "mostpop"]) if name in ranks}
                found[label] = {**row(part, method), "overrides": part["overrides"], "paired": against,
                                "same_sids": len(sids) <= 1, "sids_sha256": part["sids_sha256"],
                                "command": part["command"], "machine": part["machine"]}
                if variant:
                    variants[label] = (method, own)
                else:
                    own_ranks[method] = own
        # a grid point against its method's main part in the same folder (the same SIDs and machine kind)
        for label, (method, own) in variants.items():
            if method in own_ranks:
                found[label]["paired"][f"{method}{suffix}"] = paired({"x": own, "y": own_ranks[method]}, "x", "y")
        tested = {f"{one}_vs_{other}": {**paired(own_ranks, one, other),
                                        "train_tokens": [found[f"{m}{suffix}"]["train_tokens"] for m in (one, other)],
                                        "train_seconds": [found[f"{m}{suffix}"]["train_seconds"] for m in (one, other)],
                                        "machines": [found[f"{m}{suffix}"]["machine"].get("cpu_model")
                                                     for m in (one, other)]}
                  for one, other in TESTS if one in own_ranks and other in own_ranks}
        if tested:
            between[folder.name] = tested
    return found, between


def seed_spread(rows: dict, ranks: dict, seed_parts: dict) -> dict:
    """Issue 31's seeds: per method its recall@10 and NDCG@10 at every seed run (seed 0 = its main part), their mean,
    min and max; then gti - rows-first at each seed both have and, paired over the same users, on the per-user values
    averaged over those seeds (as `gti compare --seeds` averages them)."""
    runs = {}
    for method in ("gti", "rows-first"):
        if method in ranks:
            runs[method] = {0: ranks[method]} | {
                seed: part["per_user"]["ranks"][method] for seed in SEEDS
                if (part := seed_parts.get(f"{method}-seed{seed}")) is not None}
    found = {"rule": "seed 0: the main part (the config's seeds); seeds 1, 2: init, grounding and fine-tuning seeds "
                     "set to them on the same SIDs, split and test users", "methods": {},
             "parts": {name: {"wall_s": part["wall_s"], "command": part["command"], "code": part.get("code"),
                              "machine": part["machine"]} for name, part in seed_parts.items()}}
    for method, by_seed in runs.items():
        metrics = {metric: {seed: float(per_user_values(seed_ranks, metric).mean()) for seed, seed_ranks in by_seed.items()}
                   for metric in ("recall@10", "ndcg@10")}
        found["methods"][method] = {
            "seeds": sorted(by_seed),
            **{key: {0: rows[method][key]} | {seed: seed_parts[f"{method}-seed{seed}"]["results"][method].get(field)
                                              for seed in by_seed if seed}
               for key, field in (("train_seconds", "train_seconds"), ("train_tokens", "train_tokens"),
                                  ("best_step", "best"), ("validations", "validations"))},
            "convergence": {0: rows[method]["convergence"]} | {
                seed: flattened(seed_parts[f"{method}-seed{seed}"], method) for seed in by_seed if seed},
            **{metric: {"by_seed": values, "mean": sum(values.values()) / len(values), "min": min(values.values()),
                        "max": max(values.values())} for metric, values in metrics.items()}}
    if len(runs) == 2:
        shared = sorted(set(runs["gti"]) & set(runs["rows-first"]))
        averaged = {method: {metric: sum(per_user_values(runs[method][seed], metric) for seed in shared) / len(shared)
                             for metric in ("recall@10", "ndcg@10")} for method in runs}
        found["gti_vs_rows-first"] = {
            "seeds": shared,
            "diff_by_seed": {seed: found["methods"]["gti"]["recall@10"]["by_seed"][seed]
                             - found["methods"]["rows-first"]["recall@10"]["by_seed"][seed] for seed in shared},
            **{metric: paired_test(averaged["gti"][metric], averaged["rows-first"][metric])
               for metric in ("recall@10", "ndcg@10")}}
    return found


def confirmation(tests: dict, reference: dict, alpha: float = 0.05) -> dict:
    """Each pre-registered test of a confirmation against the reference benchmark's (the pre-registered rule:
    confirmed only where the difference has the reference's sign, its 95% CI excludes zero and its Holm p < alpha).
    A reference difference of exactly zero predicts no sign, so nothing can confirm it."""
    found = {}
    for name, test in tests.items():
        if name not in reference:
            continue
        ours, theirs = test["recall@10"], reference[name]["recall@10"]
        same_sign = ours["diff"] * theirs["diff"] > 0
        excludes_zero = ours["ci"][0] > 0 or ours["ci"][1] < 0
        found[name] = {"reference_diff": theirs["diff"], "diff": ours["diff"], "ci": ours["ci"],
                       "p_holm": ours["p_holm"], "same_sign": same_sign, "ci_excludes_zero": excludes_zero,
                       "confirmed": same_sign and excludes_zero and ours["p_holm"] < alpha}
    return found


def hypotheses(rows: dict, ranks: dict, best: str | None) -> tuple[dict, dict]:
    """The issue's tests over the same users (best LM vs sasrec and vs scratch, gti vs rows-first and vs mean-rowlr,
    with each side's tokens and seconds), recall@10 Holm-adjusted over them; and every LM method against mostpop and
    against sasrec, Holm over the LM methods."""
    tests = {}
    if best is not None:
        for anchor in ("sasrec", "scratch"):
            if anchor in rows and anchor != best:
                tests[f"best_lm_vs_{anchor}"] = {"best_lm": best, **paired(ranks, best, anchor)}
    for one, other in TESTS:
        if one in rows and other in rows:
            tests[f"{one}_vs_{other}"] = {
                **paired(ranks, one, other),
                "train_tokens": [rows[one]["train_tokens"], rows[other]["train_tokens"]],
                "train_seconds": [rows[one]["train_seconds"], rows[other]["train_seconds"]]}
    adjusted = holm({name: test["recall@10"]["p_value"] for name, test in tests.items()}) if tests else {}
    for name, test in tests.items():
        test["recall@10"]["p_holm"] = adjusted[name]
    families = {}
    lms = [name for name, one in rows.items() if one["kind"] == "lm"]
    for anchor in ("mostpop", "sasrec"):
        found = {name: paired(ranks, name, anchor)["recall@10"] for name in lms if anchor in rows}
        adjusted = holm({name: test["p_value"] for name, test in found.items()}) if found else {}
        families[anchor] = {name: {**test, "p_holm": adjusted[name]} for name, test in found.items()}
    return tests, families


def kept_validation(one: dict) -> dict | None:
    """A row's validation at its kept step (an LM's `step`, SASRec's `epoch`), or None without a curve."""
    return next((point for point in one.get("validations") or []
                 if point.get("step", point.get("epoch")) == one["best_step"]), None)


def cpu(machine_: dict) -> str:
    """A part's machine in a few words: the CPU model and whether it has native bfloat16 (or the GPU)."""
    return machine_.get("gpu") or f"{machine_.get('cpu_model')} ({'' if machine_.get('cpu_native_bf16') else 'no '}native bf16)"


def best_lm_of(rows: dict, monitor: str, reference: dict | None) -> tuple[str | None, str | None]:
    """The best LM (the pretrained LM method with the highest validation `monitor` at its kept step) and this run's
    own choice: a confirmation (`reference`: the confirmed JSON or its `tuned`) takes the reference's best LM."""
    pretrained = [name for name, one in rows.items() if one["kind"] == "lm" and name != "scratch"]
    own = max(pretrained, key=lambda name: validated(rows[name], monitor), default=None)
    return (reference["best_lm"] if reference is not None and reference["best_lm"] in pretrained else own), own


def tuning(rows: dict, ranks: dict, grid_parts: dict, monitor: str, machines: dict, reference: dict | None = None) -> dict:
    """The grid (`GRID`): per method, its points (the main part's pre-registered learning rate and the grid parts that
    ran), each with its validation curve and its value at the kept step, test metrics and compute; the point chosen
    on validation by `gti compare --grid`'s rule (`gti.tuning.CHOICE`: recall@10, then NDCG@10, then MRR, then the lower learning
    rate: the grid's order); the search's tokens and seconds (every point's). Then the issue's tests again on the
    chosen points (the best LM by validation among the chosen), the same family as the main table's. A method whose
    grid has not every point is listed in `incomplete` and its main part stands for it in the tests. Each point names
    the machine it ran on (`machines`: the main parts' by method); a method whose points ran on more than one kind of
    machine is listed in `mixed_machines`, since its choice then also compares machines.

    A confirmation (`reference`: the confirmed benchmark's `tuned`) makes no choice: each method takes the point the
    reference chose, its best LM is the reference's, and `incomplete` lists the methods whose chosen point has not
    run here (their main part stands for them where it ran); a method whose main part did not run here takes its
    chosen point where that ran; `confirmation` judges the tests by the pre-registered rule."""
    chosen_rows, chosen_ranks, methods, incomplete = dict(rows), dict(ranks), {}, []
    for method, (key, base) in GRID.items():
        points, ran_on = [], {}
        if method in rows:
            points.append((base, MAIN_PART.get(method, method), rows[method], ranks[method]))
            ran_on[base] = cpu(machines[method])
        for factor in GRID_FACTORS:
            part = grid_parts.get(grid_part(method, base * factor))
            if part is not None:
                points.append((base * factor, part["part"], row(part, method), part["per_user"]["ranks"][method]))
                ran_on[base * factor] = cpu(part["machine"])
        points.sort(key=lambda point: point[0])
        valid = [kept_validation(one) or {} for _, _, one, _ in points]
        if reference is None:
            if method not in rows:
                continue
            best = max(range(len(points)), key=lambda index: (
                tuple(valid[index].get(m, float("-inf")) for m in CHOICE), -index))
            if len(points) < 1 + len(GRID_FACTORS):
                incomplete.append(method)
        else:  # a confirmation: the reference's choice (its 1x where it has none) if that point ran here, else its 1x
            theirs = reference["methods"].get(method, {}).get("chosen", base)
            mine = [index for index, (value, *_) in enumerate(points) if math.isclose(value, theirs)]
            if not mine and method in reference["methods"]:
                incomplete.append(method)
            if not mine and method not in rows:  # neither its chosen point nor its main part ran here
                continue
            best = mine[0] if mine else next(index for index, (value, *_) in enumerate(points) if value == base)
        chosen_rows[method], chosen_ranks[method] = points[best][2], points[best][3]
        methods[method] = {
            "key": key, "values": [value for value, *_ in points], "chosen": points[best][0], "chosen_part": points[best][1],
            "points": [{"value": value, "part": name, "machine": ran_on[value], "valid": valid[index],
                        **{m: one[m] for m in ("recall@5", "recall@10", "ndcg@5", "ndcg@10", "ci", "train_tokens",
                                               "train_seconds", "best_step", "convergence", "validations")}}
                       for index, (value, name, one, _) in enumerate(points)],
            "search": {"points": len(points),
                       "train_seconds": round(sum(one["train_seconds"] or 0 for _, _, one, _ in points), 3),
                       "train_tokens": None if points[0][2]["kind"] == "anchor"
                       else sum(one["train_tokens"] for _, _, one, _ in points)}}
    best_lm, own_choice = best_lm_of(chosen_rows, monitor, reference)
    tests, families = hypotheses(chosen_rows, chosen_ranks, best_lm)
    return {"rule": f"each method's {', '.join(f'{m}: {k}' for m, (k, _) in GRID.items())} at "
                    f"{', '.join(f'{f:g}x' for f in (1, *GRID_FACTORS))} its pre-registered value, chosen by the "
                    "validation " + ", then ".join(CHOICE) + " at the kept step (ties: the lower value); tested on "
                    "the same 1,000 users; the tests are those of `paired`, on the chosen points",
            "methods": methods, "incomplete": incomplete,
            "mixed_machines": [method for method, one in methods.items()
                               if len({point["machine"] for point in one["points"]}) > 1],
            "best_lm": best_lm, "paired": tests,
            "lm_vs_anchors_holm": families,
            **({"own_choice": {"best_lm": own_choice},
                "confirmation": confirmation(tests, reference["paired"])} if reference is not None else {})}


def merge(out_dir: Path, stem: Path, extra: list[Path] = (), confirms: Path | None = None, quick: bool = False) -> None:
    """Every part JSON in `out_dir` (and the exploratory parts in `extra`) -> the benchmark's JSON (module docstring):
    `<stem>_quick.json` for --quick, else `<stem>_gpu.json` where the parts ran on a GPU and `<stem>_cpu.json` where not."""
    files = sorted((ROOT / out_dir).glob("*.json"))
    found = {read_json(path)["part"]: read_json(path) for path in files}
    parts = {name: found[name] for name in PARTS if name in found}
    if not parts:
        sys.exit(f"beauty_converged: no part JSON in {out_dir}")
    kind = "quick" if quick else "gpu" if any(part["machine"].get("gpu") for part in found.values()) else "cpu"
    out = stem.with_name(f"{stem.name}_{kind}.json")
    seed_parts = {name: found[name] for name in SEED_PARTS if name in found}
    grid_parts = {name: found[name] for name in GRID_PARTS if name in found}
    check_parts({**parts, **seed_parts, **grid_parts})
    rows, ranks, machines = {}, {}, {}
    for part in parts.values():
        for method in part["methods"]:
            rows[method], ranks[method] = row(part, method), part["per_user"]["ranks"][method]
            machines[method] = part["machine"]
    monitor = next(iter(parts.values()))["config"]["train"]["monitor"]
    reference = read_json(ROOT / confirms) if confirms is not None else None
    reference_tuned = reference.get("tuned") if reference is not None else None
    best, own_choice = best_lm_of(rows, monitor, reference)
    tests, families = hypotheses(rows, ranks, best)
    first = next(iter(parts.values()))
    write_json(ROOT / out, without_paths({
        "benchmark": "converged Beauty benchmark (issue 31): every method on the sequence objective, the same "
                     "history, validated as it trains, paired over the same test users",
        "config_file": str(CONFIG), "config": comparable(first["config"], []),
        "test_users": len(first["per_user"]["users"]),
        "parts": {name: {"methods": part["methods"], "part_settings": part["part_settings"], "wall_s": part["wall_s"],
                         "command": part["command"], "code": part.get("code"), "machine": part["machine"]}
                  for name, part in parts.items()},
        "missing_parts": [name for name in PARTS if name not in parts],
        "methods": rows, "best_lm": best, "best_lm_rule": "the pretrained LM method with the highest validation "
        "train.monitor at its kept step; `paired` holds the issue's tests, recall@10 Holm-adjusted over them (p_holm)"
        + (f"; a confirmation of {confirms}: its best LM (this benchmark's own validation chose {own_choice})"
           if reference is not None else ""),
        "paired": tests, "lm_vs_anchors_holm": families,
        **({"confirms": str(confirms), "confirmation": confirmation(tests, reference["paired"])}
           if reference is not None else {}),
        **dict(zip(("exploratory", "exploratory_paired"), exploratory(list(extra), first, rows, ranks, best))),
        **({"seeds": seed_spread(rows, ranks, seed_parts)} if seed_parts else {}),
        **({"tuned": tuning(rows, ranks, grid_parts, monitor, machines, reference_tuned)}
           if grid_parts or reference_tuned else {}),
        "published_full_beauty": PUBLISHED, "sids": next((p["sids"] for p in parts.values() if p.get("sids")), None),
        "per_user": {"users": first["per_user"]["users"], "ranks": ranks},
        "machine": machine(), **invocation(),
    }))
    print(f"beauty_converged: merged {', '.join(parts)} into {out}" + (
        f" (missing: {', '.join(name for name in PARTS if name not in parts)})" if len(parts) < len(PARTS) else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", help=f"parts to run, in order, from {', '.join(ALL_PARTS)}")
    parser.add_argument("--merge", action="store_true", help="only merge the part JSONs that exist")
    parser.add_argument("--exploratory", action="append", type=Path, default=[],
                        help="a folder of parts run later with other settings (another --name's _parts folder)")
    parser.add_argument("--confirms", type=Path, help="the merged JSON this run confirms (its best LM, its signs)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override (every part)")
    parser.add_argument("--run-dir", type=Path, help="parts' run folders' parent (default: runs/beauty_converged)")
    parser.add_argument("--name", default="beauty_converged",
                        help="file names: <name>_parts/ and <name>_cpu.json (<name>_gpu.json where the parts ran on a GPU)")
    parser.add_argument("--sids", type=Path, help="the SIDs folder every LM part uses (made by `gti sids`, or a part's "
                        "run folder's sids/; default: the first part's that ran)")
    parser.add_argument("--no-merge", action="store_true", help="run the parts only (several at once, each its own "
                        "process: benchmarks/gpu_converged.sh); merge later with --merge")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the JSONs (default: benchmarks/results)")
    parser.add_argument("--quick", action="store_true", help="a tiny random model and catalog: a smoke test")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="beauty_converged_")) if args.quick else None
    try:
        overrides = (tiny_inputs(scratch, users=16, lengths=(5, 9), brand=True) + QUICK_SETTINGS if args.quick else []) + args.set
        run_root = args.run_dir or (scratch / "runs" if args.quick else Path("runs/beauty_converged"))
        out_dir = args.results / (f"{args.name}_quick_parts" if args.quick else f"{args.name}_parts")
        if args.sids is not None and not (ROOT / args.sids / "sids.json").is_file():
            parser.error(f"--sids {args.sids}: no sids.json there (expected a folder made by `gti sids`)")
        if args.parts:
            unknown = [name for name in args.parts.split(",") if name not in ALL_PARTS]
            if unknown:
                parser.error(f"--parts: unknown {', '.join(unknown)}; expected some of {', '.join(ALL_PARTS)}")
            todo = args.parts.split(",")
        else:
            todo = [] if args.merge else [name for name in PARTS if not (ROOT / out_dir / f"{name}.json").is_file()]
        for name in todo:
            built = [ROOT / run_root / part / "sids" for part in PARTS if sids_file(ROOT / run_root / part).is_file()]
            run_part(name, run_root, overrides, args.sids or (built[0] if built else None), out_dir, scratch)
        if not args.no_merge:
            merge(out_dir, args.results / args.name, args.exploratory, args.confirms, args.quick)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
