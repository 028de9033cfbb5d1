"""Semantic ID <-> token strings: `(12, 3, 40, 0)` <-> `<a_12><b_3><c_40><d_0>`."""

import re
import string

from gti.errors import GtiError

LEVEL_LETTERS = string.ascii_lowercase
_TOKEN = re.compile(r"<([a-z])_([0-9]+)>")  # [0-9], not \d: no other scripts' digits


def token(level: int, code: int) -> str:
    """The token string of one (level, code) pair, e.g. `token(1, 7) == "<b_7>"`.

    Raises:
        GtiError: the level has no letter (semantic ids have at most 26 levels).
    """
    if not 0 <= level < len(LEVEL_LETTERS):
        raise GtiError(
            f"semantic ids have at most {len(LEVEL_LETTERS)} levels (<a_N> to <z_N>); level {level} has no token"
        )
    return f"<{LEVEL_LETTERS[level]}_{code}>"


def sid_tokens(codebook_sizes: list[int]) -> list[str]:
    """Every new token for SIDs whose level l has `codebook_sizes[l]` codes, level by level."""
    return [token(level, code) for level, size in enumerate(codebook_sizes) for code in range(size)]


def encode(sid: tuple[int, ...] | list[int]) -> str:
    """The token string of a whole SID."""
    return "".join(token(level, code) for level, code in enumerate(sid))


def decode(text: str) -> tuple[int, ...]:
    """Parse `<a_12><b_3>...` back into a tuple of codes; exactly the strings `encode` writes.

    Raises:
        GtiError: the text is not a sequence of level tokens in order a, b, c, ..., each code a
            decimal number without leading zeros below 2**63.
    """
    codes: list[int] = []
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:
            raise _invalid(text, f"unexpected text at character {position}")
        level = len(codes)
        if level == len(LEVEL_LETTERS):
            raise _invalid(text, f"more than {len(LEVEL_LETTERS)} levels")
        if match.group(1) != LEVEL_LETTERS[level]:
            raise _invalid(text, f"level {level} should be <{LEVEL_LETTERS[level]}_N>")
        digits = match.group(2)
        # Leading zeros would break the round trip with encode; 19+ digits may not fit int64.
        if (len(digits) > 1 and digits[0] == "0") or len(digits) > 19 or int(digits) >= 2**63:
            problem = f"level {level} code {digits[:20]} should be a number without leading zeros, below 2**63"
            raise _invalid(text, problem)
        codes.append(int(digits))
        position = match.end()
    if not codes:
        raise _invalid(text, "expected tokens like <a_12><b_3>")
    if position != len(text):
        raise _invalid(text, f"unexpected text at character {position}")
    return tuple(codes)


def _invalid(text: str, problem: str) -> GtiError:
    """The error for `text`, shown cut to 60 characters so the message stays one line."""
    shown = repr(text) if len(text) <= 60 else repr(text[:60]) + "..."
    return GtiError(f"invalid semantic id {shown}: {problem}")
