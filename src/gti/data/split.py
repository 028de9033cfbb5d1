"""Leave-one-out splitting into train / valid / test, and drawing a subset of users."""

import random
from dataclasses import dataclass

from gti.data.dataset import Dataset
from gti.errors import GtiError


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


@dataclass
class Split:
    """A leave-one-out split.

    Attributes:
        train: User -> every item but the last two, not truncated; users with none left out.
        valid: Target the second-to-last item; one example per user with at least 3 items.
        test: Target the last item; one example per user with at least 2 items.
    """

    train: dict[str, list[str]]
    valid: list[Example]
    test: list[Example]


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


def split_to_json(split: Split) -> dict:
    """A split as plain JSON data: train sequences, and valid/test examples as objects."""

    def rows(examples: list[Example]) -> list[dict]:
        return [{"user_id": e.user_id, "history": list(e.history), "target": e.target} for e in examples]

    return {"train": split.train, "valid": rows(split.valid), "test": rows(split.test)}


def split_from_json(data: dict) -> Split:
    """The inverse of `split_to_json`."""

    def examples(rows: list[dict]) -> list[Example]:
        return [Example(row["user_id"], tuple(row["history"]), row["target"]) for row in rows]

    return Split(train=data["train"], valid=examples(data["valid"]), test=examples(data["test"]))


def sample_users(dataset: Dataset, n_users: int | None, seed: int) -> Dataset:
    """Restrict a dataset to `n_users` users drawn at random; the same seed draws the same users.

    Args:
        dataset: The full dataset.
        n_users: How many users to keep (all their items); None keeps every user.
        seed: Seed of the draw.

    Returns:
        A new dataset with the same catalog and the drawn users' sequences, in the original order.

    Raises:
        GtiError: `n_users` is below 1 or above the number of users.
    """
    users = list(dataset.sequences)
    if n_users is None:
        chosen = users
    elif not 1 <= n_users <= len(users):
        raise GtiError(f"n_users: expected 1 to {len(users)} (the users of {dataset.name}), got {n_users}")
    else:
        chosen = [users[index] for index in sorted(random.Random(seed).sample(range(len(users)), n_users))]
    return Dataset(
        name=dataset.name,
        items=dict(dataset.items),
        sequences={user_id: list(dataset.sequences[user_id]) for user_id in chosen},
    )
