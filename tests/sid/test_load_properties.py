"""Property tests: a mutated sids.json loads or raises a GtiError naming it; decode parses or says why."""

import json
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gti.errors import GtiError
from gti.sid import SemanticIds, codec
from json_mutation import mutate_node

# derandomize + no database: the same examples on every run, so CI is stable.
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

VALID = {"codebook_sizes": [3, 2, 2], "sids": {"x": [0, 1, 0], "y": [0, 1, 1], "z": [2, 0, 0]}}
JSON_VALUES = st.sampled_from(
    [None, True, False, 0, -1, 1, 2, 3, 1.0, 1.5, float("nan"), float("inf"), 2**63, 2**64, 10**30, "", "0",
     [], {}, [0], [0, 0], [0, 1, 1], [[0]], list(range(27)), [1] * 27, {"0": [0]}]
) | st.integers() | st.text(max_size=6)
RAW_TEXT = st.sampled_from(
    ["", "null", "[]", "{}", '"x"', "NaN", "[" * 50_000, "1" * 5_000, '{"codebook_sizes": [' + "9" * 5_000 + "]}",
     "\ufeff{}", "{'sids': {}}", '{"codebook_sizes": [2], "sids": {"a": [0]}, "sids": {}}']
)


def mutated_file(data: st.DataObject) -> bytes | None:
    """The bytes of a mutated sids.json, or None for no file at all."""
    kind = data.draw(st.sampled_from(["node"] * 6 + ["raw", "bytes", "truncate", "missing"]))
    document = json.loads(json.dumps(VALID))
    for _ in range(data.draw(st.integers(1, 3)) if kind == "node" else 0):
        document = mutate_node(data, document, JSON_VALUES, ["w", "x", "sids", "extra"])
    raw = json.dumps(document).encode()
    if kind == "raw":
        return data.draw(RAW_TEXT).encode()
    if kind == "bytes":
        at = data.draw(st.integers(0, len(raw)))
        patch = data.draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"]) | st.binary())
        return raw[:at] + patch + raw[at:]
    if kind == "truncate":
        return raw[: data.draw(st.integers(0, len(raw)))]
    if kind == "missing":
        return None
    return raw


@PROPERTY
@given(data=st.data())
def test_mutated_sids_json_loads_or_names_the_file(data):
    content = mutated_file(data)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        if content is not None:
            (folder / "sids.json").write_bytes(content)
        try:
            sids = SemanticIds.load(folder)
        except GtiError as error:
            message = str(error)
            assert f"{folder}/sids.json" in message and "\n" not in message and len(message) < 500, message
            return
    levels = len(sids.codebook_sizes)
    assert sids.codes.shape == (len(sids.item_ids), levels) and sids.codes.dtype == np.int64
    assert ((sids.codes >= 0) & (sids.codes < np.array(sids.codebook_sizes))).all()
    for item_id in sids.item_ids:
        assert codec.decode(sids.tokens(item_id)) == sids.sid(item_id)


TOKEN_PIECES = st.sampled_from(
    ["<a_0>", "<a_12>", "<b_3>", "<c_40>", "<d_0>", "<a_01>", "<b_>", "<B_1>", "<a_\u0663>", "<a_-1>", "<a_1",
     "a_1>", " ", "<", ">", "_", "x", "\n", f"<b_{2**63}>", f"<b_{2**63 - 1}>", "<b_" + "9" * 5_000 + ">"]
)
SID_TEXT = (
    st.text(max_size=30)
    | st.lists(TOKEN_PIECES, max_size=8).map("".join)
    | st.lists(st.integers(0, 10**6), min_size=1, max_size=26).map(codec.encode).flatmap(
        lambda text: st.sampled_from([text, text[:-1], text + ">", " " + text, text.replace("_", "_0", 1)])
    )
)


@PROPERTY
@given(text=SID_TEXT)
def test_decode_parses_exactly_what_encode_writes(text):
    try:
        sid = codec.decode(text)
    except GtiError as error:
        message = str(error)
        assert message.startswith("invalid semantic id ") and "\n" not in message and len(message) < 300, message
        return
    assert 1 <= len(sid) <= len(codec.LEVEL_LETTERS)
    assert all(isinstance(code, int) and 0 <= code < 2**63 for code in sid)
    assert codec.encode(sid) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<a_01>", "level 0 code 01 should be a number without leading zeros"),
        ("<a_\u0663>", "expected tokens like"),
        (codec.encode([0] * 26) + "<a_0>", "more than 26 levels"),
        (f"<a_{2**63}>", "below 2\\*\\*63"),
        ("<a_" + "9" * 5_000 + ">", "below 2\\*\\*63"),
        ("<a_1><b_2>tail", "unexpected text at character 10"),
    ],
)
def test_decode_rejects(text, problem):
    with pytest.raises(GtiError, match=problem):
        codec.decode(text)


def test_decode_reads_every_level_letter():
    sid = tuple(range(len(string.ascii_lowercase)))
    assert codec.decode(codec.encode(sid)) == sid


def test_a_level_without_a_letter_is_refused():
    with pytest.raises(GtiError, match="at most 26 levels"):
        codec.sid_tokens([2] * 27)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[" * 50_000, "nested too deeply"),
        ('{"codebook_sizes": [' + "9" * 5_000 + '], "sids": {}}', "a number too long"),
        (json.dumps({"codebook_sizes": [2] * 27, "sids": {"a": [0] * 27}}), "27 levels"),
        (json.dumps({"codebook_sizes": [2**64], "sids": {"a": [2**63]}}), "below 2\\*\\*63"),
        (json.dumps({"codebook_sizes": [2], "sids": {"a": list(range(500))}}), r"got \[0, 1, 2, [^\]]*\.\.\.;"),
    ],
)
def test_load_rejects(tmp_path, content, problem):
    (tmp_path / "sids.json").write_text(content)
    with pytest.raises(GtiError, match=problem):
        SemanticIds.load(tmp_path)


def test_load_rejects_invalid_utf8(tmp_path):
    (tmp_path / "sids.json").write_bytes(b'{"codebook_sizes": [2], "sids": {"\xff": [0]}}')
    with pytest.raises(GtiError, match="sids.json is not UTF-8 text"):
        SemanticIds.load(tmp_path)
