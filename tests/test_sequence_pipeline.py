"""The sequence objective, packing, epochs with validation stopping and the scratch decoder through `gti compare`."""

import json

import pytest
from safetensors.torch import load_file

from gti.cli import main
from gti.config import load_config
from gti.errors import GtiError
from gti.runner import run
from test_pipeline_cli import run_args, tiny_dataset, tiny_model_dir  # noqa: F401 (fixtures)

SEQUENCE = ("finetune.samples=sequence", "train.pack=true", "finetune.epochs=3", "finetune.batch_size=4",
            "finetune.lr=1e-3", "train.validate_every=2", "train.validate_users=6", "train.monitor=loss",
            "train.patience=2", "prompts.history=4", "model.scratch_layers=1", "model.scratch_hidden=24",
            "model.scratch_heads=2")


def read(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def sequence_run(tiny_dataset, tiny_model_dir, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("sequence") / "run"
    assert main(["compare", "--methods", "mostpop,sasrec,mean,scratch",
                 *run_args(tiny_dataset, tiny_model_dir, out, *SEQUENCE, "sasrec.epochs=2", "sasrec.hidden=8",
                           "sasrec.heads=1")]) == 0
    return out


def test_every_method_trains_on_whole_sequences_and_records_its_curve(sequence_run):
    results = read(sequence_run / "results.json")
    assert list(results["methods"]) == ["mostpop", "sasrec", "mean", "scratch"]
    split = read(sequence_run / "data" / "split.json")
    windows = sum(max(0, -(-(len(s) - 1) // 4)) for s in split["train"].values())  # windows of 4 + 1 items
    for name in ("mean", "scratch"):
        manifest = read(sequence_run / name / "finetune" / "manifest.json")
        assert manifest["examples"] == windows
        assert manifest["validations"] and manifest["validations"][0]["step"] == 2
        steps = -(-3 * windows // 4)  # ceil(epochs x samples / batch)
        assert manifest["best_step"] <= steps and len(read(sequence_run / name / "finetune" / "losses.json")) <= steps
        assert results["methods"][name]["history"] == 4
    assert results["methods"]["sasrec"]["history"] == 4
    for name in ("sasrec", "mean", "scratch"):  # the validation curve and the kept point, in results and the report
        result = results["methods"][name]
        assert result["validations"] and result["best"] in [v.get("step", v.get("epoch")) for v in result["validations"]]
    assert all("train_tokens" in v for v in results["methods"]["mean"]["validations"])
    assert (sequence_run / "validation_curves.png").stat().st_size > 10_000
    assert "Validation curves" in (sequence_run / "report.html").read_text()


def test_the_scratch_method_is_a_small_random_decoder_over_the_sid_tokens(sequence_run):
    from transformers import AutoTokenizer

    folder = sequence_run / "scratch" / "finetune" / "model"
    config = read(folder / "config.json")
    assert config["num_hidden_layers"] == 1 and config["hidden_size"] == 24
    tokenizer = AutoTokenizer.from_pretrained(folder)
    sid_tokens = [token for token in tokenizer.get_vocab() if token.startswith("<") and "_" in token]
    assert len(tokenizer) == 4 + len(sid_tokens) and len(sid_tokens) > 4  # four specials + the SID tokens
    assert load_file(folder / "model.safetensors")["model.embed_tokens.weight"].shape[0] == len(tokenizer)
    assert read(sequence_run / "mean" / "finetune" / "model" / "config.json")["hidden_size"] != 24  # model.name's


def test_a_text_method_on_the_scratch_decoder_is_refused(tiny_dataset, tiny_model_dir, tmp_path):  # noqa: F811
    config = load_config(None, [f"data.source={json.dumps(str(tiny_dataset))}", "model.name=scratch"])
    with pytest.raises(GtiError, match="read item text"):
        run(config, str(tmp_path / "run"), False, "gti")
    assert not (tmp_path / "run").exists()
