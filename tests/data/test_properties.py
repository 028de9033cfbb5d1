"""Property tests: every loader, fed mutated files, returns a Dataset or raises a GtiError naming the file.

Each example starts from a small valid dataset, applies one to three mutations (bytes,
lines, tab-separated fields, JSON nodes, gzip framing, missing files) and loads it.
"""

import gzip
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gti.data import Dataset, Item, lcrec, load_dataset, normalized, recbole, render_item_text
from gti.errors import GtiError
from json_mutation import mutate_node

# derandomize + no database: the same examples on every run, so CI is stable.
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


NORMALIZED = {
    "interactions.tsv": "user_id\titem_id\ttimestamp\nu1\tA\t3\nu1\tB\t1\nu2\tC\t\nu2\tA\t2\nu3\tB\t5\nu1\tC\t4\n",
    "items.jsonl": jsonl(
        {"item_id": "A", "title": "Apple", "categories": ["Food", "Fruit"], "brand": "Orchard"},
        {"item_id": "B", "title": "Banana", "description": "Yellow.", "categories": "Fruit"},
        {"item_id": "C", "title": "Cherry", "brand": None},
    ),
}
LCREC = {
    "toy.inter.json": json.dumps({"0": [0, 1], "1": [2, 0, 1], "2": ["1"]}),
    "toy.item.json": json.dumps(
        {
            "0": {"title": "Glue", "description": "Sticks.", "brand": "Bond", "categories": "Tools,Glue"},
            "1": {"title": "Tape", "brand": None, "categories": ""},
            "2": {"title": "Rope"},
        },
        indent=1,
    ),
}
RECBOLE = {  # the layout of ml-100k in the recbole wheel
    "ml-100k.inter": (
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t1\t4\t881250000\n22\t1\t1\t878887116\n"
        "196\t302\t5\t881251000\n"
    ),
    "ml-100k.item": (
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n242\tKolya\t1996\tComedy\n302\tL.A. Confidential\t1997\t\n"
    ),
}
FORMATS = {"normalized": (NORMALIZED, normalized), "lcrec": (LCREC, lcrec), "recbole": (RECBOLE, recbole)}
INTERACTIONS = {"normalized": 6, "lcrec": 6, "recbole": 5}

FIELD_VALUES = st.sampled_from(
    ["", " ", "zzz", "-1", "0", "1e308", "1e309", "-1e400", "nan", "inf", "9" * 400, "1_000", "0x1f",
     "\u0663", "\x00", "a b", "\u2028", "\x85", "\r", '"', "\\", "A", "1", "u1"]
) | st.text(max_size=8)
ITEM_KEYS = ["title", "item_id", "brand", "extra", "0"]
JSON_VALUES = st.sampled_from(
    [None, True, False, 0, -1, 1.5, float("nan"), float("inf"), 10**30, "", "zzz", "0", "9", "a\nb",
     "\t", [], {}, [None], [[0]], {"title": 3}, {"0": [0]}]
) | st.text(max_size=8) | st.integers()
RAW_JSON = st.sampled_from(
    ["", "null", "[]", "{}", '"x"', "3", "NaN", "[" * 50_000, "1" * 5_000, '{"0": ' + "1" * 5_000 + "}",
     '{"a": 1, "a": 2}', "\ufeff{}", '{"0": [0, 1]', "{'0': [0]}"]
)
NASTY_BYTES = st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf", b"\r", b"\n", b"\t"])


def mutate_text(data: st.DataObject, text: str, is_json: bool) -> str:
    """One line-, field- or JSON-level change to `text` (surrogate-escaped, so any bytes survive)."""
    lines = text.split("\n")
    kind = data.draw(st.sampled_from(["drop", "duplicate", "swap", "insert", "field", "json", "raw_json"]))
    row = data.draw(st.integers(0, len(lines) - 1))
    if kind == "drop":
        del lines[row]
    elif kind == "duplicate":
        lines.insert(row, lines[row])
    elif kind == "swap":
        other = data.draw(st.integers(0, len(lines) - 1))
        lines[row], lines[other] = lines[other], lines[row]
    elif kind == "insert":
        lines.insert(row, data.draw(st.text(max_size=20) | FIELD_VALUES))
    elif kind == "field":
        fields = lines[row].split("\t")
        column = data.draw(st.integers(0, len(fields) - 1))
        action = data.draw(st.sampled_from(["drop", "duplicate", "insert", "replace"]))
        if action == "drop":
            del fields[column]
        elif action == "duplicate":
            fields.insert(column, fields[column])
        elif action == "insert":
            fields.insert(column, data.draw(FIELD_VALUES))
        else:
            fields[column] = data.draw(FIELD_VALUES)
        lines[row] = "\t".join(fields)
    elif kind == "json" and is_json:
        return mutate_json(data, text)
    elif kind == "raw_json" and is_json:
        return data.draw(RAW_JSON)
    return "\n".join(lines)


def mutate_json(data: st.DataObject, text: str) -> str:
    """Replace, drop or add one node of a JSON document, or of one line of a JSON-lines file."""
    try:
        return json.dumps(mutate_node(data, json.loads(text), JSON_VALUES, ITEM_KEYS))
    except (ValueError, RecursionError):
        lines = text.split("\n")
        row = data.draw(st.integers(0, len(lines) - 1))
        try:
            lines[row] = json.dumps(mutate_node(data, json.loads(lines[row]), JSON_VALUES, ITEM_KEYS))
        except (ValueError, RecursionError):
            pass
        return "\n".join(lines)


def mutate_bytes(data: st.DataObject, raw: bytes) -> tuple[bytes, str]:
    """A byte-level change: truncate, insert or overwrite bytes, or replace the whole file; and its kind."""
    kind = data.draw(st.sampled_from(["truncate", "insert", "overwrite", "empty", "random"]))
    at = data.draw(st.integers(0, len(raw)))
    if kind == "truncate":
        return raw[:at], kind
    if kind == "insert":
        return raw[:at] + data.draw(NASTY_BYTES | st.binary(max_size=6)) + raw[at:], kind
    if kind == "overwrite":
        patch = data.draw(NASTY_BYTES | st.binary(min_size=1, max_size=6))
        return raw[:at] + patch + raw[at + len(patch):], kind
    if kind == "empty":
        return b"", kind
    return data.draw(st.binary(max_size=64)), kind


def mutate_gzip(data: st.DataObject, raw: bytes) -> bytes:
    """The gzipped file: valid, or not gzip at all, truncated, corrupted or with trailing garbage."""
    packed = gzip.compress(raw, mtime=0)
    kind = data.draw(st.sampled_from(["valid", "valid", "plain", "truncate", "flip", "append"]))
    at = data.draw(st.integers(0, len(packed) - 1))
    if kind == "plain":
        return raw
    if kind == "truncate":
        return packed[:at]
    if kind == "flip":
        return packed[:at] + bytes([packed[at] ^ data.draw(st.integers(1, 255))]) + packed[at + 1:]
    if kind == "append":
        return packed + data.draw(st.binary(min_size=1, max_size=8))
    return packed


def build(data: st.DataObject, folder: Path, files: dict[str, str], gz: bool) -> tuple[bool, dict[str, bytes]]:
    """Write a mutated copy of `files` into `folder`.

    Returns:
        Whether a file was left out, and the contents (before any gzip) of every file
        whose last change was a truncation, by name.
    """
    contents = {name: text.encode() for name, text in files.items()}
    removed, truncated = False, set()
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(sorted(contents)))
        kind = data.draw(st.sampled_from(["text"] * 6 + ["bytes"] * 3 + ["missing"]))
        truncated.discard(name)
        if kind == "missing":
            del contents[name]
            removed = True
            if not contents:
                break
        elif kind == "bytes":
            contents[name], change = mutate_bytes(data, contents[name])
            if change == "truncate":
                truncated.add(name)
        else:
            text = contents[name].decode("utf-8", "surrogateescape")
            text = mutate_text(data, text, is_json=".json" in name)
            contents[name] = text.encode("utf-8", "surrogateescape")
    for name, raw in contents.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(mutate_gzip(data, raw))
        else:
            (folder / name).write_bytes(raw)
    return removed, {name: contents[name] for name in truncated if name in contents}


def check_dataset(dataset: Dataset) -> None:
    """What every loaded dataset promises: string ids, known items, text that renders."""
    assert isinstance(dataset, Dataset)
    for item_id, item in dataset.items.items():
        assert isinstance(item, Item) and item.item_id == item_id
        assert all(isinstance(value, str) for value in (item.title, item.description, item.brand))
        assert all(isinstance(category, str) for category in item.categories)
        assert all(isinstance(key, str) and isinstance(value, str) for key, value in item.extra.items())
        render_item_text(item, ("title", "description", "categories", "brand", *item.extra))
    for user_id, sequence in dataset.sequences.items():
        assert isinstance(user_id, str)
        assert all(item_id in dataset.items for item_id in sequence)
    dataset.stats()


def complete_rows(name: str, raw: bytes) -> bytes:
    """The part of a cut file that holds only complete rows: what a loader may read from it.

    A tab-separated row is complete with its line ending; a JSON-lines row is complete once
    it parses (JSON is self-delimiting); a whole JSON document is all or nothing.
    """
    if name.endswith(".json"):
        return raw
    kept, _, rest = raw.rpartition(b"\n")
    kept = kept + b"\n" if raw.count(b"\n") else b""
    if name.endswith(".jsonl") and rest.strip():
        try:
            json.loads(rest)
        except ValueError:
            return kept
        return kept + rest
    return kept


def check_load(
    folder: Path, files: dict[str, str], expected_files: str, removed: bool, truncated: dict[str, bytes]
) -> None:
    """The property: a consistent Dataset, or one line of GtiError naming a file of the dataset.

    A dataset with a cut file must hold exactly what the same files, cut back to their
    complete rows, hold: a loader that read the partial last row (or dropped a complete
    one) fails here.
    """
    try:
        dataset = load_dataset(str(folder))
    except GtiError as error:
        message = str(error)
        assert "\n" not in message and len(message) < 1000, message
        assert str(folder) in message, message
        names = [*files, expected_files] if removed else list(files)
        assert any(name in message for name in names), message
        return
    check_dataset(dataset)
    if truncated:
        with tempfile.TemporaryDirectory() as temporary:
            reference = Path(temporary)
            for path in folder.iterdir():
                name = path.name.removesuffix(".gz")
                raw = complete_rows(name, truncated[name]) if name in truncated else _plain(path)
                (reference / name).write_bytes(raw)
            try:
                expected = load_dataset(str(reference))
            except GtiError as error:
                raise AssertionError(f"a cut file loaded, but its complete rows do not: {error}") from None
        assert dataset.items == expected.items
        assert dataset.sequences == expected.sequences


def _plain(path: Path) -> bytes:
    """A file's bytes, ungzipped when its name ends in .gz (it loaded, so it is valid gzip)."""
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("format", FORMATS)
@PROPERTY
@given(data=st.data())
def test_mutated_dataset_loads_or_names_the_file(format, gz, data):
    files, loader = FORMATS[format]
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        removed, truncated = build(data, folder, files, gz)
        check_load(folder, files, loader.EXPECTED_FILES, removed, truncated)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("format", FORMATS)
def test_every_cut_of_every_file_loads_its_complete_rows_or_is_refused(format, gz, tmp_path):
    """Each file cut at every byte: a GtiError, or exactly the rows the cut left complete."""
    files, loader = FORMATS[format]
    for name, text in files.items():
        raw = text.encode()
        for at in range(len(raw)):
            folder = tmp_path / f"{name}-{at}"
            folder.mkdir()
            for other, other_text in files.items():
                content = raw[:at] if other == name else other_text.encode()
                if gz:
                    (folder / f"{other}.gz").write_bytes(gzip.compress(content, mtime=0))
                else:
                    (folder / other).write_bytes(content)
            check_load(folder, files, loader.EXPECTED_FILES, False, {name: raw[:at]})


@pytest.mark.parametrize("format", FORMATS)
def test_unmutated_datasets_load(format, tmp_path):
    files, _ = FORMATS[format]
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    dataset = load_dataset(str(tmp_path))
    check_dataset(dataset)
    assert dataset.stats()["interactions"] == INTERACTIONS[format]


# --- inputs these properties found, each once crashing a loader from deep inside ---


def corrupt_deflate(text: str) -> bytes:
    """A gzip file whose header is sound but whose compressed stream is not (zlib.error, not OSError)."""
    packed = bytearray(gzip.compress(text.encode(), mtime=0))
    packed[10] ^= 0xFF
    return bytes(packed)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("items.jsonl", b'{"item_id": "A", "title": ' + b"1" * 5_000 + b"}\n", "items.jsonl:1: invalid JSON: a number"),
        ("items.jsonl", b"[" * 50_000 + b"\n", "items.jsonl:1: invalid JSON: nested too deeply"),
        ("items.jsonl", b'{"item_id": "A", "title": "x", "title": "y"}\n', "items.jsonl:1: invalid JSON: key 'title'"),
        ("items.jsonl", b'{"item_id": "", "title": "x"}\n', "items.jsonl:1: empty item_id"),
        ("interactions.tsv", b"user_id\titem_id\ttimestamp\nu1\tA\t1\nu1\tB\xff\t2\n", "interactions.tsv:3: not UTF-8"),
        ("interactions.tsv.gz", corrupt_deflate(NORMALIZED["interactions.tsv"]), "interactions.tsv.gz: cannot read"),
    ],
)
def test_found_normalized_inputs(tmp_path, name, content, expected):
    for other, text in NORMALIZED.items():
        if not name.startswith(other):
            (tmp_path / other).write_text(text, encoding="utf-8")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(GtiError) as error:
        load_dataset(str(tmp_path))
    assert f"{tmp_path}/{expected}" in str(error.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[" * 50_000, "toy.inter.json: invalid JSON: nested too deeply"),
        ('{"0": [' + "1" * 5_000 + "]}", "toy.inter.json: invalid JSON: a number too long"),
        ('{"0": [0], "0": [1]}', "toy.inter.json: invalid JSON: key '0' appears twice"),
        ('{"0": ["a\\nb"]}', "toy.inter.json: user '0', position 0: unknown item id 'a\\nb'"),
    ],
)
def test_found_lcrec_inputs(tmp_path, content, expected):
    (tmp_path / "toy.item.json").write_text(LCREC["toy.item.json"], encoding="utf-8")
    (tmp_path / "toy.inter.json").write_text(content, encoding="utf-8")
    with pytest.raises(GtiError) as error:
        load_dataset(str(tmp_path))
    assert f"{tmp_path}/{expected}" in str(error.value) and "\n" not in str(error.value)


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path):
    for name, text in RECBOLE.items():
        (tmp_path / name).write_text("\ufeff" + text, encoding="utf-8")
    assert load_dataset(str(tmp_path)).stats()["interactions"] == INTERACTIONS["recbole"]
