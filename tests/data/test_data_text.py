"""Item text rendering."""

import pytest

from gti.data import Item, render_item_text
from gti.errors import GtiError

TOY_STORY = Item(
    "1", "Toy Story", categories=("Animation", "Children's", "Comedy"), extra={"release_year": "1995"}
)


def test_default_fields_drop_empty_brand():
    assert render_item_text(TOY_STORY) == "Toy Story; Animation, Children's, Comedy"


def test_fields_in_the_order_given_with_extras():
    text = render_item_text(TOY_STORY, ("release_year", "title", "categories"))
    assert text == "1995; Toy Story; Animation, Children's, Comedy"


def test_every_empty_field_is_dropped():
    item = Item("2", "Glue", description="  ", categories=("", "Adhesives"), brand="", extra={"year": ""})
    assert render_item_text(item, ("brand", "title", "description", "categories", "year")) == "Glue; Adhesives"
    assert render_item_text(Item("3", ""), ("title", "brand")) == ""


def test_unknown_field_lists_valid_names():
    with pytest.raises(GtiError, match="'price': expected one of title, description, categories, brand, release_year"):
        render_item_text(TOY_STORY, ("title", "price"))
