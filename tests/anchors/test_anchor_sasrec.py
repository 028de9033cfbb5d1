"""`sasrec` learns a constructed rule with a known answer, keeps its best epoch, and is reproducible."""

import random

import pytest
import torch

from gti.anchors.sasrec import SASRec, train_sasrec, validation_measures
from gti.config import SasrecConfig, load_config
from gti.errors import GtiError

N_ITEMS = 30


def successor_split(users: int = 60, seed: int = 0):
    """Item i is always followed by item i + 1 (mod N): train / validation / test as leave-one-out would cut them."""
    rng = random.Random(seed)
    sequences = []
    for _ in range(users):
        start, length = rng.randrange(N_ITEMS), rng.randint(5, 9)
        sequences.append([(start + i) % N_ITEMS for i in range(length)])
    train = [s[:-2] for s in sequences]
    valid = [(s[:-2], s[-2]) for s in sequences]
    test = [(s[:-1], s[-1]) for s in sequences]
    return train, valid, test


SMALL = SasrecConfig(hidden=32, heads=2, dropout=0.1, lr=1e-2, batch_size=32, epochs=40, patience=10)


def test_sasrec_learns_that_each_item_is_followed_by_the_next():
    train, valid, test = successor_split()
    fit = train_sasrec(train, valid, N_ITEMS, 20, SMALL)
    measures = validation_measures(fit.model, [h for h, _ in test], [t for _, t in test], k=1)
    assert measures["recall@1"] >= 0.95
    untrained = SASRec(N_ITEMS, 20, SMALL).eval()
    assert validation_measures(untrained, [h for h, _ in test], [t for _, t in test], k=1)["recall@1"] < 0.2
    pairs = sum(len(s) - 1 for s in train if len(s) > 1)
    assert fit.interactions == pairs * fit.epochs and fit.steps == fit.epochs * -(-len(train) // SMALL.batch_size)


def test_the_best_epoch_is_kept_and_patience_stops_training():
    train, valid, _ = successor_split()
    config = SasrecConfig(**{**vars(SMALL), "lr": 3e-2, "epochs": 60, "patience": 3})
    fit = train_sasrec(train, valid, N_ITEMS, 20, config)
    best = max(fit.validations, key=lambda v: (v["recall@10"], -v["loss"]))
    assert fit.best_epoch == best["epoch"]
    assert fit.stopped_early == (fit.epochs < 60)
    if fit.stopped_early:  # three epochs in a row without a better one
        assert fit.epochs - fit.best_epoch == 3
    kept = validation_measures(fit.model, [h for h, _ in valid], [t for _, t in valid])
    assert kept["recall@10"] == best["recall@10"] and kept["loss"] == pytest.approx(best["loss"], rel=1e-5)


def test_the_same_seed_trains_the_same_model():
    train, valid, _ = successor_split(users=20)
    config = SasrecConfig(**{**vars(SMALL), "epochs": 3})
    first, second = (train_sasrec(train, valid, N_ITEMS, 20, config) for _ in range(2))
    assert first.validations == second.validations
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("setting", "message"), [
    ("sasrec.heads=3", "sasrec.heads: must divide sasrec.hidden = 64"),
    ("sasrec.dropout=1.0", r"sasrec.dropout: must be in \[0, 1\)"),
    ("sasrec.lr=0", "sasrec.lr: must be positive"),
    ("sasrec.epochs=0", "sasrec.epochs: must be at least 1"),
])
def test_sasrec_settings_are_validated(setting, message):
    with pytest.raises(GtiError, match=message):
        load_config(None, [setting])
