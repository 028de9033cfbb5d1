"""`model.name = "tiny-random"`: built locally, the same bytes every time, any text encodes, a whole run works."""

import torch

from gti.cli import main
from gti.lm.backbone import load_backbone, resolve_model_path
from gti.lm.tiny import byte_tokenizer, tiny_random_folder
from test_pipeline_cli import run_args, tiny_dataset  # noqa: F401 (fixture)


def test_the_tiny_random_folder_is_deterministic_and_leaves_the_rng_alone(tmp_path, monkeypatch):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first = tiny_random_folder(tmp_path / "a")
    assert torch.equal(torch.random.get_rng_state(), state)
    second = tiny_random_folder(tmp_path / "b")
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no staging folder left
    monkeypatch.setenv("GTI_CACHE", str(tmp_path / "a"))
    assert resolve_model_path("tiny-random") == str(first)
    model, tokenizer = load_backbone("tiny-random")
    assert sum(p.numel() for p in model.parameters()) < 100_000 and model.config.num_hidden_layers == 2


def test_the_byte_tokenizer_encodes_any_text():
    tokenizer = byte_tokenizer()
    for text in ["Nature's Gate Papaya, 18-Ounce (Pack of 2)", "Crème brûlée 東京 🍮", "<a_1><b_2>"]:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert tokenizer.decode(ids) == text and len(ids) == len(text.encode())
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, len(tokenizer)) == (0, 1, 2, 259)


def test_a_run_on_tiny_random(tiny_dataset, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("GTI_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["run", *run_args(tiny_dataset, "tiny-random", out, "init.method=gti")]) == 0
    assert (out / "gti" / "eval" / "metrics.json").is_file() and (tmp_path / "cache" / "models" / "tiny-random-v1").is_dir()
