"""The semantic ids of a catalog: build them from item text, look them up, save and load them."""

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gti.artifacts import atomic_write
from gti.errors import GtiError
from gti.sid import codec
from gti.sid.encoder import DEFAULT_ENCODER, encode_texts, resolve_precision
from gti.sid.quantize import BALANCE_SLACK, code_capacity, disambiguate, reassign_collisions, rq_kmeans
from gti.sid.report import semantic_check, sid_report
from gti.sid.rqvae import rq_vae
from gti.sid.trie import SidTrie

SIDS_FILE = "sids.json"
QUANTIZERS = ("rq-kmeans", "rq-kmeans-balanced", "rq-vae")
COLLISION_STRATEGIES = ("extra-level", "reassign")


@dataclass(eq=False)
class SemanticIds:
    """One unique semantic id per item.

    Attributes:
        item_ids: item ids in row order.
        codes: (N, L+1) int64 codes whose last column is the disambiguation level, or
            (N, L) codes when collisions were resolved by reassignment on the last
            quantizer level (then there is no disambiguation level at all).
        codebook_sizes: codes per level, one entry per column of `codes`; a disambiguation
            level's size is the largest collision group.
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

    def trie(self, rows=None) -> SidTrie:
        """A prefix trie over all ids (or only the items of `rows`), for constrained decoding (its item indices are rows)."""
        if rows is None:
            return SidTrie(self.codes, self.codebook_sizes)
        rows = np.asarray(rows, dtype=np.int64)
        return SidTrie(self.codes[rows], self.codebook_sizes, rows=rows)

    def save(self, folder: Path) -> None:
        """Write `folder/sids.json` atomically: {"codebook_sizes": [...], "sids": {item_id: [codes]}}."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "codebook_sizes": [int(size) for size in self.codebook_sizes],
            "sids": {item_id: [int(code) for code in row] for item_id, row in zip(self.item_ids, self.codes)},
        }
        atomic_write(folder / SIDS_FILE, json.dumps(data))

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
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            problem = f"{error.reason} at byte {error.start + 1}"
            raise GtiError(f"semantic id file {path} is not UTF-8 text: {problem}") from None
        except OSError as error:
            raise GtiError(f"semantic id file {path} cannot be read: {error.strerror or error}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise GtiError(f"semantic id file {path} is not valid JSON: {error}") from None
        except RecursionError:
            raise GtiError(f"semantic id file {path} is not valid JSON: nested too deeply") from None
        except ValueError:  # an integer beyond int()'s digit limit
            raise GtiError(f"semantic id file {path} is not valid JSON: a number too long to read") from None
        problem = _check(data)
        if problem:
            raise GtiError(f"semantic id file {path} is malformed: {problem}; rebuild the semantic ids")
        return cls(list(data["sids"]), np.array(list(data["sids"].values()), dtype=np.int64), data["codebook_sizes"])


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value, limit: int = 40) -> str:
    """`repr(value)` cut to about `limit` characters, so a message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check(data) -> str:
    """What is wrong with the parsed contents of a sids.json file, or "" when nothing is."""
    if not isinstance(data, dict) or set(data) != {"codebook_sizes", "sids"}:
        return 'expected an object with exactly the keys "codebook_sizes" and "sids"'
    sizes, sids = data["codebook_sizes"], data["sids"]
    # Codes are stored as int64, so a size beyond 2**63 could hold codes numpy cannot.
    if not isinstance(sizes, list) or not sizes or not all(_is_int(size) and 1 <= size < 2**63 for size in sizes):
        return '"codebook_sizes" must be a non-empty list of positive integers below 2**63'
    if len(sizes) > len(codec.LEVEL_LETTERS):
        return f'"codebook_sizes" has {len(sizes)} levels; semantic id tokens name at most {len(codec.LEVEL_LETTERS)}'
    if not isinstance(sids, dict) or not sids:
        return '"sids" must be a non-empty object from item id to a list of codes'
    for item_id, sid in sids.items():
        if not isinstance(sid, list) or len(sid) != len(sizes) or not all(_is_int(code) for code in sid):
            return f"item {_shown(item_id)} should have a list of {len(sizes)} integer codes, got {_shown(sid)}"
        if any(not 0 <= code < size for code, size in zip(sid, sizes)):
            return f"item {_shown(item_id)} has codes {_shown(sid)} outside the codebook sizes {_shown(sizes)}"
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
    quantizer: str = "rq-kmeans",
    collisions: str = "extra-level",
    categories: dict[str, Sequence[str] | str] | None = None,
    precision: str = "float32",
    catalog: str = "the catalog",
) -> tuple[SemanticIds, dict, list[np.ndarray]]:
    """Give every item a unique semantic id from its text: encode, quantize, resolve collisions.

    Collision strategies: "extra-level" appends a disambiguation level to every id (its
    code is the item's index within its collision group, 0 for unique items).
    "reassign" moves each later member of a colliding group to the nearest free code
    of the last quantizer level within its prefix (`reassign_collisions`); the ids then
    keep L codes, and only when some item finds no free code is the extra level added.

    Args:
        texts: item id -> rendered item text, in catalog order.
        levels: quantizer levels L.
        codes: codes per quantizer level.
        seed: seed of the quantizer and of the semantic check's random baseline.
        encoder: sentence encoder name or folder (see `encode_texts`).
        cache_dir: where embeddings are cached between runs.
        quantizer: "rq-kmeans" (codebooks in the embedding space), "rq-kmeans-balanced"
            (the same with at most ceil(N / K * BALANCE_SLACK) items per code on every level)
            or "rq-vae" (`rq_vae` with its defaults; codebooks in its latent space).
        collisions: "extra-level" or "reassign".
        categories: item id -> category path, most general first (a string is a path of one
            level); adds `semantic_check` to the report over the items that have one, at the
            most general level that separates them (`report.category_level`).
        precision: the encoder's precision, "auto", "float32" or "bfloat16" (see `encode_texts`).
        catalog: what the items are, for messages (e.g. the dataset's name).

    Returns:
        The semantic ids, the quality report and the L codebooks. The report is
        `sid_report` of the quantizer's own codes (before collisions are resolved; for
        rq-vae its relative_reconstruction_error is measured in the embedding space,
        through the decoder) plus quantizer, collisions, reassigned_items (items whose
        quantizer codes changed), sid_levels (codes per id), duplicate_texts (items whose
        text repeats an earlier item's text), encoder_precision (the one used), for
        rq-kmeans-balanced code_capacity and, given categories, semantic_check.

    Raises:
        GtiError: unknown quantizer, collision strategy or precision, no items, empty
            item texts, or fewer items than codes.
    """
    if quantizer not in QUANTIZERS:
        raise GtiError(f"unknown quantizer {quantizer!r}; choose one of {', '.join(QUANTIZERS)}")
    if collisions not in COLLISION_STRATEGIES:
        raise GtiError(f"unknown collision strategy {collisions!r}; choose one of {', '.join(COLLISION_STRATEGIES)}")
    if not texts:
        raise GtiError(f"{catalog} has no items; semantic ids need at least one item text")
    empty = [item_id for item_id, text in texts.items() if not text.strip()]
    if empty:
        raise GtiError(f"{len(empty)} items have empty text (first: {empty[0]!r}); give every item a title or text")
    used_precision = resolve_precision(precision)
    if len(texts) < codes:
        raise GtiError(
            f"{catalog} has {len(texts)} items, fewer than sids.codes = {codes} codes per level; "
            f"set sids.codes (--codes) to at most {len(texts)}"
        )
    item_ids = list(texts)
    start = time.perf_counter()
    x = encode_texts(
        [texts[item_id] for item_id in item_ids], model=encoder, cache_dir=cache_dir, precision=used_precision
    )  # (N, D)
    encoded = time.perf_counter()
    if quantizer in ("rq-kmeans", "rq-kmeans-balanced"):
        slack = BALANCE_SLACK if quantizer == "rq-kmeans-balanced" else None
        codes_before, codebooks = rq_kmeans(x, levels, codes, seed=seed, slack=slack)  # (N, L)
        space, reconstruction = x, None
    else:
        trained = rq_vae(x, levels, codes, seed=seed)
        codes_before, codebooks = trained.codes, trained.codebooks  # (N, L)
        space, reconstruction = trained.latent, trained.reconstruction
    sid_codes = codes_before
    if collisions == "reassign":
        residual = space - sum(codebooks[level][codes_before[:, level]] for level in range(levels - 1))  # (N, d)
        sid_codes = reassign_collisions(codes_before, residual, codebooks[-1])
    sizes = [codes] * levels
    if collisions == "extra-level" or len(np.unique(sid_codes, axis=0)) < len(item_ids):
        sid_codes = disambiguate(sid_codes)  # (N, L+1)
        sizes.append(int(sid_codes[:, -1].max()) + 1)
    quantized = time.perf_counter()
    seconds = {"encode": encoded - start, "quantize": quantized - encoded, "total": quantized - start}
    report = sid_report(codes_before, [codes] * levels, x, codebooks, seconds, reconstruction=reconstruction)
    report["quantizer"] = quantizer
    report["collisions"] = collisions
    report["reassigned_items"] = int((sid_codes[:, :levels] != codes_before).any(1).sum())
    report["sid_levels"] = len(sizes)
    report["duplicate_texts"] = len(item_ids) - len(set(texts.values()))
    report["encoder_precision"] = used_precision
    if quantizer == "rq-kmeans-balanced":
        report["code_capacity"] = code_capacity(len(item_ids), codes, BALANCE_SLACK)
    if categories is not None:
        rows = [row for row, item_id in enumerate(item_ids) if item_id in categories]
        report["semantic_check"] = semantic_check(
            codes_before[rows, 0], [categories[item_ids[row]] for row in rows], seed=seed
        )
    return SemanticIds(item_ids, sid_codes, sizes), report, codebooks
