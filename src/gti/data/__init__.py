"""Datasets: items with text, chronological user sequences, loaders per format, splits, item text."""

from gti.data.dataset import Dataset, Item
from gti.data.load import FORMATS, load_dataset
from gti.data.split import (
    SPLITS,
    Example,
    Split,
    choose_cold_items,
    cold_items_split,
    leave_one_out,
    make_split,
    sample_users,
    split_from_json,
    split_stats,
    split_to_json,
    subsample,
    windows,
)
from gti.data.text import DEFAULT_FIELDS, render_item_text

__all__ = [
    "DEFAULT_FIELDS",
    "FORMATS",
    "SPLITS",
    "Dataset",
    "Example",
    "Item",
    "Split",
    "choose_cold_items",
    "cold_items_split",
    "leave_one_out",
    "load_dataset",
    "make_split",
    "render_item_text",
    "sample_users",
    "subsample",
    "windows",
    "split_from_json",
    "split_stats",
    "split_to_json",
]
