"""Loaders for every format, format detection, ordering and error messages."""

import gzip
import importlib.util
import json
from pathlib import Path

import pytest

from gti.data import Dataset, Item, load_dataset
from gti.data import recbole as recbole_loader
from gti.errors import GtiError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
HAS_RECBOLE = importlib.util.find_spec("recbole") is not None


def write(path: Path, text: str) -> Path:
    """Write `text` to `path`, gzipped when the name ends in `.gz`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def tsv(*rows: str) -> str:
    return "".join(row + "\n" for row in rows)


ITEMS = jsonl(
    {"item_id": "Z", "title": "Zebra", "categories": ["Toys", "Animals"], "brand": "Acme"},
    {"item_id": "A", "title": "Apple", "categories": [], "brand": None, "description": "A red fruit."},
    {"item_id": "M", "title": "Mango", "categories": "Fruit"},
    {"item_id": "B", "title": "Banana"},
    {"item_id": "unused", "title": "Nobody bought me"},
)


def normalized_folder(root: Path, interactions: str, items: str = ITEMS, gz: bool = False) -> Path:
    suffix = ".gz" if gz else ""
    write(root / f"interactions.tsv{suffix}", interactions)
    write(root / f"items.jsonl{suffix}", items)
    return root


@pytest.mark.parametrize("gz", [False, True])
def test_normalized_reads_items_and_sequences(tmp_path, gz):
    interactions = tsv(
        "user_id\titem_id\ttimestamp", "u1\tA\t5", "u2\tB\t", "u1\tZ\t3", "u2\tM\t", "u1\tM\t9"
    )
    dataset = load_dataset(str(normalized_folder(tmp_path / "toy", interactions, gz=gz)))
    assert dataset.name == "toy"
    assert list(dataset.items) == ["Z", "A", "M", "B", "unused"]
    assert dataset.items["Z"] == Item("Z", "Zebra", categories=("Toys", "Animals"), brand="Acme")
    assert dataset.items["A"] == Item("A", "Apple", description="A red fruit.")
    assert dataset.items["M"].categories == ("Fruit",)
    assert dataset.sequences == {"u1": ["Z", "A", "M"], "u2": ["B", "M"]}


def test_ties_keep_file_order(tmp_path):
    """Equal timestamps keep file order: a reversed sort or a sort on (time, item id) fails this."""
    interactions = tsv(
        "user_id\titem_id\ttimestamp", "u1\tZ\t10", "u1\tB\t20", "u1\tA\t10", "u1\tM\t10.0"
    )
    dataset = load_dataset(str(normalized_folder(tmp_path, interactions)))
    assert dataset.sequences["u1"] == ["Z", "A", "M", "B"]


def test_user_with_an_unknown_timestamp_keeps_file_order(tmp_path):
    interactions = tsv(
        "user_id\titem_id\ttimestamp", "u1\tZ\t30", "u2\tB\t2", "u1\tA\t", "u2\tA\t1", "u1\tM\t10"
    )
    dataset = load_dataset(str(normalized_folder(tmp_path, interactions)))
    assert dataset.sequences == {"u1": ["Z", "A", "M"], "u2": ["A", "B"]}


LCREC_ITEMS = {
    "0": {"title": "Glue", "description": "Sticks.", "brand": "Bond",
          "categories": "Industrial & Scientific,Tapes, Adhesives & Sealants,Glue"},
    "1": {"title": "Tape", "description": "", "brand": None, "categories": ""},
    "2": {"title": "Unused"},
}


@pytest.mark.parametrize("gz", [False, True])
def test_lcrec(tmp_path, gz):
    write(tmp_path / "Sci.inter.json", json.dumps({"7": [1, 0, 2], "3": [0]}))
    write(tmp_path / ("Sci.item.json.gz" if gz else "Sci.item.json"), json.dumps(LCREC_ITEMS, indent=2))
    dataset = load_dataset(str(tmp_path))
    assert dataset.sequences == {"7": ["1", "0", "2"], "3": ["0"]}
    assert list(dataset.items) == ["0", "1", "2"]
    assert dataset.items["0"] == Item(
        "0", "Glue", "Sticks.", ("Industrial & Scientific", "Tapes, Adhesives & Sealants", "Glue"), "Bond"
    )
    assert dataset.items["1"] == Item("1", "Tape")


RECBOLE_ITEMS = tsv(
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tpopularity:float",
    "1\tToy Story\t1995\tAnimation Children's Comedy\t0.9",
    "2\tGoldenEye\t1995\tAction Adventure\t0.5",
    "3\tUnwatched\t\t\t0",
)


@pytest.mark.parametrize("gz", [False, True])
def test_recbole(tmp_path, gz):
    suffix = ".gz" if gz else ""
    write(tmp_path / f"films.item{suffix}", RECBOLE_ITEMS)
    write(
        tmp_path / f"films.inter{suffix}",
        tsv("user_id:token\titem_id:token\trating:float\ttimestamp:float", "9\t2\t3\t200", "9\t1\t4\t100",
            "9\t3\t5\t300"),
    )
    write(tmp_path / "films.user", tsv("user_id:token\tage:token", "9\t30"))
    dataset = load_dataset(str(tmp_path))
    assert dataset.items["1"] == Item(
        "1", "Toy Story", categories=("Animation", "Children's", "Comedy"), extra={"release_year": "1995"}
    )
    assert dataset.items["3"] == Item("3", "Unwatched", extra={"release_year": ""})
    assert dataset.sequences == {"9": ["1", "2", "3"]}


def test_recbole_without_timestamps_keeps_file_order(tmp_path):
    write(tmp_path / "films.item", RECBOLE_ITEMS)
    write(tmp_path / "films.inter", tsv("user_id:token\titem_id:token", "9\t2", "9\t1", "9\t3"))
    assert load_dataset(str(tmp_path), format="recbole").sequences == {"9": ["2", "1", "3"]}


def test_stats():
    dataset = Dataset(
        name="hand",
        items={
            "a": Item("a", "A", categories=("x",), extra={"year": "1990"}),
            "b": Item("b", "B", description="about b", brand="acme", extra={"year": ""}),
            "c": Item("c", ""),
        },
        sequences={"u1": ["a", "b", "a"], "u2": ["b"]},
    )
    assert dataset.stats() == {
        "users": 2,
        "items": 3,
        "interactions": 4,
        "avg_history": 2.0,
        "text_fields": {"title": 2, "description": 1, "categories": 1, "brand": 1, "year": 1},
    }


# --- detection and format errors ---


def test_detects_each_format(tmp_path):
    normalized_folder(tmp_path / "n", tsv("user_id\titem_id\ttimestamp", "u\tA\t1", "u\tB\t2", "u\tM\t3"))
    write(tmp_path / "l" / "x.inter.json", json.dumps({"0": [2, 0, 1]}))
    write(tmp_path / "l" / "x.item.json", json.dumps(LCREC_ITEMS))
    write(tmp_path / "r" / "x.item", RECBOLE_ITEMS)
    write(tmp_path / "r" / "x.inter", tsv("user_id:token\titem_id:token", "u\t3", "u\t1", "u\t2"))
    assert load_dataset(str(tmp_path / "n")).sequences == {"u": ["A", "B", "M"]}
    assert load_dataset(str(tmp_path / "l")).sequences == {"0": ["2", "0", "1"]}
    assert load_dataset(str(tmp_path / "r")).sequences == {"u": ["3", "1", "2"]}


def test_missing_path_names_it_and_lists_formats(tmp_path):
    with pytest.raises(GtiError) as error:
        load_dataset(str(tmp_path / "nowhere"))
    message = str(error.value)
    assert "nowhere: no such folder" in message
    for expected in ("normalized", "interactions.tsv", "lcrec", ".inter.json", "recbole", ".item", "ml-100k"):
        assert expected in message


def test_folder_of_no_format(tmp_path):
    write(tmp_path / "readme.txt", "hello")
    with pytest.raises(GtiError, match=r"no dataset files found.*normalized \(interactions\.tsv"):
        load_dataset(str(tmp_path))


def test_file_instead_of_folder(tmp_path):
    with pytest.raises(GtiError, match="not a folder"):
        load_dataset(str(write(tmp_path / "data.tsv", "x")))


def test_unknown_format_name(tmp_path):
    with pytest.raises(GtiError, match="unknown dataset format 'csv'.*ml-100k, normalized, lcrec, recbole"):
        load_dataset(str(tmp_path), format="csv")


def test_explicit_format_without_its_files(tmp_path):
    normalized_folder(tmp_path, tsv("user_id\titem_id\ttimestamp"))
    with pytest.raises(GtiError, match=r"lcrec format expects <name>\.inter\.json"):
        load_dataset(str(tmp_path), format="lcrec")


def test_several_formats_in_one_folder(tmp_path):
    normalized_folder(tmp_path, tsv("user_id\titem_id\ttimestamp"))
    write(tmp_path / "x.item", RECBOLE_ITEMS)
    write(tmp_path / "x.inter", tsv("user_id:token\titem_id:token"))
    with pytest.raises(GtiError, match=r"several formats \(normalized, recbole\)"):
        load_dataset(str(tmp_path))
    with pytest.raises(GtiError, match=r"x\.inter: no interactions"):  # it read the recbole files
        load_dataset(str(tmp_path), format="recbole")


def test_plain_and_gzipped_copies_together(tmp_path):
    normalized_folder(tmp_path, tsv("user_id\titem_id\ttimestamp"))
    write(tmp_path / "items.jsonl.gz", ITEMS)
    with pytest.raises(GtiError, match=r"both items\.jsonl and items\.jsonl\.gz"):
        load_dataset(str(tmp_path))


def test_ml_100k_format_needs_the_name(tmp_path):
    with pytest.raises(GtiError, match="source must be 'ml-100k'"):
        load_dataset(str(tmp_path), format="ml-100k")


# --- malformed input: every message names the file and the line (or the key) ---

HEADER = "user_id\titem_id\ttimestamp"
MALFORMED_NORMALIZED = [
    (tsv(HEADER, "u\tA\t1", "u\tA"), ITEMS, "interactions.tsv:3: expected 3 tab-separated fields"),
    (tsv(HEADER, "u\tA\tyesterday"), ITEMS, "interactions.tsv:2: expected a numeric timestamp, got 'yesterday'"),
    (tsv(HEADER, "u\tA\t1", "u\tQ\t2"), ITEMS, "interactions.tsv:3: unknown item id 'Q'"),
    (tsv(HEADER, "\tA\t1"), ITEMS, "interactions.tsv:2: empty user_id"),
    (tsv("user\titem\ttime", "u\tA\t1"), ITEMS, "interactions.tsv:1: expected the header"),
    ("", ITEMS, "interactions.tsv:1: expected the header"),
    (tsv(HEADER), '{"item_id": "A", "title": "x"}\n{"item_id": "B", "title": \n', "items.jsonl:2: invalid JSON"),
    (tsv(HEADER), jsonl({"item_id": "A", "title": "x"}, {"item_id": "B"}), "items.jsonl:2: missing field 'title'"),
    (tsv(HEADER), jsonl({"item_id": 5, "title": "x"}), "items.jsonl:1: field 'item_id': expected a string, got int"),
    (tsv(HEADER), jsonl({"item_id": "A", "title": "x", "categories": [1]}), "items.jsonl:1: field 'categories'"),
    (tsv(HEADER), jsonl({"item_id": "A", "title": "x", "brand": 3}), "items.jsonl:1: field 'brand'"),
    (tsv(HEADER), jsonl({"item_id": "A", "title": "x"}, {"item_id": "A", "title": "y"}), "items.jsonl:2: duplicate"),
    (tsv(HEADER), "[1, 2]\n", "items.jsonl:1: expected a JSON object"),
]


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(("interactions", "items", "expected"), MALFORMED_NORMALIZED)
def test_malformed_normalized(tmp_path, interactions, items, expected, gz):
    normalized_folder(tmp_path, interactions, items, gz=gz)
    with pytest.raises(GtiError) as error:
        load_dataset(str(tmp_path))
    message = str(error.value)
    if gz:
        expected = expected.replace(".tsv:", ".tsv.gz:").replace(".jsonl:", ".jsonl.gz:")
    assert f"{tmp_path}/{expected}" in message
    assert "\n" not in message


INTER_HEADER = "user_id:token\titem_id:token\ttimestamp:float"
MALFORMED_RECBOLE = [
    (tsv("user_id:token\titem_id\ttimestamp:float"), "x.inter:1: header field 'item_id': expected name:type"),
    (tsv("user_id:token\titem_id:int"), "x.inter:1: header field 'item_id:int'"),
    (tsv("user:token\titem_id:token"), "x.inter:1: expected a user_id field in the header"),
    (tsv(INTER_HEADER, "u\t1\t5", "u\t1"), "x.inter:3: expected 3 tab-separated fields"),
    (tsv(INTER_HEADER, "u\t1\t5", "u\t8\t6"), "x.inter:3: unknown item id '8'"),
    (tsv(INTER_HEADER, "u\t1\tnoon"), "x.inter:2: expected a numeric timestamp"),
]


@pytest.mark.parametrize(("interactions", "expected"), MALFORMED_RECBOLE)
def test_malformed_recbole_interactions(tmp_path, interactions, expected):
    write(tmp_path / "x.item", RECBOLE_ITEMS)
    write(tmp_path / "x.inter", interactions)
    with pytest.raises(GtiError) as error:
        load_dataset(str(tmp_path))
    assert f"{tmp_path}/{expected}" in str(error.value)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (tsv("item_id:token\tname:token_seq", "1\tx"), "x.item:1: expected a title or movie_title field"),
        (tsv("item_id:token\ttitle:token_seq", "1\tx", "1\ty"), "x.item:3: duplicate item id '1'"),
        (tsv("item_id:token\ttitle:token_seq", "1\tx\textra"), "x.item:2: expected 2 tab-separated fields"),
        ("", "x.item:1: expected a header of name:type fields"),
    ],
)
def test_malformed_recbole_items(tmp_path, items, expected):
    write(tmp_path / "x.item", items)
    write(tmp_path / "x.inter", tsv(INTER_HEADER))
    with pytest.raises(GtiError) as error:
        load_dataset(str(tmp_path), format="recbole")
    assert f"{tmp_path}/{expected}" in str(error.value)


@pytest.mark.parametrize(
    ("sequences", "items", "expected"),
    [
        ('{"0": [0, 1],\n "1": [2,]}', json.dumps(LCREC_ITEMS), "x.inter.json:2: invalid JSON"),
        (json.dumps({"0": [0, 9]}), json.dumps(LCREC_ITEMS), "x.inter.json: user '0', position 1: unknown item id '9'"),
        (json.dumps({"0": 3}), json.dumps(LCREC_ITEMS), "x.inter.json: user '0': expected a list of item indices"),
        (json.dumps([[0]]), json.dumps(LCREC_ITEMS), "x.inter.json: expected a JSON object"),
        (json.dumps({"0": [0]}), json.dumps({"0": {"brand": "x"}}), "x.item.json: item '0': missing field 'title'"),
        (json.dumps({"0": [0]}), json.dumps({"0": "Glue"}), "x.item.json: item '0': expected a JSON object"),
    ],
)
def test_malformed_lcrec(tmp_path, sequences, items, expected):
    write(tmp_path / "x.inter.json", sequences)
    write(tmp_path / "x.item.json", items)
    with pytest.raises(GtiError) as error:
        load_dataset(str(tmp_path))
    assert f"{tmp_path}/{expected}" in str(error.value)


# --- datasets that load but cannot be used: refused where they are read ---

NO_TEXT_ITEMS = jsonl({"item_id": "A", "title": ""}, {"item_id": "B", "title": " ", "categories": [], "brand": None})


@pytest.mark.parametrize(
    ("interactions", "items", "expected"),
    [
        (tsv(HEADER), ITEMS, "interactions.tsv: no interactions"),
        (tsv(HEADER, "", ""), ITEMS, "interactions.tsv: no interactions"),
        (tsv(HEADER, "u\tA\t1", "u\tB\t2", "v\tA\t1", "w\tM\t"),
         ITEMS, "interactions.tsv: every user has fewer than 3 items (the most, among 3 users, is 2)"),
        (tsv(HEADER, "u\tA\t1", "u\tB\t2", "u\tA\t3"), NO_TEXT_ITEMS, "items.jsonl: no item has any text"),
        (tsv(HEADER), "", "items.jsonl: holds no items"),
    ],
)
def test_unusable_normalized_datasets_are_refused(tmp_path, interactions, items, expected):
    normalized_folder(tmp_path, interactions, items)
    with pytest.raises(GtiError) as error:
        load_dataset(str(tmp_path))
    assert f"{tmp_path}/{expected}" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("interactions", "items", "expected"),
    [
        (tsv(INTER_HEADER), RECBOLE_ITEMS, "x.inter: no interactions"),
        (tsv(INTER_HEADER, "u\t1\t1", "u\t2\t2"), RECBOLE_ITEMS, "x.inter: every user has fewer than 3 items"),
        (tsv(INTER_HEADER, "u\t1\t1"), tsv("item_id:token\ttitle:token_seq\tyear:token", "1\t\t"),
         "x.item: no item has any text"),
    ],
)
def test_unusable_recbole_datasets_are_refused(tmp_path, interactions, items, expected):
    write(tmp_path / "x.item", items)
    write(tmp_path / "x.inter", interactions)
    with pytest.raises(GtiError) as error:
        load_dataset(str(tmp_path))
    assert f"{tmp_path}/{expected}" in str(error.value)


@pytest.mark.parametrize(
    ("sequences", "items", "expected"),
    [
        ({}, LCREC_ITEMS, "x.inter.json: no interactions"),
        ({"0": [], "1": []}, LCREC_ITEMS, "x.inter.json: no interactions"),
        ({"0": [0, 1], "1": [2]}, LCREC_ITEMS, "x.inter.json: every user has fewer than 3 items"),
        ({"0": [0, 0, 0]}, {"0": {"title": "", "categories": ",", "brand": None}}, "x.item.json: no item has any text"),
    ],
)
def test_unusable_lcrec_datasets_are_refused(tmp_path, sequences, items, expected):
    write(tmp_path / "x.inter.json", json.dumps(sequences))
    write(tmp_path / "x.item.json", json.dumps(items))
    with pytest.raises(GtiError) as error:
        load_dataset(str(tmp_path))
    assert f"{tmp_path}/{expected}" in str(error.value)


def test_an_item_with_only_an_extra_field_counts_as_text(tmp_path):
    write(tmp_path / "x.item", tsv("item_id:token\ttitle:token_seq\tyear:token", "1\t\t1995"))
    write(tmp_path / "x.inter", tsv(INTER_HEADER, "u\t1\t1", "u\t1\t2", "u\t1\t3"))
    assert load_dataset(str(tmp_path)).sequences == {"u": ["1", "1", "1"]}


@pytest.mark.parametrize("gz", [False, True])
def test_a_tab_separated_file_cut_inside_its_last_row_is_refused(tmp_path, gz):
    """Cut after '15', the row 'u\tB\t15' would load with timestamp 1 and reorder the user silently."""
    full = tsv(HEADER, "u\tA\t10", "u\tM\t12", "u\tB\t15")
    normalized_folder(tmp_path, full[:-2], gz=gz)
    with pytest.raises(GtiError, match=r"interactions\.tsv(\.gz)?:4: the last line has no line ending"):
        load_dataset(str(tmp_path))
    normalized_folder(tmp_path, full, gz=gz)
    assert load_dataset(str(tmp_path)).sequences == {"u": ["A", "M", "B"]}


def test_corrupt_gzip_names_the_file(tmp_path):
    write(tmp_path / "items.jsonl", ITEMS)
    (tmp_path / "interactions.tsv.gz").write_text("user_id\titem_id\ttimestamp\n")
    with pytest.raises(GtiError, match=r"interactions\.tsv\.gz: cannot read"):
        load_dataset(str(tmp_path))


# --- MovieLens-100k from the recbole wheel, and the shared benchmark sets ---


@pytest.mark.skipif(not HAS_RECBOLE, reason="recbole is not installed")
def test_ml_100k():
    dataset = load_dataset("ml-100k")
    stats = dataset.stats()
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1682, 100000)
    assert dataset.name == "ml-100k"
    assert dataset.items["1"] == Item(
        "1", "Toy Story", categories=("Animation", "Children's", "Comedy"), extra={"release_year": "1995"}
    )
    rows: dict[str, list[tuple[float, str]]] = {}
    inter = recbole_loader.ml100k_folder() / "ml-100k.inter"
    for line in inter.read_text().splitlines()[1:]:
        user_id, item_id, _, timestamp = line.split("\t")
        rows.setdefault(user_id, []).append((float(timestamp), item_id))
    by_time = {user_id: sorted(pairs, key=lambda pair: pair[0]) for user_id, pairs in rows.items()}
    assert dataset.sequences == {user_id: [item for _, item in pairs] for user_id, pairs in by_time.items()}
    assert any(by_time[user_id] != pairs for user_id, pairs in rows.items())  # the file is not in time order


def test_ml_100k_without_recbole(monkeypatch):
    monkeypatch.setattr(recbole_loader.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(GtiError, match=r"pip install --no-deps recbole==1\.2\.1"):
        load_dataset("ml-100k")


@pytest.mark.skipif(not (SHARED_DATA / "beauty").is_dir(), reason="shared benchmark data not present")
def test_shared_beauty():
    stats = load_dataset(str(SHARED_DATA / "beauty")).stats()
    assert (stats["users"], stats["items"], stats["interactions"]) == (22363, 12101, 198502)
    assert stats["text_fields"]["brand"] == 7475


@pytest.mark.skipif(not (SHARED_DATA / "scientific-lcrec").is_dir(), reason="shared benchmark data not present")
def test_shared_scientific_lcrec():
    stats = load_dataset(str(SHARED_DATA / "scientific-lcrec")).stats()
    assert (stats["users"], stats["items"], stats["interactions"]) == (8317, 4344, 58492)
