"""`gti data dump`: a raw Amazon 2014 dump made from a normalized folder reads back, through `gti data prepare`,
as the same users, sequences and item text."""

import gzip
import json

import pytest

from gti.cli import main
from gti.data import load_dataset
from gti.data.prepare import prepare
from gti.data.rawdump import write_dump
from gti.errors import GtiError


@pytest.fixture
def normalized(tmp_path):
    folder = tmp_path / "norm"
    folder.mkdir()
    items = [{"item_id": f"i{n}", "title": f"Item 'no' {n} & co", "categories": ["Beauty", f"Part {n % 2}"],
              "brand": None if n % 3 else f"Brand{n}"} for n in range(6)]
    with gzip.open(folder / "items.jsonl.gz", "wt") as file:
        file.writelines(json.dumps(item) + "\n" for item in items)
    rows = ["user_id\titem_id\ttimestamp", "u1\ti0\t100", "u1\ti1\t100", "u1\ti2\t200", "u2\ti3\t50", "u2\ti0\t60",
            "u3\ti5\t10", "u3\ti4\t20"]
    with gzip.open(folder / "interactions.tsv.gz", "wt") as file:
        file.write("\n".join(rows) + "\n")
    return folder


def test_a_dump_of_the_first_users_prepares_back_to_the_same_sequences_and_text(normalized, tmp_path):
    reviews, meta, counts = write_dump(normalized, tmp_path / "raw", "Beauty", users=2)
    assert counts == {"users": 2, "items": 4, "interactions": 5}
    assert reviews.name == "reviews_Beauty.json.gz" and meta.name == "meta_Beauty.json.gz"
    assert gzip.open(meta, "rt").readline().startswith("{'asin': 'i0'")  # Python literals, as the 2014 files
    prepare("amazon", reviews, meta, tmp_path / "back", kcore=1, log=lambda line: None)
    original, back = load_dataset(str(normalized)), load_dataset(str(tmp_path / "back"))
    assert back.sequences == {user: original.sequences[user] for user in ("u1", "u2")}
    for item_id in back.items:
        assert (back.items[item_id].title, back.items[item_id].categories, back.items[item_id].brand) == \
            (original.items[item_id].title, original.items[item_id].categories, original.items[item_id].brand)


def test_the_dump_refuses_to_overwrite_and_bad_counts(normalized, tmp_path, capsys):
    assert main(["data", "dump", str(normalized), "--out", str(tmp_path / "raw"), "--users", "1"]) == 0
    assert "wrote " in capsys.readouterr().out
    assert main(["data", "dump", str(normalized), "--out", str(tmp_path / "raw")]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    with pytest.raises(GtiError, match="--users: expected a positive integer"):
        write_dump(normalized, tmp_path / "x", "Beauty", users=0)
    with pytest.raises(GtiError, match="no interactions.tsv"):
        write_dump(tmp_path, tmp_path / "y", "Beauty", users=None)
