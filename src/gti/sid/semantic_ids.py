"""The semantic ids of a catalog: build them from item text, look them up, save and load them."""

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gti.errors import GtiError
from gti.sid import codec
from gti.sid.encoder import DEFAULT_ENCODER, encode_texts
from gti.sid.quantize import disambiguate, rq_kmeans
from gti.sid.report import sid_report
from gti.sid.trie import SidTrie

SIDS_FILE = "sids.json"


@dataclass(eq=False)
class SemanticIds:
    """One unique semantic id per item.

    Attributes:
        item_ids: item ids in row order.
        codes: (N, L+1) int64 codes, the last column being the disambiguation level.
        codebook_sizes: codes per level (L+1 entries); the last is the largest collision group.
    """

    item_ids: list[str]
    codes: np.ndarray
    codebook_sizes: list[int]
    _rows: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self.codes = np.asarray(self.codes, dtype=np.int64)
        if self.codes.shape != (len(self.item_ids), len(self.codebook_sizes)):
            raise GtiError(
                f"semantic ids need a ({len(self.item_ids)}, {len(self.codebook_sizes)}) code matrix "
                f"(items x levels), got shape {self.codes.shape}"
            )
        self._rows = {item_id: row for row, item_id in enumerate(self.item_ids)}
        if len(self._rows) != len(self.item_ids):
            raise GtiError("semantic ids list an item id twice; item ids must be unique")

    def row(self, item_id: str) -> int:
        """The row of an item in `item_ids` and `codes` (also its item index in the trie).

        Raises:
            GtiError: the item has no semantic id.
        """
        try:
            return self._rows[item_id]
        except KeyError:
            raise GtiError(f"item {item_id!r} has no semantic id; rebuild the semantic ids for this catalog") from None

    def sid(self, item_id: str) -> tuple[int, ...]:
        """The codes of one item, level 0 first."""
        return tuple(int(code) for code in self.codes[self.row(item_id)])

    def tokens(self, item_id: str) -> str:
        """The token string of one item, e.g. `<a_12><b_3><c_40><d_0>`."""
        return codec.encode(self.sid(item_id))

    def new_tokens(self) -> list[str]:
        """Every token these ids can use, level by level: the vocabulary to add to a model."""
        return codec.sid_tokens(self.codebook_sizes)

    def trie(self) -> SidTrie:
        """A prefix trie over all ids, for constrained decoding (its item indices are rows)."""
        return SidTrie(self.codes, self.codebook_sizes)

    def save(self, folder: Path) -> None:
        """Write `folder/sids.json` atomically: {"codebook_sizes": [...], "sids": {item_id: [codes]}}."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "codebook_sizes": [int(size) for size in self.codebook_sizes],
            "sids": {item_id: [int(code) for code in row] for item_id, row in zip(self.item_ids, self.codes)},
        }
        temporary = folder / (SIDS_FILE + ".tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, folder / SIDS_FILE)

    @classmethod
    def load(cls, folder: Path) -> "SemanticIds":
        """Read `folder/sids.json` written by `save`.

        Raises:
            GtiError: the file is missing or malformed; the message names the file and the problem.
        """
        path = Path(folder) / SIDS_FILE
        if not path.is_file():
            raise GtiError(f"semantic id file {path} does not exist; build the semantic ids first")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise GtiError(f"semantic id file {path} is not valid JSON: {error}") from error
        problem = _check(data)
        if problem:
            raise GtiError(f"semantic id file {path} is malformed: {problem}; rebuild the semantic ids")
        return cls(list(data["sids"]), np.array(list(data["sids"].values()), dtype=np.int64), data["codebook_sizes"])


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(data) -> str:
    """What is wrong with the parsed contents of a sids.json file, or "" when nothing is."""
    if not isinstance(data, dict) or set(data) != {"codebook_sizes", "sids"}:
        return 'expected an object with exactly the keys "codebook_sizes" and "sids"'
    sizes, sids = data["codebook_sizes"], data["sids"]
    if not isinstance(sizes, list) or not sizes or not all(_is_int(size) and size >= 1 for size in sizes):
        return '"codebook_sizes" must be a non-empty list of positive integers'
    if not isinstance(sids, dict) or not sids:
        return '"sids" must be a non-empty object from item id to a list of codes'
    for item_id, sid in sids.items():
        if not isinstance(sid, list) or len(sid) != len(sizes) or not all(_is_int(code) for code in sid):
            return f"item {item_id!r} should have a list of {len(sizes)} integer codes, got {sid!r}"
        if any(not 0 <= code < size for code, size in zip(sid, sizes)):
            return f"item {item_id!r} has codes {sid} outside the codebook sizes {sizes}"
    if len({tuple(sid) for sid in sids.values()}) != len(sids):
        return "two items share one semantic id"
    return ""


def build_sids(
    texts: dict[str, str],
    levels: int = 3,
    codes: int = 256,
    seed: int = 0,
    encoder: str = DEFAULT_ENCODER,
    cache_dir: Path | None = None,
) -> tuple[SemanticIds, dict, list[np.ndarray]]:
    """Give every item a unique semantic id from its text: encode, RQ-KMeans, disambiguate.

    Args:
        texts: item id -> rendered item text, in catalog order.
        levels: quantizer levels L (the ids get L+1 codes with the disambiguation level).
        codes: codes per quantizer level.
        seed: seed of the quantizer.
        encoder: sentence encoder name or folder (see `encode_texts`).
        cache_dir: where embeddings are cached between runs.

    Returns:
        The semantic ids, the quality report (`sid_report` plus `duplicate_texts`: items
        whose text repeats an earlier item's text), and the L codebooks.

    Raises:
        GtiError: no items, empty item texts, or fewer items than codes.
    """
    if not texts:
        raise GtiError("the catalog has no items; semantic ids need at least one item text")
    empty = [item_id for item_id, text in texts.items() if not text.strip()]
    if empty:
        raise GtiError(f"{len(empty)} items have empty text (first: {empty[0]!r}); give every item a title or text")
    item_ids = list(texts)
    start = time.perf_counter()
    x = encode_texts([texts[item_id] for item_id in item_ids], model=encoder, cache_dir=cache_dir)  # (N, D)
    encoded = time.perf_counter()
    codes_before, codebooks = rq_kmeans(x, levels, codes, seed=seed)  # (N, L)
    codes_after = disambiguate(codes_before)  # (N, L+1)
    quantized = time.perf_counter()
    sizes = [codes] * levels + [int(codes_after[:, -1].max()) + 1]
    seconds = {"encode": encoded - start, "quantize": quantized - encoded, "total": quantized - start}
    report = sid_report(codes_before, sizes[:-1], x, codebooks, seconds)
    report["duplicate_texts"] = len(item_ids) - len(set(texts.values()))
    return SemanticIds(item_ids, codes_after, sizes), report, codebooks
