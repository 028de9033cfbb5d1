import math

import numpy as np
import pytest

from gti.errors import GtiError
from gti.sid import format_report, load_codebooks, save_codebooks, sid_report

CODES = np.array([[0, 0], [0, 0], [1, 1], [1, 0]])
CODEBOOKS = [
    np.array([[1, 0], [0, 1]], dtype=np.float32),
    np.array([[0, 0], [0, 1], [9, 9], [9, 9]], dtype=np.float32),
]
X = np.array([[1, 1], [1, 0], [0, 2], [0, 1]], dtype=np.float32)  # reconstruction misses row 0 by 1


def test_known_values():
    report = sid_report(CODES, [2, 4], X, CODEBOOKS, {"encode": 1.0, "quantize": 2.0, "total": 3.0})
    assert report["items"] == 4 and report["levels"] == 2
    assert report["codes_per_level"] == [2, 4]
    assert report["collision_rate"] == 0.5
    assert report["max_group_size"] == 2
    assert report["distinct_codes_per_level"] == [2, 2]
    assert report["distinct_prefixes_per_level"] == [2, 3]
    assert report["utilization_per_level"] == [1.0, 0.5]
    level_1_entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(4)
    assert report["entropy_per_level"] == pytest.approx([1.0, level_1_entropy])
    assert report["largest_code_per_level"] == [2, 3]
    assert report["relative_reconstruction_error"] == pytest.approx(1 / math.sqrt(8))
    assert report["seconds"]["total"] == 3.0
    table = format_report(report)
    assert "collision rate 0.5000" in table and table.count("\n") == 6
    assert "the share of items whose 2 codes another item also has" in table


def test_fingerprints_tell_codes_and_embeddings_apart():
    seconds = {"total": 0.0}
    report = sid_report(CODES, [2, 4], X, CODEBOOKS, seconds)
    again = sid_report(CODES.copy(), [2, 4], X.copy(), CODEBOOKS, seconds)
    assert report["codes_sha256"] == again["codes_sha256"] and report["embeddings_sha256"] == again["embeddings_sha256"]
    one_code = CODES.copy()
    one_code[3, 1] = 1
    assert sid_report(one_code, [2, 4], X, CODEBOOKS, seconds)["codes_sha256"] != report["codes_sha256"]
    one_ulp = X.copy()
    one_ulp[0, 0] = np.nextafter(one_ulp[0, 0], np.float32(2))
    nudged = sid_report(CODES, [2, 4], one_ulp, CODEBOOKS, seconds)
    assert nudged["embeddings_sha256"] != report["embeddings_sha256"] and nudged["codes_sha256"] == report["codes_sha256"]


def test_codebooks_round_trip(tmp_path):
    path = tmp_path / "codebooks.safetensors"
    save_codebooks(CODEBOOKS, path)
    loaded = load_codebooks(path)
    assert len(loaded) == 2 and all(np.array_equal(a, b) for a, b in zip(loaded, CODEBOOKS))


def test_load_codebooks_errors(tmp_path):
    with pytest.raises(GtiError, match="does not exist"):
        load_codebooks(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(GtiError, match="not a readable safetensors file"):
        load_codebooks(garbage)
