"""The benchmark scripts' own logic: ratio verdicts, paths in results, and their quick modes (smoke tests)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gti.methods import uses_text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import relative_command, repo_relative  # noqa: E402
from timing import interleaved, ratio  # noqa: E402


def test_a_ratio_is_met_only_beyond_its_spread():
    clear = ratio([10.0, 10.2, 10.1, 9.9, 10.0], [10.0] * 5, target=0.9)
    assert clear["met"] is True and clear["median"] == pytest.approx(1.0) and clear["spread"] == pytest.approx(0.03)
    noisy = ratio([10.0, 14.0, 7.0, 10.0, 10.5], [10.0] * 5, target=0.9)  # median 1.0, spread 0.7 > margin 0.1
    assert noisy["met"] is False and "cannot tell" in noisy["why"]
    missed = ratio([8.0] * 5, [10.0] * 5, target=0.9)
    assert missed["met"] is False and missed["margin"] == pytest.approx(-0.1) and "misses" in missed["why"]
    at_most = ratio([1.05, 1.04, 1.05, 1.06, 1.05], [1.0] * 5, target=1.1, at_least=False)
    assert at_most["met"] is True and at_most["margin"] == pytest.approx(0.05)
    assert ratio([1.0] * 5, [1.0] * 5, target=None)["met"] is None
    with pytest.raises(ValueError):
        ratio([1.0] * 5, [1.0] * 4, target=1.0)


def test_interleaved_alternates_after_a_warm_up():
    calls = []
    measured = interleaved({"a": lambda: calls.append("a") or 2.0, "b": lambda: calls.append("b") or 3.0}, 5)
    assert calls == ["a", "b"] * 6  # one warm-up round, then five timed ones
    assert measured == {"a": [2.0] * 5, "b": [3.0] * 5}


def test_results_hold_no_absolute_path_of_this_machine(tmp_path):
    root = tmp_path / "repo"
    (root / "benchmarks").mkdir(parents=True)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert repo_relative(str(root / "benchmarks"), root=root) == "benchmarks"
    assert repo_relative(str(tmp_path / "shared" / "data"), root=root) == "../shared/data"
    assert repo_relative("/opt/elsewhere/cache", root=root) == "<outside the repo>/cache"
    assert repo_relative("benchmarks", cwd=str(root), root=root) == "benchmarks"
    assert repo_relative("--quick", cwd=str(root), root=root) == "--quick"
    command = relative_command(["GTI_CACHE=/opt/c", "python", str(root / "benchmarks" / "x.py"), "3"], str(root), root)
    assert command == "'GTI_CACHE=<outside the repo>/c' python benchmarks/x.py 3"


def test_results_record_the_commit_and_whether_the_tree_differed(tmp_path):
    from machine import code_version

    assert code_version(tmp_path) is None  # not a git checkout
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert code_version(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "b.py").write_text("untracked, not a change to the code that ran\n")
    assert code_version(tmp_path)["dirty"] is False
    (tmp_path / "a.py").write_text("x = 2\n")
    assert code_version(tmp_path) == {"commit": head, "dirty": True}


def test_committed_results_hold_no_absolute_path():
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        text = path.read_text()
        for marker in ('"/', " /", "=/"):
            assert marker not in text, (path.name, marker)


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train_throughput.py", "decode.py", "packing.py"])
def test_quick_mode_runs_and_records_its_verdicts(script, tmp_path):
    out = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    command = ["nice", "-n", "19", sys.executable, f"benchmarks/{script}", "--quick", "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["quick"] is True and result["cwd"] == "."
    assert str(ROOT) not in out.read_text() and str(tmp_path) not in out.read_text()
    verdicts = (
        [result["loop_vs_bare"]] if script == "train_throughput.py" else [result["packed_vs_padded"]]
        if script == "packing.py" else [result["speedup_vs_hf"], result["ratio_to_floor"], result["pool_speedup_vs_naive"]]
    )
    if script == "decode.py":  # the benchmark setting: every precision x batch, each with its floor ratio
        setting = result["benchmark_setting"]
        assert len(setting["by_mode"]) == len(setting["precisions"]) * len(setting["batch_sizes"])
        verdicts += [mode["ratio_to_floor"] for mode in setting["by_mode"].values()]
        for precision in setting["precisions"]:
            assert setting[f"{precision}_full_beauty_test_pass_minutes"] > 0
            assert setting[f"{precision}_batched_vs_alone"]["same_ranked_lists"] <= setting["prompts"]
    for verdict in verdicts:
        assert len(verdict["runs"]) >= 5 and verdict["min"] <= verdict["median"] <= verdict["max"]
        assert verdict["met"] == (verdict["margin"] > 0 and verdict["spread"] < verdict["margin"])
        assert verdict["why"]


@pytest.mark.slow
def test_the_fair_benchmark_quick_mode_records_every_method_the_grid_and_the_machine(tmp_path):
    out = tmp_path / "fair.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    command = ["nice", "-n", "19", sys.executable, "benchmarks/beauty_fair.py", "--quick", "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(out.read_text())
    methods = ["mostpop", "sasrec", "mean", "mean-rowlr", "text", "rows-first", "gti", "lcrec"]
    assert result["quick"] is True and list(result["methods"]) == methods and result["cwd"] == "."
    assert "HF_HUB_OFFLINE=1" in result["command"] and "python benchmarks/beauty_fair.py --quick" in result["command"]
    assert str(ROOT) not in out.read_text() and str(tmp_path) not in out.read_text() and '"/' not in out.read_text()
    assert result["machine"]["cpu_cores"] and result["machine"]["versions"]["torch"]
    assert set(result["tuning"]["methods"]) == {"sasrec", "mean", "mean-rowlr", "text", "rows-first", "gti", "lcrec"}
    for name, row in result["summary"]["methods"].items():
        anchor = name in ("mostpop", "sasrec")
        assert row["kind"] == ("anchor" if anchor else "lm")
        assert (row["train_tokens"] is None) == anchor and row["train_seconds"] >= 0
        assert row["chosen"] == (None if name == "mostpop" else result["tuning"]["methods"][name]["settings"])
        if not anchor:  # budget points matched by tokens
            assert [p["finetune_steps"] for p in result["methods"][name]["by_budget"]] == [2, 4]
    assert {entry["method"] for entry in result["compute_matched"]} == {"rows-first", "gti"}
    best = result["summary"]["best_lm_vs_mostpop"]
    assert best["method"] in methods[2:] and set(best["paired"]) == {"diff", "ci", "p_value"}
    assert result["data_source"] == result["config"]["data"]["source"]
    family = result["summary"]["lm_vs_anchors_holm"]  # every LM method against each anchor, Holm-adjusted
    assert set(family) == {"mostpop", "sasrec"} and set(family["mostpop"]) == set(methods[2:])
    for anchor, tests in family.items():
        for name, test in tests.items():
            assert test["p_value"] == result["summary"]["methods"][name]["vs_anchors"][anchor]["p_value"]
            assert test["p_value"] <= test["p_holm"] <= min(1.0, len(tests) * test["p_value"]) + 1e-12
    versus = result["gti_vs_lm_methods"]  # GTI against every other LM method, with both sides' compute
    assert set(versus) == {"mean", "mean-rowlr", "text", "rows-first", "lcrec"}
    for name, test in versus.items():
        assert set(test["recall@10"]) == {"diff", "ci", "p_value"}
        tokens = [result["methods"]["gti"]["train_tokens"], result["methods"][name]["train_tokens"]]
        assert test["train_tokens"] == tokens and test["at_most_its_tokens"] == (tokens[0] <= tokens[1])
        diff = result["methods"]["gti"]["metrics"]["recall@10"] - result["methods"][name]["metrics"]["recall@10"]
        assert abs(test["recall@10"]["diff"] - diff) < 1e-9
    seconds = result["stage_seconds"]
    assert seconds["total"] >= seconds["grid_points"] > 0 and seconds["stages"] > 10
    per_user = result["per_user"]  # so that a later run on the same users can be paired with these rows
    assert set(per_user["ranks"]) == set(methods) and len(per_user["users"]) == len(set(per_user["users"]))
    for name, ranks in per_user["ranks"].items():
        assert len(ranks) == len(per_user["users"])
        hits = sum(rank is not None and rank <= 5 for rank in ranks) / len(ranks)  # 5 beams in the quick run
        assert abs(hits - result["methods"][name]["metrics"]["recall@5"]) < 1e-9

    # a confirmation run: no grid, every method at the settings the first run chose
    confirmed = tmp_path / "confirm.json"
    completed = subprocess.run([*command[:-2], "--choices", str(out), "--methods", "mostpop,mean-rowlr,gti",
                                "--out", str(confirmed)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-2000:]
    again = json.loads(confirmed.read_text())
    assert again["grid_flags"] == [] and again["choices_file"].endswith("/fair.json") and list(again["methods"]) == ["mostpop", "mean-rowlr", "gti"]
    assert again["tuning"]["choices_from"] == again["choices_file"] and again["tuning"]["untuned"] == []
    assert again["stage_seconds"]["grid_points"] == 0  # nothing tuned here
    for name in ("mean-rowlr", "gti"):
        assert again["summary"]["methods"][name]["chosen"] == result["tuning"]["methods"][name]["settings"]
    refused = subprocess.run([*command[:-2], "--choices", str(out), "--grid", "finetune.lr=1e-3", "--out", str(confirmed)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "exclude each other" in refused.stderr


@pytest.mark.slow
def test_beauty_cold_quick_records_every_method_on_both_test_sets_and_gti_against_every_text_free(tmp_path):
    out = tmp_path / "cold.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    command = ["nice", "-n", "19", sys.executable, "benchmarks/beauty_cold.py", "--quick", "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-2000:]
    text = out.read_text()
    assert str(ROOT) not in text and str(tmp_path) not in text and "/tmp/" not in text
    result = json.loads(text)
    assert result["quick"] is True and result["cwd"] == "." and result["machine"]["cpu_cores"] >= 1
    assert "python benchmarks/beauty_cold.py --quick" in result["command"]
    assert result["compare_command"].startswith("python -m gti.cli compare configs/beauty_cold.toml")
    assert list(result["methods"]) == ["mostpop", "sasrec", "mean", "mean-rowlr", "text", "gti", "rows-first", "lcrec"]
    for name, method in result["methods"].items():
        assert set(method["cold_start"]) == {"warm", "cold"} and "cold-only" in method["cold_start"]["cold"]
        anchor = name in ("mostpop", "sasrec")
        assert result["compute"][name]["train_tokens"] == method["train_tokens"] and (method["train_tokens"] is None) == anchor
        assert result["compute"][name]["train_seconds"] == method["train_seconds"] >= 0
        assert set(result["compute"][name]["stage_seconds"]) == ({"fit", "eval"} if anchor else
                                                                 {"init", "finetune", "eval"} | ({"ground"} if name in
                                                                                                ("gti", "rows-first") else set()))
    assert result["compute"]["gti"]["train_tokens"] > result["compute"]["mean"]["train_tokens"]  # grounding counted
    versus = result["gti_vs_text_free"]
    assert set(versus) == {"warm", "cold"} and set(versus["cold"]) == {"beam", "cold-beams", "cold-only"}
    for entry in versus["cold"].values():
        text_free = [name for name in result["methods"] if not uses_text(name)]
        assert entry["family"] == text_free == list(entry["against"]) and "rows-first" in text_free
        for test in entry["against"].values():
            for metric in ("recall@10", "ndcg@10"):
                assert test[metric]["ci"][0] <= test[metric]["diff"] <= test[metric]["ci"][1]
                assert 0 < test[metric]["p_value"] <= test[metric]["p_holm"] <= 1
    assert versus == {test_set: {decoding: by_method["gti"] for decoding, by_method in by_decoding.items()}
                      for test_set, by_decoding in result["cold_start"]["text_vs_text_free"].items()}
    each = result["gti_vs_each"]  # GTI against every other method, both sides' compute beside it
    assert set(each) == {"warm", "cold"} and set(each["cold"]) == {"beam", "cold-beams", "cold-only"}
    for test_set, by_decoding in each.items():
        for decoding, by_method in by_decoding.items():
            assert set(by_method) == set(result["methods"]) - {"gti"}
            for name, test in by_method.items():
                metrics = result["methods"]  # 5 beams here: every rank is at most 5, so recall@10 is recall@5
                diff = (metrics["gti"]["cold_start"][test_set][decoding]["metrics"]["recall@5"]
                        - metrics[name]["cold_start"][test_set][decoding]["metrics"]["recall@5"])
                assert abs(test["recall@10"]["diff"] - diff) < 1e-9
                assert test["train_tokens"] == [metrics["gti"]["train_tokens"], metrics[name]["train_tokens"]]
    for name, test in versus["cold"]["cold-only"]["against"].items():
        assert each["cold"]["cold-only"][name]["recall@10"]["diff"] == test["recall@10"]["diff"]
    assert result["stage_seconds"]["total"] > 0 and result["stage_seconds"]["grid_points"] == 0


def _fair_json(path, steps, gti, rows_first, users=2000):
    config = {"out": str(path.parent), "data": {"users": users}, "ground": {"steps": steps, "lr": 0.01}}
    methods = {"mostpop": {"recall@10": 0.011, "recall@10_ci": [0.007, 0.016], "train_tokens": None, "train_seconds": 0}}
    for name, (value, tokens) in {"gti": gti, "rows-first": rows_first}.items():
        methods[name] = {"recall@10": value, "recall@10_ci": [value - 0.004, value + 0.005], "train_tokens": tokens,
                         "train_seconds": tokens / 400}
    path.write_text(json.dumps({"config": config, "summary": {"methods": methods}}))
    return path


def test_the_grounding_curve_reads_one_point_per_file_and_refuses_other_differences(tmp_path, monkeypatch):
    from plot_grounding import collect, main

    files = [_fair_json(tmp_path / "g800.json", 800, (0.019, 700_000), (0.015, 400_000)),
             _fair_json(tmp_path / "g50.json", 50, (0.012, 130_000), (0.013, 120_000)),
             _fair_json(tmp_path / "g200.json", 200, (0.017, 227_816), (0.0165, 182_336))]
    points, anchor = collect(files)
    assert anchor == {"name": "mostpop", "value": 0.011, "ci": [0.007, 0.016]}
    assert sorted(p["ground_steps"] for p in points["gti"]) == [50, 200, 800]
    assert {p["ground_steps"]: p["train_tokens"] for p in points["rows-first"]} == {50: 120_000, 200: 182_336, 800: 400_000}
    out = tmp_path / "curve.png"
    monkeypatch.setattr(sys, "argv", ["plot_grounding.py", *map(str, files), str(out)])
    main()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = _fair_json(tmp_path / "other.json", 400, (0.02, 1), (0.02, 1), users=5000)
    with pytest.raises(SystemExit, match=r"other.json: its config differs .* more than ground.steps \(sections: data\)"):
        collect([files[0], other])
    with pytest.raises(SystemExit, match="two files at the same ground.steps"):
        collect([files[0], files[0]])


@pytest.mark.slow
def test_sequence_vs_sliding_quick_records_both_variants_on_the_same_users(tmp_path):
    out = tmp_path / "sequence.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    command = ["nice", "-n", "19", sys.executable, "benchmarks/sequence_vs_sliding.py", "--quick", "--out", str(out),
               "--set", "eval.beams=10"]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(out.read_text())
    sliding, sequence = result["variants"]["sliding"], result["variants"]["sequence"]
    assert sequence["examples"] < sliding["examples"]  # one example per user window instead of one per target
    for variant in (sliding, sequence):
        assert variant["validations"] and variant["steps"] > 0 and variant["train_tokens"] > 0
        assert variant["validations"][-1]["step"] == variant["steps"]  # validated where it stopped
    assert set(result["sequence_minus_sliding"]) == {"recall@10", "ndcg@10"}
    diff = sequence["metrics"]["recall@10"] - sliding["metrics"]["recall@10"]
    assert abs(result["sequence_minus_sliding"]["recall@10"]["diff"] - diff) < 1e-9
    assert str(tmp_path) not in out.read_text() and result["machine"]["cpu_cores"]


def test_a_confirmation_needs_the_reference_sign_a_ci_off_zero_and_holm():
    from beauty_converged import confirmation

    def test(diff, ci, p_holm=0.01):
        return {"recall@10": {"diff": diff, "ci": ci, "p_holm": p_holm}}

    reference = {"a": test(0.02, [0.01, 0.03]), "b": test(-0.01, [-0.02, 0.0]), "c": test(0.0, [0.0, 0.0]),
                 "d": test(0.01, [0.0, 0.02])}
    found = confirmation({"a": test(0.015, [0.005, 0.025]), "b": test(0.01, [0.002, 0.02]),
                          "c": test(0.01, [0.002, 0.02]), "d": test(0.01, [0.002, 0.02], p_holm=0.06),
                          "e": test(0.01, [0.002, 0.02])}, reference)
    assert set(found) == {"a", "b", "c", "d"}  # e: not in the reference
    assert found["a"]["confirmed"] and found["a"]["reference_diff"] == 0.02
    assert not found["b"]["confirmed"] and not found["b"]["same_sign"]  # the other sign
    assert not found["c"]["confirmed"] and not found["c"]["same_sign"]  # a zero predicts no sign
    assert not found["d"]["confirmed"] and found["d"]["same_sign"] and found["d"]["ci_excludes_zero"]  # Holm
    crossing = confirmation({"a": test(0.01, [-0.001, 0.02])}, reference)["a"]
    assert not crossing["confirmed"] and not crossing["ci_excludes_zero"]


def test_the_seed_spread_averages_each_users_hits_over_the_seeds_both_methods_ran():
    from beauty_converged import SEED_PARTS, seed_spread

    assert set(SEED_PARTS) == {"gti-seed1", "gti-seed2", "rows-first-seed1", "rows-first-seed2"}
    assert "init.seed=2" in SEED_PARTS["rows-first-seed2"][1] and "finetune.seed=1" in SEED_PARTS["gti-seed1"][1]
    ranks = {"gti": [1, None, 3, None], "rows-first": [None, None, 2, 11]}
    rows = {"gti": {"train_seconds": 10.0, "train_tokens": 100, "best_step": 5, "validations": [], "convergence": {}},
            "rows-first": {"train_seconds": 12.0, "train_tokens": 90, "best_step": 4, "validations": [],
                           "convergence": {}}}
    falling = [{"step": step, "loss": 3.0 - step / 10, "recall@10": 0.01} for step in range(1, 6)]

    def part(method, hits, seconds):
        return {"per_user": {"ranks": {method: hits}}, "wall_s": seconds + 1, "machine": {},
                "results": {method: {"train_seconds": seconds, "train_tokens": 7 * seconds, "best": 5, "kind": "lm",
                                     "validations": falling}},
                "config": {"train": {"monitor": "recall@10", "patience": 2}},
                "command": "python benchmarks/beauty_converged.py"}

    seed_parts = {"gti-seed1": part("gti", [None, 2, 3, None], 11.0), "gti-seed2": part("gti", [1, 2, None, None], 9.0),
                  "rows-first-seed1": part("rows-first", [1, None, None, None], 13.0)}
    found = seed_spread(rows, ranks, seed_parts)
    gti = found["methods"]["gti"]
    assert gti["seeds"] == [0, 1, 2] and gti["train_seconds"] == {0: 10.0, 1: 11.0, 2: 9.0}
    assert gti["train_tokens"] == {0: 100, 1: 77.0, 2: 63.0} and gti["best_step"] == {0: 5, 1: 5, 2: 5}
    assert gti["recall@10"]["by_seed"] == {0: 0.5, 1: 0.5, 2: 0.5} and gti["recall@10"]["min"] == 0.5
    assert found["methods"]["rows-first"]["recall@10"]["by_seed"] == {0: 0.25, 1: 0.25}
    versus = found["gti_vs_rows-first"]  # seeds 0 and 1 only: rows-first has no seed 2
    assert versus["seeds"] == [0, 1] and versus["diff_by_seed"] == {0: 0.25, 1: 0.25}
    # per user, hits averaged over seeds 0-1: gti (0.5, 0.5, 1, 0), rows-first (0.5, 0, 0.5, 0)
    assert versus["recall@10"]["diff"] == pytest.approx(0.25)
    assert found["parts"]["gti-seed2"]["wall_s"] == 10.0
    # each seed's curve and its verdict: the loss still falls in the last two validations, the recall is flat at 0.01
    assert gti["validations"][1] == falling and gti["convergence"][1]["loss"]["verdict"] == "still improving"
    assert gti["convergence"][2]["recall@10"]["verdict"] == "past its best"


def test_parts_on_other_sids_users_or_settings_are_refused_and_anchors_build_no_sids():
    from beauty_converged import check_parts

    def part(sids, users=(1, 2), settings=(), lr=2e-4, catalog="all"):
        return {"per_user": {"users": list(users)}, "split_sha256": "s", "sids_sha256": sids, "overrides": [],
                "part_settings": list(settings), "config": {"finetune": {"lr": lr, "new_rows_lr": None}, "out": "x",
                                                            "data": {"catalog": catalog} if catalog else {}}}

    check_parts({"anchors": part(None), "gti": part("a"), "mean-rowlr": part("a", settings=["finetune.new_rows_lr=1e-2"])})
    # a part run before `data.catalog` existed (no key) kept the whole catalog: it compares with catalog "all"
    check_parts({"gti": part("a", catalog=None), "gti-seed1": part("a")})
    for other, says in ((part("b"), "different SIDs"), (part("a", users=(1, 3)), "other test users"),
                        (part("a", lr=1e-3), "other settings"), (part("a", catalog="sampled"), "other settings")):
        with pytest.raises(SystemExit, match=says):
            check_parts({"anchors": part(None), "gti": part("a"), "rows-first": other})


def test_an_exploratory_part_on_other_sids_is_reported_and_labelled_not_refused(tmp_path, monkeypatch):
    import beauty_converged
    from beauty_converged import exploratory

    monkeypatch.setattr(beauty_converged, "ROOT", tmp_path)
    result = {"kind": "lm", "metrics": {"recall@10": 0.5}, "metrics_ci": {"recall@10": [0.1, 0.9]}, "train_tokens": 7,
              "train_seconds": 1.0, "compute": {}, "validations": [], "best": None}
    first = {"per_user": {"users": ["u1", "u2"]}, "split_sha256": "s", "sids_sha256": "a"}
    for name, sids in (("same", "a"), ("other", "b")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mean-rowlr.json").write_text(json.dumps({
            **first, "sids_sha256": sids, "part": "mean-rowlr", "methods": ["mean-rowlr"], "part_settings": [],
            "results": {"mean-rowlr": result}, "per_user": {"users": ["u1", "u2"], "ranks": {"mean-rowlr": [1, None]}},
            "overrides": [], "command": "python benchmarks/beauty_converged.py", "machine": {"cpu_model": "x"},
            "config": {"train": {"monitor": "recall@10", "patience": 3}}}))
    found, between = exploratory([Path("same"), Path("other")], first, {}, {"gti": [None, 2], "mean-rowlr": [1, 1]},
                                 "gti")
    assert [row["same_sids"] for row in found.values()] == [True, False]
    assert all(row["convergence"] == {"loss": None, "recall@10": None} for row in found.values())  # no curve
    assert all(row["paired"]["gti"]["recall@10"]["diff"] == 0.0 for row in found.values())  # 1 hit each, other users
    assert all(row["paired"]["mean-rowlr"]["recall@10"]["diff"] == -0.5 for row in found.values())  # its main row
    assert between == {}  # no folder holds both sides of a test
    # a folder holding gti and mean-rowlr: the test between its own parts, with both sides' tokens and machines
    (tmp_path / "same" / "gti.json").write_text((tmp_path / "same" / "mean-rowlr.json").read_text().replace(
        "mean-rowlr", "gti").replace("[1, null]", "[1, 3]").replace('"cpu_model": "x"', '"cpu_model": "y"'))
    found, between = exploratory([Path("same")], first, {}, {"gti": [None, 2]}, "gti")
    versus = between["same"]["gti_vs_mean-rowlr"]
    assert versus["recall@10"]["diff"] == 0.5 and versus["machines"] == ["y", "x"] and versus["train_tokens"] == [7, 7]
    # a grid point beside its main part: labelled by its part, tested against that main part, not taken for it
    (tmp_path / "same" / "mean-rowlr-lr0.0001.json").write_text((tmp_path / "same" / "mean-rowlr.json").read_text()
                                                                .replace('"part": "mean-rowlr"', '"part": "mean-rowlr-lr0.0001"')
                                                                .replace("[1, null]", "[null, 2]"))
    found, between = exploratory([Path("same")], first, {}, {"gti": [None, 2]}, "gti")
    point = found["mean-rowlr-lr0.0001, exploratory: same"]
    assert point["paired"]["mean-rowlr, exploratory: same"]["recall@10"]["diff"] == 0.0  # one hit each, other users
    assert point["paired"]["mean-rowlr, exploratory: same"]["ndcg@10"]["diff"] < 0  # rank 2 against rank 1
    assert "mean-rowlr, exploratory: same" not in found["mean-rowlr, exploratory: same"]["paired"]
    assert between["same"]["gti_vs_mean-rowlr"]["recall@10"]["diff"] == 0.5  # the main part's, not the grid point's
    (tmp_path / "other" / "mean-rowlr.json").write_text(
        (tmp_path / "other" / "mean-rowlr.json").read_text().replace('"split_sha256": "s"', '"split_sha256": "t"'))
    with pytest.raises(SystemExit, match="other test users or split"):
        exploratory([Path("other")], first, {}, {"gti": [None, 2]}, "gti")


@pytest.mark.slow
def test_beauty_converged_quick_runs_every_part_and_merges_them_paired_on_the_same_users(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    command = ["nice", "-n", "19", sys.executable, "benchmarks/beauty_converged.py", "--quick", "--results", str(tmp_path)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads((tmp_path / "beauty_converged_quick.json").read_text())
    assert set(result["methods"]) == {"mostpop", "sasrec", "scratch", "gti", "rows-first", "mean-rowlr"}
    assert result["missing_parts"] == [] and result["best_lm"] in ("gti", "rows-first", "mean-rowlr")
    assert {"best_lm_vs_sasrec", "best_lm_vs_scratch", "gti_vs_rows-first", "gti_vs_mean-rowlr"} <= set(result["paired"])
    assert all("p_holm" in test["recall@10"] for test in result["paired"].values())
    assert result["methods"]["scratch"]["part_settings"] == ["finetune.lr=1e-3"]
    assert all(row["history"] == 4 for name, row in result["methods"].items() if name != "mostpop")  # one history
    for name, row in result["methods"].items():
        assert row["validations"] or name == "mostpop"
        assert set(row["convergence"]) == ({"loss", "recall@5"} if row["kind"] == "lm" else {"recall@10"})
    # the seed parts run only when named, and the merge reports the spread over seeds
    seeded = subprocess.run([*command, "--parts", "gti-seed1,rows-first-seed1,sasrec-lr0.006"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    merged = json.loads((tmp_path / "beauty_converged_quick.json").read_text())
    spread = merged["seeds"]
    # a grid part runs only when named; the merge reports its point beside the main part's and the choice
    tuned = merged["tuned"]["methods"]["sasrec"]
    assert tuned["values"] == [0.003, 0.006] and tuned["chosen"] in (0.003, 0.006)
    assert [point["part"] for point in tuned["points"]] == ["anchors", "sasrec-lr0.006"]
    assert "sasrec" in merged["tuned"]["incomplete"] and merged["tuned"]["best_lm"] == merged["best_lm"]
    assert "sasrec-lr0.006" not in merged["parts"] and merged["missing_parts"] == []
    assert spread["gti_vs_rows-first"]["seeds"] == [0, 1] and spread["methods"]["gti"]["seeds"] == [0, 1]
    assert set(spread["methods"]["gti"]["validations"]) == {"0", "1"}
    # the curves plot draws every validated row and each seed run
    from plot_converged import curves, plot
    merged = json.loads((tmp_path / "beauty_converged_quick.json").read_text())
    assert {"gti", "rows-first", "sasrec", "scratch", "gti, seed 1", "rows-first, seed 1"} <= set(curves(merged))
    assert plot(merged, tmp_path / "curves.png").stat().st_size > 10_000
    # --tuned: each method's curve at the point its grid chose, labelled with its learning rate
    sasrec_lr = merged["tuned"]["methods"]["sasrec"]["chosen"]
    assert {"gti, lr 0.0002", "scratch, lr 0.001", f"sasrec, lr {sasrec_lr:g}"} <= set(curves(merged, tuned=True))
    assert plot(merged, tmp_path / "tuned.png", tuned=True).stat().st_size > 10_000
    # a confirmation takes the reference's best LM and checks each test's sign against it
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps({**result, "best_lm": "mean-rowlr"}))
    confirmed = subprocess.run([*command, "--merge", "--confirms", str(reference)], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=900)
    assert confirmed.returncode == 0, confirmed.stderr[-2000:]
    again = json.loads((tmp_path / "beauty_converged_quick.json").read_text())
    assert again["best_lm"] == "mean-rowlr" and f"chose {result['best_lm']}" in again["best_lm_rule"]
    assert set(again["confirmation"]) == set(again["paired"])
    # a part evaluated on other users is refused by the merge
    part = tmp_path / "beauty_converged_quick_parts" / "gti.json"
    record = json.loads(part.read_text())
    record["per_user"]["users"] = record["per_user"]["users"][::-1]
    part.write_text(json.dumps(record))
    merged = subprocess.run([*command, "--merge"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert merged.returncode != 0 and "evaluated other test users" in merged.stderr


def test_the_grid_chooses_each_methods_point_on_validation_and_retests_on_the_chosen_points():
    from beauty_converged import GRID, GRID_PARTS, tuning

    assert {"gti-lr0.0001", "gti-lr0.0004", "sasrec-lr0.0015", "sasrec-lr0.006", "scratch-lr0.002"} <= set(GRID_PARTS)
    assert GRID_PARTS["mean-rowlr-lr0.0001"][1] == ["finetune.new_rows_lr=1e-2", "finetune.lr=0.0001"]  # rows kept
    assert GRID_PARTS["scratch-lr0.0005"][1] == ["finetune.lr=0.0005"]  # the part's own lr replaced, not added
    assert all(len(methods) == 1 for methods, _ in GRID_PARTS.values()) and set(GRID) == {
        "gti", "rows-first", "mean-rowlr", "scratch", "sasrec"}

    def one(kind, recall, valid, step=2):
        return {"kind": kind, "recall@5": recall, "recall@10": recall, "ndcg@5": 0.0, "ndcg@10": 0.0, "ci": {},
                "train_tokens": None if kind == "anchor" else 100, "train_seconds": 10.0, "best_step": step,
                "convergence": {}, "validations": [{"step": 1, "recall@10": 1.0, "ndcg@10": 1.0, "mrr": 1.0},
                                                   {"step": 2, "recall@10": valid, "ndcg@10": 0.1, "mrr": 0.1}]}

    def part(name, method, kind, recall, valid, hits):
        result = {"kind": kind, "metrics": {m: recall for m in ("recall@5", "recall@10", "ndcg@5", "ndcg@10")},
                  "metrics_ci": {}, "train_tokens": None if kind == "anchor" else 100, "train_seconds": 10.0,
                  "compute": {}, "best": 2, "validations": one(kind, recall, valid)["validations"]}
        return {"part": name, "part_settings": [], "results": {method: result}, "per_user": {"ranks": {method: hits}},
                "config": {"train": {"monitor": "recall@10", "patience": 2}},
                "machine": {"cpu_model": "AMD EPYC" if name == "gti-lr0.0004" else "Xeon", "cpu_native_bf16": True}}

    rows = {"mostpop": {**one("anchor", 0.1, 0.0), "validations": None, "best_step": None},
            "sasrec": one("anchor", 0.5, 0.3), "gti": one("lm", 0.25, 0.2), "rows-first": one("lm", 0.5, 0.3)}
    ranks = {"mostpop": [None, None, None, 1], "sasrec": [1, 1, None, None], "gti": [1, None, None, None],
             "rows-first": [1, 1, None, None]}
    grid = {"gti-lr0.0001": part("gti-lr0.0001", "gti", "lm", 1.0, 0.2, [1, 1, 1, 1]),  # a tie on validation
            "gti-lr0.0004": part("gti-lr0.0004", "gti", "lm", 0.75, 0.4, [1, 1, 1, None]),
            "sasrec-lr0.006": part("sasrec-lr0.006", "sasrec", "anchor", 0.0, 0.1, [None] * 4)}
    machines = {name: {"cpu_model": "Xeon", "cpu_native_bf16": True, "gpu": None} for name in rows}
    found = tuning(rows, ranks, grid, "recall@10", machines)
    gti = found["methods"]["gti"]
    assert gti["values"] == [1e-4, 2e-4, 4e-4] and gti["chosen"] == 4e-4 and gti["chosen_part"] == "gti-lr0.0004"
    assert gti["search"] == {"points": 3, "train_seconds": 30.0, "train_tokens": 300}
    assert [point["recall@10"] for point in gti["points"]] == [1.0, 0.25, 0.75]  # the test is reported, not chosen on
    sasrec = found["methods"]["sasrec"]
    assert sasrec["chosen"] == 3e-3 and sasrec["chosen_part"] == "anchors" and sasrec["search"]["train_tokens"] is None
    assert found["incomplete"] == ["rows-first", "sasrec"]  # in GRID order; mostpop tunes nothing
    assert [point["machine"] for point in gti["points"]] == ["Xeon (native bf16)"] * 2 + ["AMD EPYC (native bf16)"]
    assert found["mixed_machines"] == ["gti"]  # its choice also compares machines; sasrec's points ran on one
    assert found["best_lm"] == "gti"  # validation 0.4 at its chosen point beats rows-first's 0.3
    assert found["paired"]["gti_vs_rows-first"]["recall@10"]["diff"] == pytest.approx(0.25)  # chosen: 3 of 4 hits
    assert found["paired"]["best_lm_vs_sasrec"]["best_lm"] == "gti"
    # ties on every validation metric go to the lower learning rate (the grid's order)
    tied = tuning(rows, ranks, {"gti-lr0.0001": grid["gti-lr0.0001"]}, "recall@10", machines)["methods"]["gti"]
    assert tied["chosen"] == 1e-4
    # a confirmation (Toys) makes no choice: it takes the reference's point where that point ran here, its main part
    # where not (listed in `incomplete`), and the reference's best LM; its tests are judged against the reference's
    reference = {"methods": {"gti": {"chosen": 1e-4}, "rows-first": {"chosen": 4e-4}}, "best_lm": "gti",
                 "paired": {"gti_vs_rows-first": {"recall@10": {"diff": 0.5}}}}
    confirmed = tuning(rows, ranks, grid, "recall@10", machines, reference)
    assert confirmed["methods"]["gti"]["chosen"] == 1e-4  # not 4e-4, which this run's own validation prefers
    assert confirmed["methods"]["rows-first"]["chosen"] == 2e-4 and confirmed["incomplete"] == ["rows-first"]
    assert confirmed["methods"]["sasrec"]["chosen"] == 3e-3  # no reference choice: its 1x
    # its own validation would pick rows-first (0.3 against gti's 0.2 at the point taken)
    assert confirmed["best_lm"] == "gti" and confirmed["own_choice"] == {"best_lm": "rows-first"}
    test = confirmed["confirmation"]["gti_vs_rows-first"]
    assert test["diff"] == pytest.approx(0.5) and test["same_sign"]  # gti-lr0.0001 hits all 4, rows-first 2
    assert set(confirmed["confirmation"]) == {"gti_vs_rows-first"}  # only the reference's tests are judged
    # a method whose main part did not run here (Toys' mean-rowlr) takes its chosen point where that ran, and one
    # with neither is incomplete; a confirmation with no grid part at all still lists what it lacks
    both = {**reference, "methods": {**reference["methods"], "mean-rowlr": {"chosen": 1e-4}, "scratch": {"chosen": 5e-4}}}
    rowlr = {"mean-rowlr-lr0.0001": part("mean-rowlr-lr0.0001", "mean-rowlr", "lm", 0.5, 0.1, [None, 1, 1, None])}
    again = tuning(rows, ranks, {**grid, **rowlr}, "recall@10", machines, both)
    assert again["methods"]["mean-rowlr"]["chosen"] == 1e-4 and again["methods"]["mean-rowlr"]["values"] == [1e-4]
    assert again["incomplete"] == ["rows-first", "scratch"]
    assert again["paired"]["gti_vs_mean-rowlr"]["recall@10"]["diff"] == pytest.approx(0.5)  # 4 hits against 2
    bare = tuning(rows, ranks, {}, "recall@10", machines, both)
    assert bare["incomplete"] == ["gti", "rows-first", "mean-rowlr", "scratch"] and "mean-rowlr" not in bare["methods"]
