import numpy as np
import pytest

from gti import device
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


def test_resolve_precision(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert encoder.resolve_precision("auto") == "bfloat16"
    assert encoder.resolve_precision("float32") == "float32"
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    assert encoder.resolve_precision("auto") == "float32"
    assert encoder.resolve_precision("bfloat16") == "bfloat16"
    monkeypatch.setattr(device.torch.cuda, "is_bf16_supported", lambda *_, **__: True)
    assert encoder.resolve_precision("auto", device="cuda") == "bfloat16"
    assert encoder.resolve_precision("auto", device="cuda:1") == "bfloat16"
    assert encoder.resolve_precision("auto", device="mps") == "float32"
    with pytest.raises(GtiError, match="precision 'fp16' is not one of auto, float32, bfloat16"):
        encoder.resolve_precision("fp16")


def test_precision_is_part_of_the_cache_key(tmp_path):
    bf16 = encode_texts(TEXTS, cache_dir=tmp_path, progress=False, precision="bfloat16")
    fp32 = encode_texts(TEXTS, cache_dir=tmp_path, progress=False, precision="float32")
    assert len(list(tmp_path.iterdir())) == 2
    assert bf16.dtype == np.float32 and not np.array_equal(bf16, fp32)
    assert (bf16 * fp32).sum(1).min() > 0.999  # unit vectors: cosine similarity
    used = encoder.resolve_precision("auto")
    again = encode_texts(TEXTS, cache_dir=tmp_path, progress=False)  # auto hits the cache of its resolution
    assert np.array_equal(again, bf16 if used == "bfloat16" else fp32)
    assert len(list(tmp_path.iterdir())) == 2


def test_native_bf16_can_be_forced_by_the_environment(monkeypatch):
    from gti.errors import GtiError

    for value, expected in (("0", False), ("1", True)):
        monkeypatch.setenv(device.NATIVE_BF16_ENV, value)
        device.cpu_has_native_bf16.cache_clear()
        assert device.cpu_has_native_bf16() is expected
    monkeypatch.setenv(device.NATIVE_BF16_ENV, "yes")
    device.cpu_has_native_bf16.cache_clear()
    with pytest.raises(GtiError, match="GTI_NATIVE_BF16"):
        device.cpu_has_native_bf16()
    monkeypatch.setenv(device.NATIVE_BF16_ENV, "0")
    device.cpu_has_native_bf16.cache_clear()


def test_the_suite_runs_auto_as_float32():
    assert device.resolve_precision("auto", "cpu") == "float32"
