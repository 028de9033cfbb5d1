"""Safe loading: pickle-only model folders are refused unread; remote code runs only when asked."""

import pickle
from pathlib import Path

import pytest
import torch

from gti.config import RunConfig
from gti.errors import GtiError
from gti.lm import backbone
from gti.lm.backbone import load_backbone

# Never a valid pickle: unpickling these bytes would raise, so a test that loads them fails loudly.
JUNK = b"\x80\x05junk that must never be unpickled"


def forbid_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every way of reading weights fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("weights were read")

    monkeypatch.setattr(backbone.AutoTokenizer, "from_pretrained", refuse)
    monkeypatch.setattr(backbone.AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def save_tiny(folder: Path, model, tokenizer) -> Path:
    model.save_pretrained(folder)  # writes model.safetensors
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    "weights", ["pytorch_model.bin", "pytorch_model-00001-of-00002.bin", "model.pt", "model.pth", "w.pkl", "last.ckpt"]
)
def test_pickle_only_folder_is_refused_before_loading(tmp_path, tiny_model, monkeypatch, weights):
    tiny_model.config.save_pretrained(tmp_path)
    (tmp_path / weights).write_bytes(JUNK)
    forbid_reading(monkeypatch)
    with pytest.raises(GtiError) as error:
        load_backbone(str(tmp_path))
    message = str(error.value)
    assert f"holds only pickle weights ({weights}); gti loads safetensors only: convert it" in message
    assert str(tmp_path) in message and "\n" not in message


def test_refusal_lists_a_few_pickle_files(tmp_path, monkeypatch):
    for name in ("a.pt", "b.pt", "c.pkl", "d.ckpt", "pytorch_model.bin"):
        (tmp_path / name).write_bytes(JUNK)
    forbid_reading(monkeypatch)
    with pytest.raises(GtiError, match=r"pickle weights \(a\.pt, b\.pt, c\.pkl, \.\.\.\)"):
        load_backbone(str(tmp_path))


def test_safetensors_win_over_pickle_files_beside_them(tmp_path, tiny_model, tiny_tokenizer):
    folder = save_tiny(tmp_path, tiny_model, tiny_tokenizer)
    (folder / "pytorch_model.bin").write_bytes(JUNK)
    (folder / "training_state.pt").write_bytes(JUNK)
    model, tokenizer = load_backbone(str(folder))
    assert not model.training and tokenizer.pad_token == "<pad>"
    assert torch.equal(model.get_input_embeddings().weight, tiny_model.get_input_embeddings().weight)


def test_folder_without_weights_is_a_clear_error(tmp_path, tiny_model, tiny_tokenizer):
    folder = save_tiny(tmp_path, tiny_model, tiny_tokenizer)
    (folder / "model.safetensors").unlink()
    with pytest.raises(GtiError, match=f"model '{folder}': could not load"):
        load_backbone(str(folder))


def record_loads(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Replace both loaders with recorders of their keyword arguments."""
    calls: list[dict] = []

    class Loaded:
        pad_token = "<pad>"

        def eval(self):
            return self

    def from_pretrained(path, **kwargs):
        calls.append(kwargs)
        return Loaded()

    monkeypatch.setattr(backbone.AutoTokenizer, "from_pretrained", from_pretrained)
    monkeypatch.setattr(backbone.AutoModelForCausalLM, "from_pretrained", from_pretrained)
    return calls


@pytest.mark.parametrize("trust", [False, True])
def test_trust_remote_code_only_when_asked(tmp_path, monkeypatch, trust):
    calls = record_loads(monkeypatch)
    if trust:
        load_backbone(str(tmp_path), trust_remote_code=True)
    else:
        load_backbone(str(tmp_path))
    assert [call["trust_remote_code"] for call in calls] == [trust, trust]
    assert calls[1]["use_safetensors"] is True


def test_config_leaves_remote_code_off():
    assert RunConfig().model.trust_remote_code is False
