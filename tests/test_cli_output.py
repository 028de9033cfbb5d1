"""What the verbs print: log-friendly progress (plain lines, no carriage returns, nothing with --quiet) and the
paths of everything they wrote."""

import os
import subprocess
import sys

from gti.cli import main
from test_pipeline_cli import run_args, tiny_dataset, tiny_model_dir  # noqa: F401 (fixtures)

STEPS = ["init.method=gti", "ground.steps=6", "finetune.steps=4", "train.precision=float32"]


def test_progress_redirected_to_a_file_is_plain_lines(tiny_dataset, tiny_model_dir, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    log = tmp_path / "log.txt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GTI_PROGRESS_SECONDS": "0"}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    with log.open("w") as stderr:
        done = subprocess.run([sys.executable, "-m", "gti.cli", "run", *run_args(tiny_dataset, tiny_model_dir, out, *STEPS)],
                              stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    text = log.read_text()
    assert done.returncode == 0, text[-2000:]
    assert "\r" not in text and "Loading weights" not in text and "it/s" not in text, text[-2000:]
    lines = text.splitlines()
    ground = [line for line in lines if line.startswith("ground: step ")]
    assert len(ground) == 6 and ground[0].startswith("ground: step 1/6 (17%), loss ") and " tokens/s, " in ground[0]
    assert [line for line in lines if line.startswith("finetune (full): step ")][-1].startswith("finetune (full): step 4/4")
    assert any(line.startswith("beam search: batch ") for line in lines)
    lines = done.stdout.splitlines()
    assert '"recall@1"' in done.stdout
    for wanted in (f"run folder: {out}", f"metrics: {out / 'metrics.json'}", f"predictions: {out / 'gti/eval/predictions.jsonl'}",
                   f"model: {out / 'gti/finetune/model'}", f"report: {out / 'report.html'}"):
        assert wanted in lines or any(line.startswith(wanted) for line in lines), wanted
    report = (out / "report.html").read_text()
    assert report.startswith("<!doctype html>") and "gti" in report and "Test metrics" in report


def test_quiet_prints_no_progress_and_every_verb_names_what_it_wrote(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    os.environ["GTI_PROGRESS_SECONDS"] = "0"
    try:
        assert main(["run", "--quiet", *run_args(tiny_dataset, tiny_model_dir, out, *STEPS)]) == 0
    finally:
        del os.environ["GTI_PROGRESS_SECONDS"]
    printed = capsys.readouterr()
    assert " step " not in printed.err and "beam search" not in printed.err and "\r" not in printed.err, printed.err
    assert f"report: {out / 'report.html'}" in printed.out
    assert main(["diagnose", str(out)]) == 0
    err = capsys.readouterr().out
    assert f"wrote {out / 'diagnostics.json'}, {out / 'spectrum.png'}, {out / 'effective_rank.png'}" in err
    assert all((out / name).is_file() for name in ("diagnostics.json", "spectrum.png", "effective_rank.png"))
    export = tmp_path / "export"
    assert main(["export", str(out), "--out", str(export)]) == 0
    err = capsys.readouterr().out
    assert f"wrote {export}: model/, sids.json, items.jsonl, gti_config.json, training_config.json, README.md" in err
    assert sorted(p.name for p in export.iterdir()) == ["README.md", "gti_config.json", "items.jsonl", "model", "sids.json",
                                                        "training_config.json"]
    compared = tmp_path / "compare"
    assert main(["compare", "--quiet", "--methods", "mean,gti", *run_args(tiny_dataset, tiny_model_dir, compared, *STEPS)]) == 0
    err = capsys.readouterr().out
    for wanted in (f"results: {compared / 'results.json'}, {compared / 'results.md'}", f"report: {compared / 'report.html'}",
                   f"plots: {compared / 'effective_rank.png'}, {compared / 'spectrum.png'}"):
        assert wanted in err, wanted
