"""Semantic ID <-> token strings: `(12, 3, 40, 0)` <-> `<a_12><b_3><c_40><d_0>`."""

import re
import string

from gti.errors import GtiError

LEVEL_LETTERS = string.ascii_lowercase
_TOKEN = re.compile(r"<([a-z])_(\d+)>")


def token(level: int, code: int) -> str:
    """The token string of one (level, code) pair, e.g. `token(1, 7) == "<b_7>"`."""
    return f"<{LEVEL_LETTERS[level]}_{code}>"


def sid_tokens(codebook_sizes: list[int]) -> list[str]:
    """Every new token for SIDs whose level l has `codebook_sizes[l]` codes, level by level."""
    return [token(level, code) for level, size in enumerate(codebook_sizes) for code in range(size)]


def encode(sid: tuple[int, ...] | list[int]) -> str:
    """The token string of a whole SID."""
    return "".join(token(level, code) for level, code in enumerate(sid))


def decode(text: str) -> tuple[int, ...]:
    """Parse `<a_12><b_3>...` back into a tuple of codes.

    Raises:
        GtiError: the text is not a sequence of level tokens in order a, b, c, ...
    """
    codes = []
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:
            raise GtiError(f"invalid semantic id {text!r}: unexpected text at character {position}")
        expected = LEVEL_LETTERS[len(codes)]
        if match.group(1) != expected:
            raise GtiError(f"invalid semantic id {text!r}: level {len(codes)} should be <{expected}_N>")
        codes.append(int(match.group(2)))
        position = match.end()
    if position != len(text) or not codes:
        raise GtiError(f"invalid semantic id {text!r}: expected tokens like <a_12><b_3>")
    return tuple(codes)
