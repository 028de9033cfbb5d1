"""`gti export`: a self-contained folder that `Recommender.from_pretrained` and plain transformers load."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from gti import Recommender
from gti.cli import main


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "tiny-gti"
    assert main(["export", str(trained_run), "--method", "gti", "--out", str(out)]) == 0
    return out


def test_export_holds_what_recommend_needs(exported, trained_run):
    names = sorted(p.name for p in exported.iterdir())
    assert names == ["README.md", "gti_config.json", "items.jsonl", "model", "sids.json", "training_config.json"]
    model_files = {p.name for p in (exported / "model").iterdir()}
    assert "model.safetensors" in model_files and not any(n.endswith((".bin", ".pt", ".pth")) for n in model_files)
    settings = json.loads((exported / "gti_config.json").read_text())
    assert settings["beams"] == 5 and settings["max_history"] == 20 and settings["prompts"]["style"] == "compact"
    items = [json.loads(line) for line in (exported / "items.jsonl").read_text().splitlines()]
    assert len(items) == 40 and set(items[0]) == {"item_id", "title"}
    assert (exported / "sids.json").read_bytes() == (trained_run / "sids" / "sids.json").read_bytes()
    assert [p.name for p in exported.parent.iterdir() if p.name.startswith(".")] == []


def test_exported_model_loads_with_plain_transformers(exported, trained_run):
    plain = AutoModelForCausalLM.from_pretrained(exported / "model", use_safetensors=True)
    original = AutoModelForCausalLM.from_pretrained(trained_run / "gti/finetune/model", use_safetensors=True)
    for (name, a), (_, b) in zip(plain.state_dict().items(), original.state_dict().items()):
        assert torch.equal(a, b), name


def test_from_pretrained_recommends_like_the_run(exported, recommender):
    loaded = Recommender.from_pretrained(exported)
    histories = [["i1", "i2", "i3"], ["i7"], ["i30", "i12"]]
    assert loaded.recommend_batch(histories, k=6) == recommender.recommend_batch(histories, k=6)


def test_recommend_and_cli_accept_the_export(exported, recommender, capsys):
    assert main(["recommend", str(exported), "--history", "i4,i5", "--k", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == recommender.recommend(["i4", "i5"], k=3)


def test_model_card_says_how_it_was_trained(exported, trained_run):
    card = (exported / "README.md").read_text()
    metrics = json.loads((trained_run / "gti" / "eval" / "metrics.json").read_text())
    assert card.startswith("---\nlibrary_name: transformers")
    for text in ["| users | 12 (all) |", "| catalog items | 40 |", "2 levels x 4 codes", "| method | `gti`",
                 "2 steps, lr", "| seeds |", "12 users", f"| recall@5 | {metrics['recall@5']:.4f} |",
                 "Recommender.from_pretrained"]:
        assert text in card, text
    settings = json.loads((exported / "gti_config.json").read_text())
    chat = settings["next_item_prompt"]["chat_template"]
    assert f"(chat template {'on' if chat else 'off'}" in card  # the card and gti_config.json agree
    tokens = len(json.loads((exported / "sids.json").read_text())["sids"]["i0"])
    assert (f"{tokens} tokens per item" in card) == (tokens > 2)  # an extra level is said, with the SID length


def test_export_refuses_to_overwrite(exported, trained_run, capsys):
    before = (exported / "README.md").read_text()
    assert main(["export", str(trained_run), "--out", str(exported)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(trained_run), "--method", "mean", "--out", str(exported.parent / "m")]) == 2
    assert "no fine-tuned model for method 'mean'" in capsys.readouterr().err
    assert not (exported.parent / "m").exists()
    assert main(["export", str(trained_run), "--out", str(exported), "--overwrite"]) == 0
    assert (exported / "README.md").read_text() == before


def test_from_pretrained_on_a_plain_folder_is_a_clear_error(tmp_path):
    from gti.errors import GtiError

    with pytest.raises(GtiError, match="not an exported gti model"):
        Recommender.from_pretrained(tmp_path)


def test_gti_config_says_how_to_ask_the_model(exported, trained_run):
    settings = json.loads((exported / "gti_config.json").read_text())
    config = json.loads((trained_run / "config.json").read_text())
    assert settings["format"] == 2
    prompt = settings["next_item_prompt"]
    assert prompt["template"] == "History: {history} Next:" and prompt["separator"] == ""
    assert prompt["history_items"] == min(config["data"]["max_history"], config["prompts"]["history"])
    assert prompt["chat_template"] is False  # the tiny tokenizer has no chat template
    assert settings["grounding_prompts"]["text_to_sid"] == config["prompts"]["text_to_sid"]
    assert settings["grounding_prompts"]["sid_to_text"] == config["prompts"]["sid_to_text"]
    sids = json.loads((exported / "sids.json").read_text())
    assert settings["semantic_ids"]["spelling"] == "<a_N><b_N><c_N>"  # 2 levels + the disambiguation level
    assert settings["semantic_ids"]["codes_per_level"] == sids["codebook_sizes"]
    assert settings["decoding"]["constrained"] is True and "trie-constrained" in settings["decoding"]["method"]
    assert settings["decoding"]["beams"] == 5


def test_the_model_cards_transformers_snippet_gives_gti_recommends_top_k(exported, recommender):
    """The card's recipe, run as written (only the folder, history and k filled in), with plain transformers."""
    snippet_answers_as_recommend(exported, recommender)


def test_the_snippet_also_follows_the_sequence_layout(sequence_run, tmp_path):
    out = tmp_path / "tiny-sequence"
    assert main(["export", str(sequence_run), "--method", "mean", "--out", str(out)]) == 0
    prompt = json.loads((out / "gti_config.json").read_text())["next_item_prompt"]
    assert prompt["layout"] == "sequence" and prompt["separator"] == ", "
    loaded = Recommender.from_pretrained(out)
    assert loaded.settings.sequence and loaded.builder.sequence
    snippet_answers_as_recommend(out, loaded)


def snippet_answers_as_recommend(exported, recommender):
    import subprocess
    import sys

    card = (exported / "README.md").read_text()
    snippet = card.split("## Use with plain transformers", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "prefix_allowed_tokens_fn" in snippet and "import gti" not in snippet and "from gti" not in snippet
    for history, k in [(["i3", "i7", "i12"], 6), (["i30"], 10)]:
        script = snippet
        for old, new in [(f'Path("{exported.name}")', f"Path({str(exported)!r})"),
                         ('history = ["<item id>", "<item id>"]', f"history = {history!r}"), ("k = 10\n", f"k = {k}\n")]:
            assert script.count(old) == 1, old
            script = script.replace(old, new)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr[-2000:]
        answer = [line.split() for line in done.stdout.splitlines()]
        expected = recommender.recommend(history, k=k)
        assert [item for item, _ in answer] == [item["item_id"] for item in expected]
        assert [float(score) for _, score in answer] == pytest.approx([item["score"] for item in expected], abs=2e-4)
