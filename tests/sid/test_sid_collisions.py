import numpy as np
import pytest

from gti.errors import GtiError
from gti.sid import build_sids, format_report, semantic_ids
from gti.sid.quantize import reassign_collisions
from gti.sid.report import semantic_check


def test_reassign_moves_later_members_to_nearest_free_code():
    codes = np.array([[0, 0], [0, 0], [0, 0], [1, 0], [1, 0]])
    residual = np.array([[0.0], [0.0], [2.9], [0.0], [0.0]])
    last_codebook = np.array([[0.0], [1.0], [3.0]])
    result = reassign_collisions(codes, residual, last_codebook)
    # row 1 takes the nearest free code 1; row 2 takes 2 (nearest to 2.9); row 4 moves within prefix 1
    assert result.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]]


def test_reassign_leaves_items_without_a_free_code():
    codes = np.array([[0, 0], [0, 0], [0, 0]])
    result = reassign_collisions(codes, np.zeros((3, 1)), np.array([[0.0], [1.0]]))
    assert result.tolist() == [[0, 0], [0, 1], [0, 0]]  # the prefix has only two codes


def blob_encoder(texts, **_):
    """Texts "c{k} item {n}": a vector near the center of category k, noise seeded by n."""
    centers = np.random.default_rng(0).normal(size=(4, 8)) * 10
    rows = []
    for text in texts:
        category, _, number = text.split()
        noise = np.random.default_rng(int(number)).normal(size=8)
        rows.append(centers[int(category[1:])] + noise)
    return np.array(rows, dtype=np.float32)


@pytest.fixture
def catalog(monkeypatch) -> tuple[dict[str, str], dict[str, str]]:
    monkeypatch.setattr(semantic_ids, "encode_texts", blob_encoder)
    texts = {f"i{n}": f"c{n % 4} item {n}" for n in range(200)}
    return texts, {f"i{n}": f"c{n % 4}" for n in range(200)}


def test_build_sids_rq_vae_end_to_end(catalog):
    texts, categories = catalog
    sids, report, codebooks = build_sids(texts, levels=2, codes=4, quantizer="rq-vae", categories=categories)
    assert sids.codes.shape == (200, 3) and len(np.unique(sids.codes, axis=0)) == 200
    assert report["quantizer"] == "rq-vae" and report["collisions"] == "extra-level" and report["sid_levels"] == 3
    assert [book.shape for book in codebooks] == [(4, 32), (4, 32)]  # latent space
    assert 0 < report["relative_reconstruction_error"] < 1  # measured through the decoder
    check = report["semantic_check"]
    assert check["items"] == 200
    assert check["same_category_fraction"] > 0.9 > check["random_same_category_fraction"]


def test_build_sids_reassign(catalog):
    texts, _ = catalog
    standard, standard_report, _ = build_sids(texts, levels=2, codes=16)
    sids, report, _ = build_sids(texts, levels=2, codes=16, collisions="reassign")
    assert len(np.unique(sids.codes, axis=0)) == 200
    assert standard_report["collision_rate"] > 0 and report["reassigned_items"] > 0
    assert report["sid_levels"] == len(sids.codebook_sizes) == sids.codes.shape[1]
    assert sids.codebook_sizes[:2] == [16, 16]
    assert report["sid_levels"] <= standard_report["sid_levels"] == 3


def test_build_sids_reassign_without_fallback_drops_extra_level(catalog):
    texts, _ = catalog
    sids, report, _ = build_sids(texts, levels=2, codes=64, collisions="reassign")
    assert report["collision_rate"] > 0 and report["sid_levels"] == 2
    assert sids.codes.shape == (200, 2) and sids.codebook_sizes == [64, 64]
    assert len(np.unique(sids.codes, axis=0)) == 200


def test_build_sids_rejects_unknown_names():
    with pytest.raises(GtiError, match="unknown quantizer 'pq'; choose one of rq-kmeans, rq-kmeans-balanced, rq-vae"):
        build_sids({"a": "x"}, quantizer="pq")
    with pytest.raises(GtiError, match="unknown collision strategy 'drop'; choose one of extra-level, reassign"):
        build_sids({"a": "x"}, collisions="drop")
    with pytest.raises(GtiError, match="precision 'half' is not one of auto, float32, bfloat16"):
        build_sids({"a": "x"}, precision="half")


def test_build_sids_balanced_end_to_end(catalog, monkeypatch):
    texts, categories = catalog
    seen = {}

    def recording_encoder(texts, **options):
        seen.update(options)
        return blob_encoder(texts)

    monkeypatch.setattr(semantic_ids, "encode_texts", recording_encoder)
    sids, report, _ = build_sids(texts, levels=2, codes=16, quantizer="rq-kmeans-balanced", precision="float32",
                                 categories=categories)
    assert seen["precision"] == report["encoder_precision"] == "float32"
    assert report["quantizer"] == "rq-kmeans-balanced" and report["code_capacity"] == 14  # ceil(200 / 16 * 1.1)
    assert max(report["largest_code_per_level"]) <= 14
    assert len(np.unique(sids.codes, axis=0)) == 200
    assert report["semantic_check"]["same_category_fraction"] > 0.9


def test_semantic_check_known_answer():
    # code 0 holds items of categories x, x, y (1 of 3 pairs share a category); code 1 holds y, y (1 of 1)
    check = semantic_check(np.array([0, 0, 0, 1, 1]), ["x", "x", "y", "y", "y"], seed=0)
    assert check["items"] == 5
    assert check["same_category_fraction"] == pytest.approx(2 / 4)
    assert 0 <= check["random_same_category_fraction"] <= 1
    assert check["category_level"] == 0 and check["categories"] == 2
    one_category = semantic_check(np.array([0, 0, 1, 1]), ["x"] * 4, seed=3)
    assert one_category["category_level"] is None and one_category["same_category_fraction"] is None


def test_semantic_check_uses_the_first_level_that_separates_items():
    """Amazon-like paths: level 0 is the store for every item, so the check reads level 1."""
    paths = [("Beauty", "Skin Care", "Face")] * 3 + [("Beauty", "Hair Care")] * 3 + [("Beauty",)]
    codes = np.array([0, 0, 0, 1, 1, 1, 2])
    check = semantic_check(codes, paths, seed=0)
    assert check["category_level"] == 1 and check["categories"] == 2
    assert check["items"] == 6  # the item whose path stops at level 0 has no level-1 category
    assert check["same_category_fraction"] == 1.0
    top_only = semantic_check(codes, [path[0] for path in paths], seed=0)
    assert top_only["category_level"] is None  # what the top level alone gave: nothing to tell apart


def test_semantic_check_separates_real_from_random_codes_on_deep_paths():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 4, size=400)
    paths = [("Store", f"g{group}", f"leaf{rng.integers(0, 50)}") for group in groups]
    matching = semantic_check(groups, paths, seed=1)
    unrelated = semantic_check(rng.integers(0, 4, size=400), paths, seed=1)
    assert matching["category_level"] == unrelated["category_level"] == 1
    assert matching["same_category_fraction"] == 1.0
    assert matching["random_same_category_fraction"] < 0.4 and unrelated["same_category_fraction"] < 0.4


def test_semantic_check_rejects_mismatched_lengths():
    with pytest.raises(GtiError, match="2 codes, 1 paths"):
        semantic_check(np.array([0, 1]), [("a",)])


def test_format_report_names_the_category_level(catalog):
    texts, _ = catalog
    paths = {item_id: ("Store", f"c{n % 4}") for n, item_id in enumerate(texts)}
    _, report, _ = build_sids(texts, levels=1, codes=4, categories=paths)
    assert report["semantic_check"]["category_level"] == 1
    assert "(level 1, 4 categories)" in format_report(report)


def test_format_report_shows_quantizer_and_semantic_check(catalog):
    texts, categories = catalog
    _, report, _ = build_sids(texts, levels=1, codes=4, collisions="reassign", categories=categories)
    table = format_report(report)
    assert "quantizer rq-kmeans, collisions by reassign" in table and "share a category" in table
