"""Fail fast and say why: config and flag mistakes are one line before torch loads; a run folder is claimed
only once its config validates and its data loads; --help shows defaults; the config reference is generated."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gti.cli import build_parser, main
from gti.config import load_config
from test_pipeline_cli import run_args, tiny_dataset, tiny_model_dir  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[1]


def _fast(argv: list[str]) -> tuple[int, str, float]:
    """`gti ARGV` in a fresh interpreter: exit status, stderr, seconds; fails if torch was imported."""
    code = ("import sys; from gti.cli import main; status = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(status)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO)
    return done.returncode, done.stderr.strip(), time.perf_counter() - start


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--set", "finetun.steps=1"], "--set finetun.steps=1: unknown section 'finetun'; expected one of data, sids,"),
    (["run", "--set", "finetune.stepz=1"], "--set finetune.stepz=1: finetune: unknown key 'stepz'; expected one of steps,"),
    (["run", "--set", "finetune.steps=-1"], "--set finetune.steps=-1: finetune.steps: must not be negative"),
    (["compare", "--methods", "mean,gtti"], "--methods: 'gtti' is not one of mean,"),
    (["compare", "--seeds", "1,x"], "--seeds: expected comma-separated integers"),
    (["compare", "--budgets", "200,100"], "--budgets: expected increasing distinct positive step counts"),
    (["run", "--set", "data.source=no/such/folder"], "data.source: no/such/folder: no such folder"),
    (["run", "--set", "model.name=./no-model"], "model.name: ./no-model: no such folder"),
    (["run", "--sids", "no-sids"], "--sids no-sids: not a folder written by `gti sids`"),
    (["recommend", "no-run", "--history", "a", "--k", "0"], "--k: expected an integer from 1 to 1000, got 0"),
    (["recommend", "no-run", "--history", "a"], "no-run: no such folder"),
    (["export", "no-run", "--out", "x"], "no-run: not a run folder (no config.json)"),
    (["config", "--defaults", "--set", "a.b=1"], "--defaults prints the reference"),
])
def test_mistakes_are_one_line_before_torch_loads(argv, message):
    status, err, seconds = _fast(argv)
    assert status == 2 and err.startswith("gti: error: ") and message in err and "\n" not in err, err
    assert seconds < 10  # measured about 0.1 s here (the import of torch alone takes 2 s or more)


def test_toml_mistakes_name_the_file_and_line(tmp_path):
    config = tmp_path / "my.toml"
    config.write_text('out = "runs/x"\n\n[finetun]\nsteps = 3\n')
    with pytest.raises(Exception, match=r"my.toml:3: unknown section 'finetun'; expected one of data, sids"):
        load_config(config)
    config.write_text('[data]\nsource = "ml-100k"\n\n[finetune]\nlr = 1e-4\nsteps = "many"\n')
    with pytest.raises(Exception, match=r"my.toml:6: finetune.steps: expected int, got 'many'"):
        load_config(config)
    config.write_text('[finetune]\nsteps = 5\n')
    with pytest.raises(Exception, match=r"^--set eval.beams=0: eval.beams: must be at least 1$"):
        load_config(config, ["eval.beams=0"])


def test_a_bad_data_source_claims_no_folder_and_the_fixed_run_goes_ahead(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    empty = tmp_path / "empty"
    empty.mkdir()  # a folder, but no dataset in it: found only when the data loads (after the checks)
    assert main(["run", *run_args(empty, tiny_model_dir, out)]) == 2
    assert "no dataset files found" in capsys.readouterr().err and not out.exists()
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out)]) == 0
    assert json.loads((out / "config.json").read_text())["data"]["source"] == str(tiny_dataset)


def test_another_config_is_refused_naming_the_keys_and_both_values(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out)]) == 0
    capsys.readouterr()
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out, "finetune.steps=3", "eval.beams=4")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{out}: holds a run with another config (finetune.steps: 2 there, 3 here; eval.beams: 5 there, 4 here)" in err
    # a folder that holds only a config.json (a run that stopped before its first stage) is not protected
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps({"out": "elsewhere"}))
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, bare, "finetune.steps=1")]) == 0


def test_help_shows_defaults():
    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices
    recommend, serve, sids = (" ".join(verbs[name].format_help().split()) for name in ("recommend", "serve", "sids"))
    assert "(default: 10)" in recommend and "(default: gti)" in recommend
    assert "(default: 8000)" in serve and "--host HOST" in serve and "every network interface" in serve
    assert "(default: 127.0.0.1)" in serve and "(default: 65536)" in serve
    assert "[sids.codes; default: 256]" in sids and "default: <object" not in sids
    assert "(default: 5)" in verbs["data"]._subparsers._group_actions[0].choices["prepare"].format_help()
    assert "GTI_CACHE" in parser.format_help()


def test_docs_config_md_is_the_generated_reference(capsys):
    assert main(["config", "--defaults"]) == 0
    generated = capsys.readouterr().out
    assert (REPO / "docs" / "config.md").read_text() == generated, "regenerate: gti config --defaults > docs/config.md"
    from gti.config import RunConfig, to_dict
    from gti.config_text import flatten

    for key in flatten(to_dict(RunConfig())):
        assert f"`{key.rsplit('.', 1)[-1]}`" in generated, key
    assert "| `checkpoint_minutes` | `10.0` |" in generated and "| `users` | unset (None) |" in generated


def test_gti_config_prints_toml_that_loads_back(tmp_path, capsys):
    assert main(["config", str(REPO / "configs" / "demo.toml"), "--set", "finetune.steps=7"]) == 0
    printed = tmp_path / "printed.toml"
    printed.write_text(capsys.readouterr().out)
    assert load_config(printed) == load_config(REPO / "configs" / "demo.toml", ["finetune.steps=7"])


@pytest.mark.parametrize(("argv", "quiet", "debug"), [
    (["--quiet", "run"], True, False), (["run", "--quiet"], True, False), (["run"], False, False),
    (["--debug", "data", "stats", "x"], False, True), (["--quiet", "data", "stats", "x", "--debug"], True, True),
])
def test_quiet_and_debug_work_before_and_after_the_verb(argv, quiet, debug):
    parsed = build_parser().parse_args(argv)
    assert (parsed.quiet, parsed.debug) == (quiet, debug)
