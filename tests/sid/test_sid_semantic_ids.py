import json

import numpy as np
import pytest

from gti.errors import GtiError
from gti.sid import SemanticIds, build_sids, semantic_ids


@pytest.fixture
def sids() -> SemanticIds:
    codes = np.array([[0, 1, 0], [0, 1, 1], [2, 0, 0]])
    return SemanticIds(["x", "y", "z"], codes, [3, 2, 2])


def test_lookups(sids):
    assert sids.row("y") == 1
    assert sids.sid("y") == (0, 1, 1)
    assert sids.tokens("z") == "<a_2><b_0><c_0>"
    assert sids.new_tokens() == ["<a_0>", "<a_1>", "<a_2>", "<b_0>", "<b_1>", "<c_0>", "<c_1>"]
    assert sids.trie().levels == 3
    with pytest.raises(GtiError, match="'w' has no semantic id"):
        sids.row("w")


def test_save_load_round_trip(sids, tmp_path):
    sids.save(tmp_path / "run")
    loaded = SemanticIds.load(tmp_path / "run")
    assert loaded.item_ids == sids.item_ids
    assert np.array_equal(loaded.codes, sids.codes) and loaded.codes.dtype == np.int64
    assert loaded.codebook_sizes == sids.codebook_sizes
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["sids.json"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"sids": {}}', "exactly the keys"),
        ('{"codebook_sizes": [2, 0], "sids": {"a": [0, 0]}}', "positive integers"),
        ('{"codebook_sizes": [2, 2], "sids": {"a": [0]}}', "list of 2 integer codes"),
        ('{"codebook_sizes": [2, 2], "sids": {"a": [0, 2]}}', "outside the codebook sizes"),
        ('{"codebook_sizes": [2, 2], "sids": {"a": [0, 1], "b": [0, 1]}}', "share one semantic id"),
    ],
)
def test_load_malformed(tmp_path, content, problem):
    (tmp_path / "sids.json").write_text(content)
    with pytest.raises(GtiError, match=problem) as error:
        SemanticIds.load(tmp_path)
    assert "sids.json" in str(error.value)


def test_load_missing(tmp_path):
    with pytest.raises(GtiError, match="does not exist"):
        SemanticIds.load(tmp_path)


def fake_encoder(texts, **_):
    """One-hot-ish vectors: equal texts give equal vectors."""
    return np.array([[len(text), text.count("a"), text.count("e")] for text in texts], dtype=np.float32)


def test_build_sids(monkeypatch, tmp_path):
    monkeypatch.setattr(semantic_ids, "encode_texts", fake_encoder)
    texts = {f"i{n}": f"item {'a' * (n % 4)} {'e' * (n % 3)}" for n in range(12)} | {"dup": "item a e"}
    sids, report, codebooks = build_sids(texts, levels=2, codes=3)
    assert sids.item_ids == list(texts)
    assert sids.codes.shape == (13, 3)
    assert len(np.unique(sids.codes, axis=0)) == 13
    assert sids.codebook_sizes[:2] == [3, 3]
    assert sids.codebook_sizes[2] == report["max_group_size"] == sids.codes[:, 2].max() + 1
    assert report["duplicate_texts"] == 1  # "dup" repeats item i1's text
    assert report["items"] == 13 and len(codebooks) == 2
    assert set(report["seconds"]) == {"encode", "quantize", "total"}
    json.dumps(report)  # JSON-ready


def test_build_sids_rejects_empty_text():
    with pytest.raises(GtiError, match="2 items have empty text \\(first: 'b'\\)"):
        build_sids({"a": "x", "b": " ", "c": ""})


@pytest.mark.parametrize("quantizer", ["rq-kmeans", "rq-vae"])
def test_a_catalog_smaller_than_the_codes_is_refused_before_encoding(monkeypatch, quantizer):
    def no_encoding(texts, **_):
        raise AssertionError("encoded before checking the catalog size")

    monkeypatch.setattr(semantic_ids, "encode_texts", no_encoding)
    texts = {f"i{n}": f"item {n}" for n in range(5)}
    with pytest.raises(GtiError) as error:
        build_sids(texts, codes=8, quantizer=quantizer, catalog="dataset toy")
    assert str(error.value) == (
        "dataset toy has 5 items, fewer than sids.codes = 8 codes per level; set sids.codes (--codes) to at most 5"
    )
