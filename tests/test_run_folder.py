"""A run folder's files always describe the same methods; --overwrite removes what it replaces; a model name resolves
before anything runs (issue 32)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gti.cli import main
from test_pipeline_cli import run_args, tiny_dataset, tiny_model_dir  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[1]


def _gti(argv: list[str], env: dict | None = None) -> tuple[int, str, float]:
    """`gti ARGV` in a fresh interpreter: exit status, stderr, seconds; fails if torch was imported."""
    code = ("import sys; from gti.cli import main; status = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(status)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})})
    return done.returncode, done.stderr.strip(), time.perf_counter() - start


@pytest.mark.parametrize("offline", ["1", ""])
def test_a_mistyped_model_name_is_refused_before_anything_runs_naming_the_nearest(tmp_path, offline):
    out = tmp_path / "run"
    status, err, _ = _gti(["run", "--set", "model.name=tiny-rando", "--out", str(out)], {"HF_HUB_OFFLINE": offline})
    assert status == 2 and "\n" not in err, err
    assert "model.name: 'tiny-rando'" in err and "did you mean 'tiny-random'?" in err
    assert not out.exists()  # no folder claimed


def test_an_unknown_hub_name_offline_is_refused_without_the_network(tmp_path):
    status, err, seconds = _gti(["run", "--set", "model.name=someone/no-such-model-xyz", "--out", str(tmp_path / "r")],
                                {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert status == 2 and "HF_HUB_OFFLINE is set, so the hub is not asked" in err, err
    assert not (tmp_path / "r").exists()


def test_a_hub_model_in_the_local_cache_is_accepted_offline(tmp_path):
    from gti.checks import check_model_name

    snapshot = tmp_path / "hf" / "hub" / "models--someone--cached-model" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    refs = snapshot.parents[1] / "refs"
    refs.mkdir()
    (refs / "main").write_text("0" * 40)
    command = ("import sys; from gti.checks import check_model_name; "
               "check_model_name('model.name', 'someone/cached-model', ('smollm2-135m',))")
    done = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert done.returncode == 0, done.stderr
    assert check_model_name("model.name", "tiny-random", ("tiny-random",)) is None


def _methods_in(root: Path) -> tuple[list[str], str, str]:
    results = json.loads((root / "results.json").read_text())
    return list(results["methods"]), (root / "results.md").read_text(), (root / "report.html").read_text()


def test_run_into_a_compare_folder_rewrites_every_results_file_from_the_methods_on_disk(
        tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "cmp"
    args = run_args(tiny_dataset, tiny_model_dir, out)
    assert main(["compare", "--methods", "mostpop,mean", *args]) == 0
    assert "== [1/2] mostpop: fit, evaluate" in capsys.readouterr().out
    status, err, _ = _gti(["compare", "--methods", "mostpop,mean", *args])  # finished: answered without torch
    assert status == 0, err
    # gti run with the same config adds a method; compare's init.method does not count as another config
    assert main(["run", *args, "--set", "init.method=random"]) == 0
    assert "run folder: " in capsys.readouterr().out
    methods, table, report = _methods_in(out)
    assert methods == ["mean", "random", "mostpop"]
    assert table.startswith("# mean, random, mostpop on `") and "Fine-tuning: 2 steps of 4" in table  # what was run
    assert all(f"| {name} |" in table for name in methods)
    assert "random" in report and "mostpop" in report
    # and compare into a folder made by gti run --set init.method=... is not refused over init.method
    assert main(["compare", "--methods", "mean,random", *args]) == 0


def test_overwrite_with_another_config_removes_what_it_replaces(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "cmp"
    assert main(["compare", "--methods", "mostpop,mean", *run_args(tiny_dataset, tiny_model_dir, out)]) == 0
    capsys.readouterr()
    # another config without --overwrite: refused before torch would be needed
    status, err, _ = _gti(["run", *run_args(tiny_dataset, tiny_model_dir, out, "finetune.steps=3")])
    assert status == 2 and "holds a run with another config (finetune.steps: 2 there, 3 here)" in err, err
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out, "finetune.steps=3"), "--overwrite"]) == 0
    said = capsys.readouterr().out
    assert "--overwrite: removed what the old config made" in said and "mostpop/" in said
    assert not (out / "mostpop").exists() and not (out / "results.json").exists() and not (out / "results.md").exists()
    assert (out / "mean" / "eval").is_dir() and json.loads((out / "config.json").read_text())["finetune"]["steps"] == 3
    assert len(json.loads((out / "mean" / "finetune" / "losses.json").read_text())) == 3  # the new run, not the old
    status, err, _ = _gti(["run", *run_args(tiny_dataset, tiny_model_dir, out, "finetune.steps=3")])
    assert status == 0, err  # a finished run of this config: answered from its files, torch never imported


def test_run_into_a_seeded_compare_folder_is_refused(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "seeds"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"seeds": [0, 1], "methods": {}}))
    status, err, _ = _gti(["run", *run_args(tiny_dataset, tiny_model_dir, out)])
    assert status == 2 and "holds a `gti compare --seeds` run" in err, err


def test_recommend_says_which_method_answers_when_the_folder_has_several(tmp_path):
    from gti.catalog import which_model

    for name in ("gti", "mean"):
        (tmp_path / name / "finetune" / "model").mkdir(parents=True)
        (tmp_path / name / "finetune" / "manifest.json").write_text("{}")
    note = which_model(tmp_path, "gti", None)
    assert note == "answering with method gti (gti/finetune/model); the folder also has mean: --method chooses"
    (tmp_path / "mean" / "finetune" / "model").rmdir()
    assert which_model(tmp_path, "gti", None) is None  # one model: nothing to choose
