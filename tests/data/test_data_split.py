"""Leave-one-out splitting and user sampling."""

import pytest

from gti.data import Dataset, Example, Item, leave_one_out, sample_users
from gti.errors import GtiError


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
