"""The cold-items split: which items are cold, what the test sets hold, and that no cold item reaches training."""

import random

import pytest

from gti.config import load_config
from gti.data import (
    Dataset,
    Example,
    Item,
    choose_cold_items,
    cold_items_split,
    leave_one_out,
    make_split,
    split_from_json,
    split_stats,
    split_to_json,
)
from gti.errors import GtiError
from gti.train.finetune import seqrec_examples


def hand_made() -> Dataset:
    """Items a..j; with cold_fraction 0.2 and seed 0 the cold items are g and i."""
    items = {item_id: Item(item_id, item_id.upper()) for item_id in "abcdefghij"}
    sequences = {
        "u1": list("abgcd"),  # last item warm, a cold one in the middle
        "u2": list("agbi"),  # last item cold
        "u3": list("gi"),  # nothing warm before its cold last item: no example at all
        "u4": list("cg"),  # two items: a cold test example only
        "u5": list("ief"),  # a cold first item: warm test only
        "u6": list("efhj"),  # no cold item
    }
    return Dataset(name="hand", items=items, sequences=sequences)


def test_cold_items_are_a_seeded_permutation_of_the_sorted_catalog():
    assert choose_cold_items(list("abcdefghij"), 0.2, 0) == ("g", "i")
    assert choose_cold_items(list("jihgfedcba"), 0.2, 0) == ("g", "i")  # file order does not matter
    assert choose_cold_items(list("abcdefghij"), 0.2, 1) != ("g", "i")
    assert len(choose_cold_items([f"i{n}" for n in range(1000)], 0.1, 3)) == 100
    assert set(choose_cold_items(list("abcdefghij"), 0.2, 0)) < set(choose_cold_items(list("abcdefghij"), 0.3, 0))


def test_the_cold_split_by_hand():
    split = cold_items_split(hand_made(), 0.2, seed=0)
    assert split.cold_items == ("g", "i") and split.is_cold
    assert split.train == {"u1": ["a", "b"], "u2": ["a"], "u6": ["e", "f"]}
    assert split.valid == [Example("u1", ("a", "b"), "c"), Example("u2", ("a",), "b"), Example("u6", ("e", "f"), "h")]
    assert split.test == [Example("u1", ("a", "b", "c"), "d"), Example("u5", ("e",), "f"),
                          Example("u6", ("e", "f", "h"), "j")]
    assert split.cold_test == [Example("u2", ("a", "b"), "i"), Example("u4", ("c",), "g")]
    assert split.test_sets() == {"warm": split.test, "cold": split.cold_test}
    short = cold_items_split(hand_made(), 0.2, seed=0, max_history=1)
    assert short.test[0] == Example("u1", ("c",), "d") and short.cold_test[0] == Example("u2", ("b",), "i")
    stats = split_stats(hand_made(), split)
    assert stats == {"split": "cold-items", "train_users": 3, "train_interactions": 5, "valid": 3,
                     "test": {"warm": 3, "cold": 2}, "cold_items": 2, "catalog_items": 10, "cold_interactions": 7,
                     "cold_interactions_removed": 5}
    assert split_from_json(split_to_json(split)) == split
    plain = leave_one_out(hand_made())
    assert split_stats(hand_made(), plain)["test"] == {"test": 6} and not plain.is_cold
    assert "cold_items" not in split_to_json(plain) and split_from_json(split_to_json(plain)) == plain
    assert make_split(hand_made(), "leave-one-out", 20, 0.2, 0) == plain
    assert make_split(hand_made(), "cold-items", 20, 0.2, 0) == split


def random_dataset(seed: int, n_items: int = 30, n_users: int = 80) -> Dataset:
    rng = random.Random(seed)
    items = {f"i{n}": Item(f"i{n}", f"item {n}") for n in range(n_items)}
    sequences = {f"u{user}": [f"i{rng.randrange(n_items)}" for _ in range(rng.randrange(1, 12))] for user in range(n_users)}
    return Dataset(name="random", items=items, sequences=sequences)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_history", [2, 20])
def test_no_cold_item_in_any_training_or_validation_example(seed, max_history):
    dataset = random_dataset(seed)
    split = cold_items_split(dataset, 0.2, seed=seed, max_history=max_history)
    cold = set(split.cold_items)
    assert len(cold) == 6
    for samples in ("last", "sliding"):
        examples = seqrec_examples(split.train, samples, max_history)
        assert examples and not cold & {item for e in examples for item in (*e.history, e.target)}
    assert not cold & {item for sequence in split.train.values() for item in sequence}
    assert not cold & {item for e in split.valid for item in (*e.history, e.target)}
    assert not cold & {item for e in split.test + split.cold_test for item in e.history}
    # the test sets are what the definition says, computed here independently
    expected_warm, expected_cold = [], []
    for user, sequence in dataset.sequences.items():
        history = [item for item in sequence[:-1] if item not in cold]
        if history:
            example = Example(user, tuple(history[-max_history:]), sequence[-1])
            (expected_cold if sequence[-1] in cold else expected_warm).append(example)
    assert split.test == expected_warm and split.cold_test == expected_cold and split.cold_test
    standard = leave_one_out(dataset, max_history)
    assert [e.user_id for e in split.test] == [e.user_id for e in standard.test
                                               if e.target not in cold and set(dataset.sequences[e.user_id][:-1]) - cold]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_a_cold_fraction_outside_zero_one_is_one_line_naming_the_key(fraction):
    with pytest.raises(GtiError, match=r"^data\.cold_fraction: expected a share in \(0, 1\)"):
        cold_items_split(hand_made(), fraction, seed=0)
    with pytest.raises(GtiError, match=r"data\.cold_fraction: expected a share in \(0, 1\)"):
        load_config(None, [f"data.cold_fraction={fraction}"])


def test_a_split_without_cold_test_users_or_cold_items_is_refused():
    dataset = hand_made()
    dataset.sequences = {user: [item for item in sequence if item not in "gi"] for user, sequence in dataset.sequences.items()}
    with pytest.raises(GtiError, match=r"^data\.cold_fraction: .*has no test user whose last item is cold"):
        cold_items_split(dataset, 0.2, seed=0)
    dataset = hand_made()
    dataset.sequences = {"u2": list("agbi"), "u4": list("cg")}  # every last item cold
    with pytest.raises(GtiError, match=r"^data\.cold_fraction: .*has no test user whose last item is warm; lower"):
        cold_items_split(dataset, 0.2, seed=0)
    with pytest.raises(GtiError, match=r"^data\.cold_fraction: 0\.01 of 10 items selects 0 cold items"):
        cold_items_split(hand_made(), 0.01, seed=0)


def test_config_names_the_split_and_cold_beams_keys():
    assert load_config(None, ["data.split=cold-items"]).data.split == "cold-items"
    assert load_config(None).data.split == "leave-one-out" and load_config(None).data.cold_fraction == 0.1
    with pytest.raises(GtiError, match=r"data\.split: 'cold' is not one of leave-one-out, cold-items"):
        load_config(None, ["data.split=cold"])
    with pytest.raises(GtiError, match=r"eval\.cold_beams: expected a share of the beams in \[0, 1\], got 1\.5"):
        load_config(None, ["eval.cold_beams=1.5"])
