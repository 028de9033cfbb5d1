"""`gti data prepare`: Amazon 2014 / 2018 / 2023 and Yelp dumps, gzipped or plain, to the normalized format."""

import gzip
import json

import pytest

from gti.cli import main
from gti.data import load_dataset
from gti.data.prepare import chronological_rows, k_core

# One scenario in every format. File order of reviews (user, item, seconds):
REVIEWS = [
    ("U1", "A", 30), ("U1", "B", 10), ("U2", "A", 5), ("U2", "B", 5), ("U2", "B", 5),  # an exact repeat
    ("U1", "C", 20), ("U2", "C", 7), ("U3", "A", 1), ("U3", "D", 2),  # D: one review -> U3 left with one
    ("U1", "E", 3),  # E: no metadata
    ("U2", "F", 4),  # F: metadata without a title
]
# After dropping E, F (no metadata / title) and the 2-core (D, then U3): U1 B C A (by time), U2 A B C
# (A and B tie at 5: file order).
EXPECTED = {"U1": ["B", "C", "A"], "U2": ["A", "B", "C"]}
TITLES = {"A": "Men's Razor & Blades", "B": "Rose Soap", "C": "Hair Gel", "D": "Nail File", "F": ""}


def write(path, lines, packed):
    text = "".join(line + "\n" for line in lines)
    if packed:  # gzip content under a name without .gz: told apart by the bytes, not the name
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def amazon_2014(tmp_path, packed):
    reviews = [json.dumps({"reviewerID": u, "asin": i, "reviewerName": "x", "overall": 5.0, "unixReviewTime": t})
               for u, i, t in REVIEWS]
    meta = []
    for item, title in TITLES.items():
        record = {"asin": item, "categories": [["Beauty", "Shaving"], ["Other"]], "salesRank": {"Beauty": 3}}
        if title:
            record["title"] = title.replace("&", "&amp;")
        if item == "A":
            record["brand"] = "Acme"
            record["description"] = "A razor."
        meta.append(repr(record))  # Python literal with single quotes, as published
    assert meta[0].startswith("{'asin'") and '"' in meta[0]  # "Men's ..." is double-quoted by repr
    return write(tmp_path / "reviews", reviews, packed), write(tmp_path / "meta", meta, packed)


def amazon_2018(tmp_path, packed):
    reviews = [json.dumps({"overall": 5.0, "verified": True, "reviewTime": "01 1, 2014", "reviewerID": u, "asin": i,
                           "unixReviewTime": t}) for u, i, t in REVIEWS]
    meta = [json.dumps({"asin": item, "title": title.replace("&", "&amp;"), "category": ["Beauty", "Shaving"],
                        "description": ["A razor.", "Sharp."] if item == "A" else [], "brand": "Acme" if item == "A" else ""})
            for item, title in TITLES.items()]
    return write(tmp_path / "reviews.json", reviews, packed), write(tmp_path / "meta.json", meta, packed)


def amazon_2023(tmp_path, packed):
    reviews = [json.dumps({"rating": 5.0, "title": "ok", "text": "fine", "asin": f"{i}-child", "parent_asin": i,
                           "user_id": u, "timestamp": t * 1000 + 250, "verified_purchase": True})
               for u, i, t in REVIEWS]
    meta = [json.dumps({"main_category": "All Beauty", "title": title, "categories": ["Shaving"], "parent_asin": item,
                        "store": "Acme" if item == "A" else None, "description": ["A razor."] if item == "A" else [],
                        "details": {}}) for item, title in TITLES.items()]
    return write(tmp_path / "reviews.jsonl", reviews, packed), write(tmp_path / "meta.jsonl", meta, packed)


def yelp(tmp_path, packed):
    reviews = [json.dumps({"review_id": f"r{n}", "user_id": u, "business_id": i, "stars": 4,
                           "date": f"2019-01-01 00:00:{t:02d}"}) for n, (u, i, t) in enumerate(REVIEWS)]
    meta = [json.dumps({"business_id": item, "name": title, "city": "Phoenix", "state": "AZ",
                        "categories": "Shaving, Beauty" if item == "A" else None}) for item, title in TITLES.items()]
    return write(tmp_path / "review.json", reviews, packed), write(tmp_path / "business.json", meta, packed)


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(("source", "make"), [
    ("amazon", amazon_2014), ("amazon", amazon_2018), ("amazon", amazon_2023), ("yelp", yelp),
], ids=["2014", "2018", "2023", "yelp"])
def test_prepare_each_format(tmp_path, capsys, source, make, packed):
    reviews, meta = make(tmp_path, packed)
    out = tmp_path / "out"
    assert main(["data", "prepare", source, "--reviews", str(reviews), "--meta", str(meta), "--out", str(out),
                 "--kcore", "2"]) == 0
    printed = capsys.readouterr().out
    assert "11 interactions, 3 users, 6 items" in printed  # as read
    assert "dropped 1 exact duplicate rows" in printed
    assert "dropped 2 items without metadata (1) or title (1) and their 2 interactions" in printed
    assert "2-core (2 filtering rounds): 6 interactions, 2 users, 3 items" in printed
    dataset = load_dataset(str(out), "normalized")
    assert dataset.sequences == EXPECTED
    assert list(dataset.items) == ["A", "B", "C"]
    a = dataset.items["A"]
    assert a.title == TITLES["A"]  # HTML entities undone
    if source == "amazon":
        assert a.brand == "Acme" and a.description.startswith("A razor.") and "Shaving" in a.categories
    else:
        assert a.categories == ("Shaving", "Beauty") and a.description == "Phoenix, AZ"
    header, *rows = (out / "interactions.tsv").read_text().splitlines()
    assert header == "user_id\titem_id\ttimestamp" and len(rows) == 6
    if make is amazon_2023:  # milliseconds become seconds, the milliseconds kept
        assert rows[0].split("\t") == ["U1", "B", "10.25"]


def test_k_core_is_iterative_and_order_is_stable():
    rows = [("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 1), ("u2", "b", 1), ("u3", "a", 0), ("u3", "c", 0)]
    kept, rounds = k_core(rows, 2)
    assert kept == rows[:4] and rounds == 2  # c goes, then u3, then a still has 2
    assert k_core(rows, 1) == (rows, 0)
    assert chronological_rows([("u", "x", 2), ("v", "y", 1), ("u", "z", 1), ("u", "w", 2)]) == [
        ("u", "z", 1), ("u", "x", 2), ("u", "w", 2), ("v", "y", 1)]


def run_prepare(tmp_path, reviews, meta, *extra):
    return main(["data", "prepare", "amazon", "--reviews", str(reviews), "--meta", str(meta),
                 "--out", str(tmp_path / "out"), "--kcore", "2", *extra])


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gti: error:")
    return err[0]


def test_malformed_review_line_names_file_and_line(tmp_path, capsys):
    reviews, meta = amazon_2018(tmp_path, False)
    lines = reviews.read_text().splitlines()
    reviews.write_text("\n".join(lines[:2] + ['{"reviewerID": "U1", "asin": '] + lines[2:]) + "\n")
    assert run_prepare(tmp_path, reviews, meta) == 2
    assert f"{reviews}:3: invalid JSON" in one_error_line(capsys)
    reviews.write_text("\n".join(lines[:3] + ['{"reviewerID": "U9", "asin": "A"}']) + "\n")
    assert run_prepare(tmp_path, reviews, meta) == 2
    assert f"{reviews}:4: missing field 'unixReviewTime'" in one_error_line(capsys)
    reviews.write_text("\n".join(lines[:1] + ['{"reviewerID": "U9", "asin": "A", "unixReviewTime": "soon"}']) + "\n")
    assert run_prepare(tmp_path, reviews, meta) == 2
    assert f"{reviews}:2: field 'unixReviewTime': expected a numeric timestamp" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_literal_metadata_is_never_evaluated(tmp_path, capsys):
    reviews, meta = amazon_2014(tmp_path, False)
    marker = tmp_path / "ran"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join(lines[:1] + [f"__import__('pathlib').Path({str(marker)!r}).touch()"] + lines[1:]) + "\n")
    assert run_prepare(tmp_path, reviews, meta) == 2
    assert f"{meta}:2: not a Python literal record" in one_error_line(capsys)
    assert not marker.exists()
    meta.write_text("\n".join(lines[:2] + ["{'title': 'no asin'}"]) + "\n")
    assert run_prepare(tmp_path, reviews, meta) == 2
    assert f"{meta}:3: missing field 'asin'" in one_error_line(capsys)


def test_mismatched_editions_and_unknown_content(tmp_path, capsys):
    reviews, _ = amazon_2023(tmp_path, False)
    _, meta = amazon_2014(tmp_path, True)
    assert run_prepare(tmp_path, reviews, meta) == 2
    assert "does not match the amazon-2023 reviews" in one_error_line(capsys)
    junk = tmp_path / "junk.txt"
    junk.write_text("hello world\n")
    assert run_prepare(tmp_path, junk, meta) == 2
    assert f"{junk}:1: expected a JSON object or a Python dict literal" in one_error_line(capsys)
    assert run_prepare(tmp_path, tmp_path / "missing.json", meta) == 2
    assert "no such file" in one_error_line(capsys)


def test_output_is_not_overwritten_without_the_flag(tmp_path, capsys):
    reviews, meta = amazon_2018(tmp_path, True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert run_prepare(tmp_path, reviews, meta) == 2
    assert "already exists and is not empty" in one_error_line(capsys)
    assert (out / "keep.txt").read_text() == "mine"
    assert run_prepare(tmp_path, reviews, meta, "--overwrite") == 0
    assert sorted(p.name for p in out.iterdir()) == ["interactions.tsv", "items.jsonl"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    assert run_prepare(tmp_path, reviews, meta, "--overwrite", "--kcore", "50") == 2  # nothing left: refused, output untouched
    assert "no interactions left" in one_error_line(capsys)
    assert len(load_dataset(str(out)).sequences) == 2
