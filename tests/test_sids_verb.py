"""`gti sids` is the pipeline's sids stage: flags from the config, a folder `gti run --sids` adopts."""

import json

from gti.cli import build_parser, main
from test_pipeline_cli import run_args, tiny_dataset, tiny_model_dir  # noqa: F401 (fixtures)


def read(path):
    return json.loads(path.read_text())


def test_sids_flags_come_from_the_config_dataclasses():
    from gti.config import SidConfig

    help_text = build_parser().parse_args(["sids", "x", "--out", "o"]).config_flags
    names = {(section, name) for section, name, _ in help_text}
    assert {("sids", name) for name in SidConfig.__dataclass_fields__} <= names
    assert ("data", "text_fields") in names and ("data", "source") not in names


def test_run_adopts_the_sids_of_gti_sids_without_rebuilding(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    sids = tmp_path / "sids"
    assert main(["sids", str(tiny_dataset), "--out", str(sids), "--levels", "2", "--codes", "3", "--seed", "1"]) == 0
    built = read(sids / "manifest.json")
    assert built["config"]["codes"] == 3 and built["config"]["seed"] == 1
    # the same command again: nothing recomputed
    assert main(["sids", str(tiny_dataset), "--out", str(sids), "--levels", "2", "--codes", "3", "--seed", "1"]) == 0
    assert "nothing recomputed" in capsys.readouterr().out
    out = tmp_path / "run"
    # the config says 4 codes; the adopted folder's settings (3 codes, seed 1) win
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out), "--sids", str(sids)]) == 0
    assert read(out / "config.json")["sids"]["codes"] == 3
    assert read(out / "sids" / "manifest.json")["key"] == built["key"]
    assert (out / "sids" / "sids.json").read_text() == (sids / "sids.json").read_text()
    assert read(out / "mean" / "eval" / "metrics.json")


def test_sids_from_other_data_are_refused(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    sids = tmp_path / "sids"
    assert main(["sids", str(tiny_dataset), "--out", str(sids), "--levels", "2", "--codes", "3", "--users", "6"]) == 0
    out = tmp_path / "run"
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out), "--sids", str(sids)]) == 2
    err = capsys.readouterr().err.strip()
    assert "built from other [data] settings than this run's (data.users: 6 in the folder, None in this run)" in err
    assert "\n" not in err and not (out / "sids").exists() and not out.exists()
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out), "--sids", str(tmp_path)]) == 2
    assert "not a folder written by `gti sids`" in capsys.readouterr().err


def test_a_text_fields_mismatch_is_named_with_both_values(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    sids = tmp_path / "sids"
    assert main(["sids", str(tiny_dataset), "--out", str(sids), "--levels", "2", "--codes", "3", "--text-fields", "title"]) == 0
    out = tmp_path / "run"
    assert main(["run", *run_args(tiny_dataset, tiny_model_dir, out), "--sids", str(sids)]) == 2
    err = capsys.readouterr().err.strip()
    assert ("data.text_fields: ['title'] in the folder, ['title', 'categories', 'brand'] in this run" in err
            and "data.users" not in err and "\n" not in err), err
    assert not out.exists()


def test_compare_adopts_the_sids_of_gti_sids_for_every_method(tiny_dataset, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    sids = tmp_path / "sids"
    assert main(["sids", str(tiny_dataset), "--out", str(sids), "--levels", "2", "--codes", "3", "--seed", "1"]) == 0
    built = read(sids / "manifest.json")
    out = tmp_path / "compare"
    # the config says 4 codes; every method of the comparison runs on the adopted folder's (3 codes, seed 1)
    assert main(["compare", *run_args(tiny_dataset, tiny_model_dir, out), "--methods", "mostpop,mean",
                 "--sids", str(sids)]) == 0
    assert read(out / "config.json")["sids"]["codes"] == 3
    assert read(out / "sids" / "manifest.json")["key"] == built["key"]
    assert (out / "sids" / "sids.json").read_text() == (sids / "sids.json").read_text()
    results = read(out / "results.json")
    assert set(results["methods"]) == {"mostpop", "mean"}
    assert main(["compare", *run_args(tiny_dataset, tiny_model_dir, tmp_path / "other"), "--methods", "mostpop",
                 "--sids", str(tmp_path)]) == 2
    assert "not a folder written by `gti sids`" in capsys.readouterr().err and not (tmp_path / "other").exists()
