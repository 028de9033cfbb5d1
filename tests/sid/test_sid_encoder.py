import numpy as np
import pytest

from gti.errors import GtiError
from gti.sid import encode_texts, encoder

TEXTS = ["A red lipstick for women.", "Red lipstick, long lasting.", "A steel hammer for carpentry."]


def test_minilm_embeddings_and_cache(tmp_path, monkeypatch):
    x = encode_texts(TEXTS, cache_dir=tmp_path, progress=False)
    assert x.shape == (3, 384) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    similarity = x @ x.T
    assert similarity[0, 1] > similarity[0, 2] and similarity[0, 1] > similarity[1, 2]
    cached = list(tmp_path.iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".safetensors"

    def no_model(_):
        raise AssertionError("a cache hit must not load the encoder")

    monkeypatch.setattr(encoder, "_load", no_model)
    again = encode_texts(TEXTS, cache_dir=tmp_path, progress=False)
    assert np.array_equal(again, x)
    assert list(tmp_path.iterdir()) == cached


def test_unknown_encoder(tmp_path):
    with pytest.raises(GtiError, match="cannot load sentence encoder"):
        encode_texts(["a"], model=str(tmp_path / "no-model"), progress=False)


def test_no_texts():
    with pytest.raises(GtiError, match="no texts"):
        encode_texts([])
