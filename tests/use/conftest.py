"""A trained run folder for the recommend, export and serve tests, built once per session.

`gti run` with GTI on a tiny random Llama (2 layers, hidden 16) and 40 items / 12 users, a few
steps per stage: about 10 seconds on a CPU.
"""

import json
import random

import pytest

from gti.cli import main
from tiny_models import make_tiny_model, make_tiny_tokenizer

WORDS = "movie comedy drama action story toy love war night day man woman city house game red blue green".split()


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """`<tmp>/run` after `gti run` (method gti), with its dataset in `<tmp>/dataset`."""
    return _trained(tmp_path_factory, ["init.method=gti"])


@pytest.fixture(scope="session")
def sequence_run(tmp_path_factory):
    """The same with mean init fine-tuned on whole sequences (`finetune.samples = "sequence"`), paper prompts (a
    separator between items)."""
    return _trained(tmp_path_factory, ["init.method=mean", "finetune.samples=sequence", "prompts.style=paper",
                                       "train.pack=true"])


def _trained(tmp_path_factory, extra: list[str]):
    root = tmp_path_factory.mktemp("use")
    dataset = root / "dataset"
    dataset.mkdir()
    rng = random.Random(0)
    with (dataset / "items.jsonl").open("w") as items:
        for i in range(40):
            title = " ".join(rng.sample(WORDS, 3))
            items.write(json.dumps({"item_id": f"i{i}", "title": title, "categories": [rng.choice(WORDS)]}) + "\n")
    lines = ["user_id\titem_id\ttimestamp"]
    for user in range(12):
        for step, item in enumerate(rng.sample(range(40), rng.randint(4, 8))):
            lines.append(f"u{user}\ti{item}\t{1000 + step}")
    (dataset / "interactions.tsv").write_text("\n".join(lines) + "\n")
    model = root / "model"
    tokenizer = make_tiny_tokenizer()
    make_tiny_model(len(tokenizer)).save_pretrained(model)
    tokenizer.save_pretrained(model)
    settings = [
        f"data.source={json.dumps(str(dataset))}", f"model.name={json.dumps(str(model))}", *extra,
        "sids.levels=2", "sids.codes=4", "ground.steps=2", "ground.batch_size=4",
        "finetune.steps=2", "finetune.batch_size=4", "eval.beams=5", "train.precision=float32",
    ]
    run = root / "run"
    assert main(["run", *[arg for s in settings for arg in ("--set", s)], "--out", str(run)]) == 0
    return run


@pytest.fixture(scope="session")
def recommender(trained_run):
    from gti import Recommender

    return Recommender.from_run(trained_run)
