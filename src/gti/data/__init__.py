"""Datasets: items with text, chronological user sequences, loaders per format, splits, item text."""

from gti.data.dataset import Dataset, Item
from gti.data.load import FORMATS, load_dataset
from gti.data.split import Example, Split, leave_one_out, sample_users, split_from_json, split_to_json
from gti.data.text import DEFAULT_FIELDS, render_item_text

__all__ = [
    "DEFAULT_FIELDS",
    "FORMATS",
    "Dataset",
    "Example",
    "Item",
    "Split",
    "leave_one_out",
    "load_dataset",
    "render_item_text",
    "sample_users",
    "split_from_json",
    "split_to_json",
]
