"""`sasrec` learns a constructed rule with a known answer, keeps its best epoch, and is reproducible."""

import math
import random

import pytest
import torch

from gti.anchors.sasrec import SASRec, train_sasrec, validation_measures, windows
from gti.config import SasrecConfig, load_config
from gti.data import subsample
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


def test_the_first_loss_is_that_of_a_uniform_guess():
    """N(0, 0.02) weights give near-equal logits: on random data the first step's loss is within 10% of log N
    (PyTorch's default N(0, 1) embeddings, tied to the output layer, started it at several times that)."""
    n_items, generator = 500, torch.Generator().manual_seed(0)
    inputs = torch.randint(1, n_items + 1, (32, 20), generator=generator)
    labels = torch.randint(1, n_items + 1, (32, 20), generator=generator)
    torch.manual_seed(0)
    model = SASRec(n_items, 20, SasrecConfig()).train()
    loss = torch.nn.functional.cross_entropy(model.logits(model(inputs)).flatten(0, 1), labels.flatten() - 1)
    assert abs(loss.item() - math.log(n_items)) < 0.1 * math.log(n_items)
    assert torch.count_nonzero(model.items.weight[0]) == 0
    assert float(model.items.weight[1:].detach().std()) == pytest.approx(0.02, rel=0.1)


def test_windows_train_every_target_once_within_the_models_length():
    rows = list(range(23))
    found = windows(rows, 5)
    labels = [label for _, label_ids in found for label in label_ids]
    assert labels == [row + 1 for row in rows[1:]]  # every item after the first, once, in order
    for inputs, label_ids in found:
        assert len(inputs) == len(label_ids) <= 5 and inputs[1:] == label_ids[:-1]
    assert found[-1][1][-1] == rows[-1] + 1 and windows([3], 5) == []
    assert windows([1, 2, 3], 5) == [([2, 3], [3, 4])]


def test_a_long_sequence_trains_all_of_its_targets():
    train, valid, _ = successor_split(users=10)
    config = SasrecConfig(**{**vars(SMALL), "epochs": 1})
    fit = train_sasrec(train, valid, N_ITEMS, 3, config)  # windows of 3 cover sequences of up to 7 items
    assert fit.interactions == sum(len(s) - 1 for s in train)


def test_samples_of_users_are_seeded_and_in_order():
    valid = [([i], i) for i in range(100)]
    sample = subsample(valid, 10, 0)
    assert len(sample) == 10 and sample == sorted(sample) and sample == subsample(valid, 10, 0)
    assert sample != subsample(valid, 10, 1) and sample != valid[:10]
    assert subsample(valid, 10, 0, "first") == valid[:10]
    assert subsample(valid, 0, 0) == valid and subsample(valid, None, 0) == valid and subsample(valid, 500, 0) == valid
