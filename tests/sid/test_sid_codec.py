import pytest

from gti.errors import GtiError
from gti.sid import codec


def test_round_trip():
    sid = (12, 3, 40, 0)
    text = codec.encode(sid)
    assert text == "<a_12><b_3><c_40><d_0>"
    assert codec.decode(text) == sid


def test_sid_tokens_level_by_level():
    assert codec.sid_tokens([2, 1, 3]) == ["<a_0>", "<a_1>", "<b_0>", "<c_0>", "<c_1>", "<c_2>"]


@pytest.mark.parametrize("text", ["", "hello", "<b_1><a_2>", "<a_1> <b_2>", "<a_1><b_2>x", "x<a_1>"])
def test_decode_rejects_malformed(text):
    with pytest.raises(GtiError, match="invalid semantic id"):
        codec.decode(text)
