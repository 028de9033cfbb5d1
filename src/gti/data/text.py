"""Item text for prompts and encoders: chosen fields in order, e.g. `Toy Story; Animation, Comedy; 1995`."""

from collections.abc import Sequence

from gti.data.dataset import Item
from gti.errors import GtiError

DEFAULT_FIELDS = ("title", "categories", "brand")
_CORE_FIELDS = ("title", "description", "categories", "brand")


def render_item_text(item: Item, fields: Sequence[str] = DEFAULT_FIELDS) -> str:
    """Render the named fields of an item as one line.

    Fields are joined with "; " in the order given; categories are joined with ", ";
    empty fields are dropped.

    Args:
        item: The item.
        fields: Names among title, description, categories, brand and the item's extra fields.

    Returns:
        The text, e.g. `"Toy Story; Animation, Children's, Comedy; 1995"`.

    Raises:
        GtiError: a field name is neither a core field nor one of the item's extra fields.
    """
    parts = []
    for name in fields:
        if name == "categories":
            value = ", ".join(category.strip() for category in item.categories if category.strip())
        elif name in _CORE_FIELDS:
            value = getattr(item, name)
        elif name in item.extra:
            value = item.extra[name]
        else:
            valid = ", ".join((*_CORE_FIELDS, *item.extra))
            raise GtiError(f"item text field {name!r}: expected one of {valid}")
        if value.strip():
            parts.append(value.strip())
    return "; ".join(parts)
