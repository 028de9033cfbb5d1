import numpy as np
import pytest
import torch
from peft.tuners.lora import LoraModel
from transformers import AutoModelForCausalLM

from gti.config import FinetuneConfig, PromptConfig, load_config
from gti.data import Example, Item
from gti.errors import GtiError
from gti.lm.prompts import PromptBuilder
from gti.lm.vocab import extend_vocabulary, initialize
from gti.sid import SemanticIds
from gti.train.finetune import finetune, lora_target_modules
from tiny_models import make_tiny_model

ITEMS = {f"m{i}": Item(f"m{i}", title) for i, title in enumerate(["toy story", "love war", "red house", "big game"])}
EXAMPLES = [Example(f"u{i}", (f"m{i % 4}", f"m{(i + 1) % 4}"), f"m{(i + 2) % 4}") for i in range(8)]
PROBE = torch.tensor([[5, 6, 7, 8, 9, 10]])


def extended(tokenizer, tied: bool):
    """A tiny model with mean-initialized SID rows for 4 items, and its prompt builder."""
    model = make_tiny_model(len(tokenizer), tied=tied)
    sids = SemanticIds(list(ITEMS), np.array([[0, 1], [1, 0], [2, 2], [3, 1]]), [4, 3])
    n_old = len(tokenizer)
    new_ids = extend_vocabulary(model, tokenizer, sids.new_tokens())
    initialize(model, new_ids, "mean", n_old)
    return model, PromptBuilder(tokenizer, sids, ITEMS, PromptConfig(chat=False)), new_ids


def test_lora_targets_every_decoder_linear_and_nothing_else(tiny_model):
    targets = lora_target_modules(tiny_model)
    assert len(targets) == 2 * 7  # q, k, v, o, gate, up, down in each of 2 layers
    assert all(name.startswith("model.layers.") for name in targets)


@pytest.mark.parametrize("tied", [True, False])
def test_lora_trains_adapters_and_new_rows_then_merges_into_a_plain_model(tiny_tokenizer, tied, tmp_path, monkeypatch):
    model, builder, new_ids = extended(tiny_tokenizer, tied)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    targets = {f"{name}.weight" for name in lora_target_modules(model)}
    unmerged = {}
    merge = LoraModel.merge_and_unload

    def probe_then_merge(self, *args, **kwargs):
        assert not self.model.training  # dropout off: the probe is deterministic
        with torch.no_grad():
            unmerged["logits"] = self.model(PROBE).logits
        return merge(self, *args, **kwargs)

    monkeypatch.setattr(LoraModel, "merge_and_unload", probe_then_merge)
    config = FinetuneConfig(steps=3, lr=1e-2, batch_size=4, warmup_steps=0, mode="lora")
    result = finetune(model, builder, EXAMPLES, config, pad_id=0)
    assert len(result.losses) == 3 and "logits" in unmerged

    assert not hasattr(model, "peft_config")
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    old_rows = torch.ones(before["model.embed_tokens.weight"].shape[0], dtype=torch.bool)
    old_rows[new_ids] = False
    embeddings = {"model.embed_tokens.weight", "lm_head.weight"}
    assert set(before) == {name for name, _ in model.named_parameters()}  # no adapter left behind
    for name, parameter in model.named_parameters():
        if name in embeddings:
            assert torch.equal(parameter[old_rows], before[name][old_rows]), name
            assert not torch.equal(parameter[new_ids], before[name][new_ids]), name
        elif name in targets:
            assert not torch.equal(parameter, before[name]), name
        else:
            assert torch.equal(parameter, before[name]), name

    model.save_pretrained(tmp_path)
    assert not (tmp_path / "adapter_config.json").exists()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32, use_safetensors=True).eval()
    assert (loaded.lm_head.weight is loaded.model.embed_tokens.weight) == tied
    with torch.no_grad():
        logits = loaded(PROBE).logits
    assert torch.allclose(logits, unmerged["logits"], atol=1e-5)


def test_full_mode_trains_every_parameter(tiny_tokenizer):
    model, builder, _ = extended(tiny_tokenizer, tied=True)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    finetune(model, builder, EXAMPLES, FinetuneConfig(steps=2, lr=1e-2, batch_size=4, warmup_steps=0), pad_id=0)
    assert all(not torch.equal(p, before[name]) for name, p in model.named_parameters())


@pytest.mark.parametrize(("setting", "message"), [
    ("finetune.mode=qlora", "finetune.mode: 'qlora' is not one of full, lora"),
    ("finetune.lora_r=0", "finetune.lora_r: must be at least 1"),
    ("finetune.lora_alpha=0", "finetune.lora_alpha: must be positive"),
    ("finetune.lora_dropout=1.0", r"finetune.lora_dropout: must be in \[0, 1\)"),
    ("finetune.lora_r=2.5", "finetune.lora_r: expected int"),
])
def test_lora_settings_are_validated(setting, message):
    with pytest.raises(GtiError, match=message):
        load_config(None, [setting])


def test_lora_settings_load_from_overrides():
    config = load_config(None, ["finetune.mode=lora", "finetune.lora_r=4", "finetune.lora_alpha=32"])
    assert (config.finetune.mode, config.finetune.lora_r, config.finetune.lora_alpha) == ("lora", 4, 32)
