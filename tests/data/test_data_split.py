"""Leave-one-out splitting and user sampling."""

import random

import pytest

from gti.data import Dataset, Example, Item, leave_one_out, sample_users
from gti.errors import GtiError
from gti.train.finetune import seqrec_examples


def hand_made() -> Dataset:
    items = {item_id: Item(item_id, item_id.upper()) for item_id in "abcdef"}
    sequences = {
        "u1": ["a", "b", "c", "d", "e"],
        "u2": ["a", "b"],
        "u3": ["c"],
        "u4": ["f", "a", "b"],
    }
    return Dataset(name="hand", items=items, sequences=sequences)


def test_leave_one_out():
    split = leave_one_out(hand_made())
    assert split.train == {"u1": ["a", "b", "c"], "u4": ["f"]}
    assert split.valid == [
        Example("u1", ("a", "b", "c"), "d"),
        Example("u4", ("f",), "a"),
    ]
    assert split.test == [
        Example("u1", ("a", "b", "c", "d"), "e"),
        Example("u2", ("a",), "b"),
        Example("u4", ("f", "a"), "b"),
    ]


def test_leave_one_out_truncates_histories_not_train():
    split = leave_one_out(hand_made(), max_history=2)
    assert split.train["u1"] == ["a", "b", "c"]
    assert split.valid[0] == Example("u1", ("b", "c"), "d")
    assert split.test[0] == Example("u1", ("c", "d"), "e")
    assert split.test[1] == Example("u2", ("a",), "b")


def test_leave_one_out_rejects_empty_history():
    with pytest.raises(GtiError, match="max_history"):
        leave_one_out(hand_made(), max_history=0)


def many_users(n: int = 100) -> Dataset:
    items = {str(index): Item(str(index), f"item {index}") for index in range(10)}
    sequences = {f"user{index}": [str(index % 10), str((index + 1) % 10)] for index in range(n)}
    return Dataset(name="many", items=items, sequences=sequences)


def test_sample_users_is_deterministic():
    dataset = many_users()
    first = sample_users(dataset, 10, seed=3)
    again = sample_users(dataset, 10, seed=3)
    other = sample_users(dataset, 10, seed=4)
    assert first.sequences == again.sequences
    assert list(first.sequences) != list(other.sequences)
    assert len(first.sequences) == 10
    order = list(dataset.sequences)
    assert [order.index(user) for user in first.sequences] == sorted(order.index(user) for user in first.sequences)
    assert all(first.sequences[user] == dataset.sequences[user] for user in first.sequences)
    assert first.items == dataset.items
    assert len(dataset.sequences) == 100


def test_a_sampled_catalog_keeps_only_the_drawn_users_items_and_all_keeps_every_item():
    dataset = hand_made()
    small = sample_users(dataset, 2, seed=1, catalog="sampled")
    seen = {item for sequence in small.sequences.values() for item in sequence}
    assert list(small.items) == [item for item in dataset.items if item in seen] and len(small.items) < len(dataset.items)
    assert sample_users(dataset, 2, seed=1, catalog="all").items == dataset.items
    assert sample_users(dataset, None, seed=1, catalog="sampled").items == dataset.items  # no sample: every item


def test_the_data_key_of_a_whole_catalog_is_the_one_it_had_before_data_catalog():
    from gti.config import DataConfig
    from gti.stages.data import data_settings

    assert "catalog" not in data_settings(DataConfig(users=10, catalog="all"))
    assert "catalog" not in data_settings(DataConfig(catalog="sampled"))  # no sample
    assert data_settings(DataConfig(users=10))["catalog"] == "sampled"  # the default shrinks the catalog


def test_sample_users_none_keeps_everyone():
    dataset = many_users()
    assert sample_users(dataset, None, seed=0).sequences == dataset.sequences


@pytest.mark.parametrize("n_users", [0, 101])
def test_sample_users_out_of_range(n_users):
    with pytest.raises(GtiError, match=f"n_users: expected 1 to 100 .*got {n_users}"):
        sample_users(many_users(), n_users, seed=0)


def test_split_json_round_trip():
    from gti.data import Dataset, Item, leave_one_out, split_from_json, split_to_json

    items = {i: Item(i, f"title {i}") for i in "abcdef"}
    dataset = Dataset("tiny", items, {"u1": list("abcde"), "u2": list("fa")})
    split = leave_one_out(dataset, max_history=2)
    assert split_from_json(split_to_json(split)) == split


@pytest.mark.parametrize("samples", ["last", "sliding"])
@pytest.mark.parametrize("max_history", [1, 3, 50])
def test_no_held_out_target_reaches_training(samples, max_history):
    """Every interaction is its own item, so an item seen in training is an event seen in training."""
    rng = random.Random(7)
    sequences, next_event = {}, 0
    for user in range(60):
        length = rng.randrange(1, 12)
        sequences[f"u{user}"] = [f"e{next_event + position}" for position in range(length)]
        next_event += length
    dataset = Dataset(name="events", items={}, sequences=sequences)
    split = leave_one_out(dataset, max_history=max_history)
    held_out = {example.target for example in split.valid + split.test}
    assert len(held_out) == len(split.valid) + len(split.test) > 0
    examples = seqrec_examples(split.train, samples, max_history)
    assert examples
    trained = {example.target for example in examples} | {item for example in examples for item in example.history}
    assert not held_out & trained
    assert not held_out & {item for sequence in split.train.values() for item in sequence}
    assert not {e.target for e in split.test} & {item for e in split.valid for item in e.history}
    if samples == "sliding":  # every training event but each user's first is a target once
        assert len(examples) == sum(len(sequence) - 1 for sequence in split.train.values())


def test_samples_of_one_seed_nest_and_an_excluded_draw_makes_them_disjoint():
    dataset = many_users(200)
    small, large = sample_users(dataset, 20, seed=0), sample_users(dataset, 50, seed=0)
    assert len(set(small.sequences) & set(large.sequences)) >= 15  # (on Beauty 2,000 in 5,000: all) why `exclude`
    disjoint = sample_users(dataset, 50, seed=0, exclude=(20, 0))
    assert len(disjoint.sequences) == 50 and not set(disjoint.sequences) & set(small.sequences)
    assert disjoint.sequences == sample_users(dataset, 50, seed=0, exclude=(20, 0)).sequences
    assert set(sample_users(dataset, None, seed=0, exclude=(20, 0)).sequences) == set(dataset.sequences) - set(small.sequences)
    with pytest.raises(GtiError, match="outside the 190 excluded ones"):
        sample_users(dataset, 11, seed=0, exclude=(190, 0))


def test_the_excluded_draw_is_a_config_setting_and_part_of_the_data_key():
    from gti.config import load_config
    from gti.stages.data import data_key, data_settings

    config = load_config(None, ["data.exclude_users=2000", "data.users=5000"])
    assert config.data.exclude_users == 2000 and config.data.exclude_seed == 0
    assert "exclude_users" not in data_settings(load_config(None, []).data)  # earlier run folders keep their key
    assert data_settings(config.data)["exclude_users"] == 2000
    assert data_key(config.data) != data_key(load_config(None, ["data.users=5000"]).data)
