"""Quality of a semantic-id assignment (collisions, utilization, balance) and codebook files."""

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

from gti.artifacts import atomic_write
from gti.errors import GtiError
from gti.sid.codec import LEVEL_LETTERS


def _entropy(column: np.ndarray, size: int) -> float:
    """Entropy of the code usage in one level, divided by log(size): 1 means perfectly balanced."""
    if size <= 1:
        return 1.0
    p = np.bincount(column, minlength=size) / len(column)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / math.log(size))


def sid_report(
    codes_before: np.ndarray,
    codebook_sizes: list[int],
    x: np.ndarray,
    codebooks: list[np.ndarray],
    seconds: dict,
    reconstruction: np.ndarray | None = None,
) -> dict:
    """Measure how well the quantizer levels spread the catalog.

    Args:
        codes_before: (N, L) quantizer codes, before the disambiguation level.
        codebook_sizes: codes per quantizer level (L entries).
        x: (N, D) the embeddings that were quantized.
        codebooks: L codebooks of shape (K_l, D).
        seconds: wall-clock timings, e.g. {"encode": ..., "quantize": ..., "total": ...}.
        reconstruction: (N, D) reconstruction of x; defaults to the sum of each item's codebook
            rows (right for RQ-KMeans; an RQ-VAE passes its decoder's output instead).

    Returns:
        A JSON-ready dict: items, levels, codes_per_level, collision_rate (fraction of items
        whose L-code tuple is shared), max_group_size, distinct_codes_per_level,
        distinct_prefixes_per_level (prefix lengths 1..L), utilization_per_level,
        entropy_per_level (normalized to [0, 1]), largest_code_per_level (items holding
        the most used code of each level), relative_reconstruction_error
        (Frobenius ||x - x_hat|| / ||x||), seconds, and two fingerprints that tell two machines' runs
        apart: codes_sha256 (the codes, in item order) and embeddings_sha256 (the float32 embeddings' bytes;
        equal codes from unequal embeddings mean the quantizer absorbed the difference).
    """
    codes_before = np.asarray(codes_before, dtype=np.int64)
    n_items, n_levels = codes_before.shape
    if len(codebook_sizes) != n_levels or len(codebooks) != n_levels:
        raise GtiError(
            f"the report needs one codebook size and one codebook per level ({n_levels}), "
            f"got {len(codebook_sizes)} sizes and {len(codebooks)} codebooks"
        )
    _, group, group_sizes = np.unique(codes_before, axis=0, return_inverse=True, return_counts=True)
    item_group_size = group_sizes[group.reshape(-1)]  # (N,) size of each item's group
    distinct = [len(np.unique(codes_before[:, level])) for level in range(n_levels)]
    if reconstruction is None:
        reconstruction = sum(codebook[codes_before[:, level]] for level, codebook in enumerate(codebooks))  # (N, D)
    return {
        "items": n_items,
        "levels": n_levels,
        "codes_per_level": list(codebook_sizes),
        "collision_rate": float((item_group_size > 1).mean()),
        "max_group_size": int(group_sizes.max()),
        "distinct_codes_per_level": distinct,
        "distinct_prefixes_per_level": [
            len(np.unique(codes_before[:, :length], axis=0)) for length in range(1, n_levels + 1)
        ],
        "utilization_per_level": [count / size for count, size in zip(distinct, codebook_sizes)],
        "entropy_per_level": [
            _entropy(codes_before[:, level], size) for level, size in enumerate(codebook_sizes)
        ],
        "largest_code_per_level": [int(np.bincount(codes_before[:, level]).max()) for level in range(n_levels)],
        "relative_reconstruction_error": float(np.linalg.norm(x - reconstruction) / np.linalg.norm(x)),
        "seconds": dict(seconds),
        "codes_sha256": hashlib.sha256(np.ascontiguousarray(codes_before, dtype="<i8").tobytes()).hexdigest(),
        "embeddings_sha256": hashlib.sha256(np.ascontiguousarray(x, dtype="<f4").tobytes()).hexdigest(),
    }


def _same_category_fraction(first_codes: np.ndarray, categories: np.ndarray) -> float:
    """Of the item pairs sharing a first code, the fraction that also share a category."""
    _, code_counts = np.unique(first_codes, return_counts=True)
    _, joint_counts = np.unique(np.stack([first_codes, categories]), axis=1, return_counts=True)
    pairs = (code_counts * (code_counts - 1)).sum() / 2
    same = (joint_counts * (joint_counts - 1)).sum() / 2
    return float(same / pairs) if pairs else 0.0


def category_level(paths: list[tuple[str, ...]]) -> int | None:
    """The most general level of the category paths that separates items: the first with two distinct values.

    On Amazon sets every item's path starts with the store's name ("Beauty"), so level 0
    says nothing; the first level with more than one value among the items whose path
    reaches it is the coarsest grouping the data has.

    Args:
        paths: each item's category path, most general first.

    Returns:
        The level (0 = most general), or None when no level has two distinct values.
    """
    depth = max((len(path) for path in paths), default=0)
    for level in range(depth):
        if len({path[level] for path in paths if len(path) > level}) > 1:
            return level
    return None


def semantic_check(first_codes: np.ndarray, categories: list[Sequence[str] | str], seed: int = 0) -> dict:
    """Do items that share their first code share a category more than chance?

    The category compared is the one at `category_level`: the most general level of the
    paths with more than one distinct value, over the items whose path reaches that level.
    The chance level permutes those items' first codes (seeded), which keeps how many
    items each code holds.

    Args:
        first_codes: (N,) level-0 code of each item.
        categories: each item's category path, most general first, in the same order (a
            string is a path of one level).
        seed: seed of the permutation.

    Returns:
        {"items": items compared, "category_level": the level used (None when no level
        separates the items; the fractions are then None), "categories": distinct categories
        at that level, "same_category_fraction": ..., "random_same_category_fraction": ...}.
    """
    first_codes = np.asarray(first_codes, dtype=np.int64)
    paths = [(path,) if isinstance(path, str) else tuple(path) for path in categories]
    if len(paths) != len(first_codes):
        raise GtiError(f"the semantic check needs a category path per item: {len(first_codes)} codes, {len(paths)} paths")
    level = category_level(paths)
    if level is None:
        return {"items": 0, "category_level": None, "categories": len({path[:1] for path in paths if path}),
                "same_category_fraction": None, "random_same_category_fraction": None}
    rows = [row for row, path in enumerate(paths) if len(path) > level]
    codes = first_codes[rows]
    names, category_ids = np.unique(np.asarray([paths[row][level] for row in rows], dtype=str), return_inverse=True)
    shuffled = np.random.default_rng(seed).permutation(codes)
    return {
        "items": len(rows),
        "category_level": level,
        "categories": len(names),
        "same_category_fraction": _same_category_fraction(codes, category_ids),
        "random_same_category_fraction": _same_category_fraction(shuffled, category_ids),
    }


def format_report(report: dict) -> str:
    """A small human-readable table of a `sid_report` dict."""
    lines = [
        f"semantic ids: {report['items']} items, {report['levels']} levels, "
        f"codes per level {report['codes_per_level']}",
        f"collision rate {report['collision_rate']:.4f} (largest group {report['max_group_size']}), "
        f"relative reconstruction error {report['relative_reconstruction_error']:.4f}",
    ]
    if "duplicate_texts" in report:
        lines.append(f"duplicate item texts {report['duplicate_texts']}")
    lines.append(f"  (the share of items whose {report['levels']} codes another item also has; "
                 "they must be told apart before the codes can name items)")
    if "quantizer" in report:
        lines.append(
            f"quantizer {report['quantizer']}, collisions by {report['collisions']} "
            f"({report['reassigned_items']} items reassigned), {report['sid_levels']} codes per id"
        )
        if report["collisions"] == "extra-level" and report["sid_levels"] > report["levels"]:
            lines.append(f"  (extra-level: {report['sid_levels'] - report['levels']} more token(s) per SID number the items "
                         "inside each group of colliding items, so every SID names one item; sids.collisions = reassign moves them to "
                         "free codes instead; more sids.codes or levels lowers the collision rate)")
    if "semantic_check" in report:
        check = report["semantic_check"]
        if check["category_level"] is None:
            lines.append("semantic check: every item has the same category at every level; nothing to compare")
        else:
            lines.append(
                f"pairs sharing a first code that share a category (level {check['category_level']}, "
                f"{check['categories']} categories): {check['same_category_fraction']:.3f} "
                f"(random codes {check['random_same_category_fraction']:.3f}, {check['items']} items)"
            )
    lines.append(f"{'level':<6}{'codes':>8}{'used':>8}{'prefixes':>10}{'utilization':>13}{'entropy':>9}")
    for level in range(report["levels"]):
        lines.append(
            f"{LEVEL_LETTERS[level]:<6}{report['codes_per_level'][level]:>8}"
            f"{report['distinct_codes_per_level'][level]:>8}{report['distinct_prefixes_per_level'][level]:>10}"
            f"{report['utilization_per_level'][level]:>13.3f}{report['entropy_per_level'][level]:>9.3f}"
        )
    lines.append("seconds: " + ", ".join(f"{name} {value:.1f}" for name, value in report["seconds"].items()))
    return "\n".join(lines)


def save_codebooks(codebooks: list[np.ndarray], path: Path) -> None:
    """Write codebooks to a safetensors file with keys level_0, level_1, ... (atomically)."""
    tensors = {f"level_{level}": np.ascontiguousarray(book, dtype=np.float32) for level, book in enumerate(codebooks)}
    atomic_write(Path(path), save(tensors))


def load_codebooks(path: Path) -> list[np.ndarray]:
    """Read codebooks written by `save_codebooks`, level 0 first.

    Raises:
        GtiError: the file is missing, unreadable, or its keys are not level_0 .. level_{L-1}.
    """
    path = Path(path)
    if not path.is_file():
        raise GtiError(f"codebook file {path} does not exist; build the semantic ids first")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError) as error:
        raise GtiError(f"codebook file {path} is not a readable safetensors file: {error}") from error
    expected = [f"level_{level}" for level in range(len(tensors))]
    if sorted(tensors) != sorted(expected) or not tensors:
        raise GtiError(f"codebook file {path} has keys {sorted(tensors)}; expected level_0 .. level_N")
    return [tensors[key] for key in expected]
