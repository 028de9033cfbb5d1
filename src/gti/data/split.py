"""Splitting into train / valid / test (leave-one-out, or cold-start items), and drawing a subset of users.

The cold-items split holds out a seeded share of the catalog as *cold* items that no training or
validation example ever shows: each user's sequence loses every cold item except its last item,
and is then split leave-one-out. A test example whose target is cold goes to the cold test set,
the others to the warm one (see `cold_items_split`).
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from gti.data.dataset import Dataset
from gti.errors import GtiError

T = TypeVar("T")


@dataclass(frozen=True)
class Example:
    """One next-item prediction example.

    Attributes:
        user_id: Whose sequence it comes from.
        history: The items before the target, oldest first, at most `max_history` of them.
        target: The item to predict.
    """

    user_id: str
    history: tuple[str, ...]
    target: str


SPLITS = ("leave-one-out", "cold-items")
"""What `data.split` accepts."""


@dataclass
class Split:
    """A leave-one-out split, or a cold-items split (leave-one-out once cold items are removed).

    Attributes:
        train: User -> every item but the last two, not truncated; users with none left out.
        valid: Target the second-to-last item; one example per user with at least 3 items.
        test: Target the last item; one example per user with at least 2 items. In a cold-items
            split, only the users whose last item is warm (the warm test set).
        cold_items: The cold items, sorted by id; empty in a leave-one-out split.
        cold_test: The users whose last item is cold (the cold test set); empty in a leave-one-out split.
    """

    train: dict[str, list[str]]
    valid: list[Example]
    test: list[Example]
    cold_items: tuple[str, ...] = ()
    cold_test: list[Example] = field(default_factory=list)

    @property
    def is_cold(self) -> bool:
        """Whether this is a cold-items split."""
        return bool(self.cold_items)

    def test_sets(self) -> dict[str, list[Example]]:
        """Test set name -> its examples: `{"test": ...}`, or `{"warm": ..., "cold": ...}` in a cold-items split."""
        return {"warm": self.test, "cold": self.cold_test} if self.is_cold else {"test": self.test}


def leave_one_out(dataset: Dataset, max_history: int = 20) -> Split:
    """Split each user's sequence: last item to test, second to last to valid, the rest to train.

    Args:
        dataset: The dataset to split.
        max_history: Longest history an example keeps (its most recent items).

    Returns:
        The split, users in the dataset's order.

    Raises:
        GtiError: `max_history` is below 1.
    """
    if max_history < 1:
        raise GtiError(f"max_history: expected a positive integer, got {max_history}")
    train, valid, test = {}, [], []
    for user_id, sequence in dataset.sequences.items():
        if len(sequence) > 2:
            train[user_id] = sequence[:-2]
            valid.append(Example(user_id, tuple(sequence[:-2][-max_history:]), sequence[-2]))
        if len(sequence) > 1:
            test.append(Example(user_id, tuple(sequence[:-1][-max_history:]), sequence[-1]))
    return Split(train=train, valid=valid, test=test)


def choose_cold_items(item_ids: list[str], cold_fraction: float, seed: int) -> tuple[str, ...]:
    """The cold items: the first round(cold_fraction x N) of a seeded permutation of the sorted item ids.

    The ids are sorted first, so the choice depends on the catalog and the seed only (not on file
    order); the generator is `random.Random(f"cold-items:{seed}")`, apart from the user sample's.

    Returns:
        The chosen ids, sorted.

    Raises:
        GtiError: `cold_fraction` is outside (0, 1), or selects no item (or every item) of the catalog.
    """
    if not 0 < cold_fraction < 1:
        raise GtiError(f"data.cold_fraction: expected a share in (0, 1), got {cold_fraction}")
    order = sorted(item_ids)
    random.Random(f"cold-items:{seed}").shuffle(order)
    count = round(cold_fraction * len(order))
    if not 0 < count < len(order):
        raise GtiError(f"data.cold_fraction: {cold_fraction} of {len(order)} items selects {count} cold items; "
                       f"expected at least 1 and fewer than {len(order)}")
    return tuple(sorted(order[:count]))


def cold_items_split(dataset: Dataset, cold_fraction: float, seed: int, max_history: int = 20) -> Split:
    """Hold out cold items: no training or validation example shows one; test on warm and cold targets.

    Each user's sequence keeps its last item and loses every other interaction with a cold item
    (`choose_cold_items`); the result is split leave-one-out. So training sequences and validation
    examples hold no cold item at all, test histories hold none, and only a test target can be
    cold: those examples form the cold test set (`cold_test`), the others the warm one (`test`).
    A user whose sequence is a single item once cold items are removed has no test example.

    Raises:
        GtiError: a bad `cold_fraction`, `max_history` below 1, or no test user whose last item is cold
            (or none whose last item is warm).
    """
    cold = choose_cold_items(list(dataset.items), cold_fraction, seed)
    cold_set = set(cold)
    kept = {user: [item for item in sequence[:-1] if item not in cold_set] + sequence[-1:]
            for user, sequence in dataset.sequences.items()}
    split = leave_one_out(Dataset(dataset.name, dataset.items, kept), max_history)
    warm_test = [e for e in split.test if e.target not in cold_set]
    cold_test = [e for e in split.test if e.target in cold_set]
    for examples, kind, advice in ((cold_test, "cold", "raise"), (warm_test, "warm", "lower")):
        if not examples:
            raise GtiError(f"data.cold_fraction: the cold-items split of {dataset.name} ({len(cold)} cold items of "
                           f"{len(dataset.items)}) has no test user whose last item is {kind}; "
                           f"{advice} data.cold_fraction, change data.seed or use more users")
    return Split(train=split.train, valid=split.valid, test=warm_test, cold_items=cold, cold_test=cold_test)


def make_split(dataset: Dataset, split: str, max_history: int, cold_fraction: float, seed: int) -> Split:
    """The split `data.split` names: `leave-one-out` or `cold-items` (with `cold_fraction` and `seed`)."""
    if split == "leave-one-out":
        return leave_one_out(dataset, max_history)
    if split == "cold-items":
        return cold_items_split(dataset, cold_fraction, seed, max_history)
    raise GtiError(f"data.split: {split!r} is not one of {', '.join(SPLITS)}")


def split_stats(dataset: Dataset, split: Split) -> dict:
    """Counts that describe a split: examples per part and, for cold items, what was held out.

    Returns:
        `split`, `train_users`, `train_interactions`, `valid`, `test` (per test set) and, in a
        cold-items split, `cold_items`, `catalog_items`, `cold_interactions` (interactions with a
        cold item in the sequences before the split, each user's last included) and
        `cold_interactions_removed` (those no example holds: all but the cold test targets).
    """
    stats = {
        "split": "cold-items" if split.is_cold else "leave-one-out",
        "train_users": len(split.train),
        "train_interactions": sum(len(sequence) for sequence in split.train.values()),
        "valid": len(split.valid),
        "test": {name: len(examples) for name, examples in split.test_sets().items()},
    }
    if split.is_cold:
        cold = set(split.cold_items)
        interactions = sum(item in cold for sequence in dataset.sequences.values() for item in sequence)
        stats.update(cold_items=len(cold), catalog_items=len(dataset.items), cold_interactions=interactions,
                     cold_interactions_removed=interactions - len(split.cold_test))
    return stats


def split_to_json(split: Split) -> dict:
    """A split as plain JSON data: train sequences, and valid/test examples as objects (plus the cold
    items and the cold test set in a cold-items split)."""

    def rows(examples: list[Example]) -> list[dict]:
        return [{"user_id": e.user_id, "history": list(e.history), "target": e.target} for e in examples]

    data = {"train": split.train, "valid": rows(split.valid), "test": rows(split.test)}
    if split.is_cold:
        data.update(cold_items=list(split.cold_items), cold_test=rows(split.cold_test))
    return data


def split_from_json(data: dict) -> Split:
    """The inverse of `split_to_json`."""

    def examples(rows: list[dict]) -> list[Example]:
        return [Example(row["user_id"], tuple(row["history"]), row["target"]) for row in rows]

    return Split(train=data["train"], valid=examples(data["valid"]), test=examples(data["test"]),
                 cold_items=tuple(data.get("cold_items", ())), cold_test=examples(data.get("cold_test", [])))


def windows(sequence: Sequence[T], max_history: int) -> list[list[T]]:
    """Windows of at most `max_history` + 1 consecutive items that hold every item after the first exactly once as a
    target (each window's items after its first), oldest first; the last window ends with the sequence's last item.

    A window's targets see at most `max_history` earlier items, as at test. A sequence of one item has none.
    """
    found, end = [], len(sequence)
    while end > 1:
        found.append(list(sequence[max(0, end - max_history - 1):end]))
        end -= max_history
    return found[::-1]


def subsample(examples: Sequence[T], n: int | None, seed: int, how: str = "random") -> list[T]:
    """At most `n` of `examples`, kept in their order: a seeded random sample (`random`) or the first `n` (`first`);
    None or 0 keeps all. The first N users of a split are not a random sample of them (on a 5,000-user Beauty slice a
    correct SASRec got recall@10 0.0200 on the first 1,000 test users and 0.0494 on all 5,000)."""
    if not n or len(examples) <= n:
        return list(examples)
    if how == "first":
        return list(examples[:n])
    chosen = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in chosen]


def sample_users(dataset: Dataset, n_users: int | None, seed: int,
                 exclude: tuple[int, int] | None = None, catalog: str = "all") -> Dataset:
    """Restrict a dataset to `n_users` users drawn at random; the same seed draws the same users.

    Samples of one seed are not independent of each other: a larger one may hold a smaller one's
    users (Python's `random.sample` of 5,000 held all 2,000 of the same seed's 2,000 on Beauty). A
    confirmation that must not reuse the users of a tuning run passes that run's draw as `exclude`.

    Args:
        dataset: The full dataset.
        n_users: How many users to keep (all their items); None keeps every user (but the excluded ones).
        seed: Seed of the draw.
        exclude: (users, seed) of another draw whose users are left out before this one draws:
            the result is disjoint from `sample_users(dataset, *exclude)`.
        catalog: `all` keeps every item of the catalog; `sampled` (with `n_users`) only the items the drawn users
            interacted with, in catalog order.

    Returns:
        A new dataset with the drawn users' sequences, in the original order, and the catalog `catalog` says.

    Raises:
        GtiError: `n_users` is below 1 or above the number of users left to draw from.
    """
    users = list(dataset.sequences)
    if exclude is not None:
        left_out = set(sample_users(dataset, *exclude).sequences)
        users = [user for user in users if user not in left_out]
    if n_users is None:
        chosen = users
    elif not 1 <= n_users <= len(users):
        outside = f" outside the {exclude[0]} excluded ones" if exclude is not None else ""
        raise GtiError(f"n_users: expected 1 to {len(users)} (the users of {dataset.name}{outside}), got {n_users}")
    else:
        chosen = [users[index] for index in sorted(random.Random(seed).sample(range(len(users)), n_users))]
    sequences = {user_id: list(dataset.sequences[user_id]) for user_id in chosen}
    items = dict(dataset.items)
    if catalog == "sampled" and n_users is not None:
        seen = {item for sequence in sequences.values() for item in sequence}
        items = {item_id: item for item_id, item in items.items() if item_id in seen}
    return Dataset(name=dataset.name, items=items, sequences=sequences)
