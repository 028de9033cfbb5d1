"""The in-memory dataset: a catalog of items with text, and each user's chronological items."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Item:
    """One catalog entry and its text.

    Attributes:
        item_id: The item's id, as a string.
        title: The item's name or title.
        description: Free text about the item; empty when unknown.
        categories: Category path, most general first.
        brand: Maker or brand; empty when unknown.
        extra: Other text fields by name (e.g. `release_year` for ml-100k).
    """

    item_id: str
    title: str
    description: str = ""
    categories: tuple[str, ...] = ()
    brand: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Dataset:
    """A sequential-recommendation dataset.

    Attributes:
        name: Short name, e.g. `ml-100k` or the folder's name.
        items: The catalog by item id, in file order; items nobody interacted with included.
        sequences: Each user's item ids in chronological order, users in file order.
    """

    name: str
    items: dict[str, Item]
    sequences: dict[str, list[str]]

    def category_paths(self) -> dict[str, tuple[str, ...]]:
        """Item id -> its category path, most general first, for the items that have one."""
        return {item_id: item.categories for item_id, item in self.items.items() if item.categories}

    def stats(self) -> dict:
        """Counts that describe the dataset.

        Returns:
            `users`, `items`, `interactions`, `avg_history` (mean sequence length) and
            `text_fields`: for `title`, `description`, `categories`, `brand` and each extra
            field, how many items have it non-empty.
        """
        interactions = sum(len(sequence) for sequence in self.sequences.values())
        text_fields = {"title": 0, "description": 0, "categories": 0, "brand": 0}
        for item in self.items.values():
            text_fields["title"] += bool(item.title)
            text_fields["description"] += bool(item.description)
            text_fields["categories"] += bool(item.categories)
            text_fields["brand"] += bool(item.brand)
            for name, value in item.extra.items():
                text_fields[name] = text_fields.get(name, 0) + bool(value)
        return {
            "users": len(self.sequences),
            "items": len(self.items),
            "interactions": interactions,
            "avg_history": interactions / len(self.sequences) if self.sequences else 0.0,
            "text_fields": text_fields,
        }
