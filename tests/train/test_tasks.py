import json

import numpy as np
import pytest

import gti.train.finetune as finetune_module
from gti.cli import main
from gti.config import FinetuneConfig, LcrecConfig, PromptConfig, load_config
from gti.data import Example, Item
from gti.errors import GtiError
from gti.lm.prompts import PromptBuilder
from gti.lm.vocab import extend_vocabulary
from gti.sid import SemanticIds
from gti.train.finetune import finetune
from gti.train.tasks import lcrec_samples, seqrec_samples
from test_pipeline_cli import run_args, tiny_dataset, tiny_model_dir  # noqa: F401 (fixtures)

ITEMS = {f"m{i}": Item(f"m{i}", title) for i, title in enumerate(["toy story", "love war", "red house"])}
EXAMPLES = [Example(f"u{i}", (f"m{i % 3}",), f"m{(i + 1) % 3}") for i in range(10)]


@pytest.fixture
def builder(tiny_tokenizer, tiny_model) -> PromptBuilder:
    sids = SemanticIds(list(ITEMS), np.array([[0, 1], [1, 0], [1, 1]]), [2, 2])
    extend_vocabulary(tiny_model, tiny_tokenizer, sids.new_tokens())
    return PromptBuilder(tiny_tokenizer, sids, ITEMS, PromptConfig(chat=False, style="paper"))


def test_seqrec_phrasings_are_drawn_per_example_with_the_seed(builder):
    samples = seqrec_samples(builder, EXAMPLES, seed=0)
    assert samples == seqrec_samples(builder, EXAMPLES, seed=0)
    assert samples != seqrec_samples(builder, EXAMPLES, seed=1)
    assert len({tuple(s.prompt[:6]) for s in samples}) > 1  # more than one phrasing in use
    assert [s.answer for s in samples] == [builder.sid_ids(e.target) for e in EXAMPLES]


def test_lcrec_task_sizes_follow_the_weights_and_cycle_the_pool(builder):
    weights = LcrecConfig(item2index=2.0, index2item=0.5, fusionseqrec=0.0)
    samples = lcrec_samples(builder, EXAMPLES, weights, n_seqrec=10, seed=0)
    assert {task: len(s) for task, s in samples.items()} == {"item2index": 20, "index2item": 5, "fusionseqrec": 0}
    answers = {tuple(s.answer) for s in samples["item2index"]}
    assert answers == {tuple(builder.sid_ids(item)) for item in ITEMS}  # 3 items cycled to 20 samples
    assert samples == lcrec_samples(builder, EXAMPLES, weights, n_seqrec=10, seed=0)
    assert samples != lcrec_samples(builder, EXAMPLES, weights, n_seqrec=10, seed=1)
    # each task draws with its own generator: one weight does not change another task's samples
    other = lcrec_samples(builder, EXAMPLES, LcrecConfig(item2index=2.0, index2item=3.0), n_seqrec=10, seed=0)
    assert other["item2index"] == samples["item2index"] and len(other["fusionseqrec"]) == 10


def test_finetune_mixes_the_tasks_into_the_next_item_samples(builder, tiny_model, monkeypatch):
    seen = {}

    def fake_train(model, samples, parameters, **options):
        seen["samples"] = samples
        return finetune_module.TrainResult()

    monkeypatch.setattr(finetune_module, "train", fake_train)
    config = FinetuneConfig(steps=1)
    finetune(tiny_model, builder, EXAMPLES, config, pad_id=0)
    assert len(seen["samples"]) == 10
    finetune(tiny_model, builder, EXAMPLES, config, pad_id=0, tasks=LcrecConfig(index2item=0.3))
    assert len(seen["samples"]) == 10 + 10 + 3 + 10
    assert seen["samples"][:10] == seqrec_samples(builder, EXAMPLES, config.seed)


@pytest.mark.parametrize(("setting", "message"), [
    ("lcrec.item2index=-1", "lcrec.item2index: must not be negative"),
    ("lcrec.fusionseqrec=-0.5", "lcrec.fusionseqrec: must not be negative"),
    ("lcrec.index2item=true", "lcrec.index2item: expected float"),
    ("lcrec.other=1", "unknown key 'other'"),
    ("init.method=lcrec2", "init.method: 'lcrec2' is not one of .*lcrec, gti\\+lcrec"),
])
def test_lcrec_settings_are_validated(setting, message):
    with pytest.raises(GtiError, match=message):
        load_config(None, [setting])


def test_lcrec_section_loads_from_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[init]\nmethod = 'gti+lcrec'\n[lcrec]\nitem2index = 2\nfusionseqrec = 0\n")
    config = load_config(path)
    assert config.init.method == "gti+lcrec"
    assert (config.lcrec.item2index, config.lcrec.index2item, config.lcrec.fusionseqrec) == (2.0, 1.0, 0.0)


def test_gti_lcrec_reuses_gti_grounding(tiny_dataset, tiny_model_dir, tmp_path):  # noqa: F811 (imported fixtures)
    """gti+lcrec fine-tunes from gti/ground; only the lcrec methods' finetune keys hold the task weights."""
    out = tmp_path / "run"
    args = run_args(tiny_dataset, tiny_model_dir, out, "lcrec.item2index=0.5", "finetune.mode=lora")
    assert main(["compare", "--methods", "gti,gti+lcrec,lcrec", *args]) == 0
    assert not (out / "gti+lcrec" / "init").exists() and not (out / "gti+lcrec" / "ground").exists()
    assert not (out / "lcrec" / "init").exists() and (out / "mean" / "init" / "manifest.json").is_file()
    manifests = {
        m: json.loads((out / m / "finetune" / "manifest.json").read_text()) for m in ("gti", "gti+lcrec", "lcrec")
    }
    ground_key = json.loads((out / "gti" / "ground" / "manifest.json").read_text())["key"]
    assert manifests["gti"]["inputs"] == manifests["gti+lcrec"]["inputs"] == {"previous": ground_key}
    assert "lcrec" not in manifests["gti"]["config"]
    assert manifests["gti+lcrec"]["config"]["lcrec"] == {"item2index": 0.5, "index2item": 1.0, "fusionseqrec": 1.0}
    assert manifests["gti+lcrec"]["key"] != manifests["gti"]["key"]
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]["gti+lcrec"]["diagnostics"]) == {"init", "grounded", "finetuned"}
    assert set(results["methods"]["lcrec"]["diagnostics"]) == {"init", "finetuned"}
    exported = out / "gti+lcrec" / "finetune" / "model"
    assert (exported / "model.safetensors").is_file() and not (exported / "adapter_config.json").exists()
    assert main(["compare", "--methods", "gti,lcrec3", *args]) == 2
