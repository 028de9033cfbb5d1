"""Shared fixtures: a tiny random Llama (2 layers, hidden 16) and its tokenizer, built offline.

Every machine runs the same tests: `precision = "auto"` resolves to float32 in the whole suite
(subprocesses included) as on a CPU without native bfloat16, and the bfloat16 paths are tested by
naming `bfloat16` explicitly.
"""

import os

os.environ["GTI_NATIVE_BF16"] = "0"  # before gti is imported anywhere (gti.device caches the answer)

import pytest  # noqa: E402
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

from tiny_models import make_tiny_model, make_tiny_tokenizer  # noqa: E402


@pytest.fixture
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    return make_tiny_tokenizer()


@pytest.fixture
def tiny_model(tiny_tokenizer) -> LlamaForCausalLM:
    return make_tiny_model(len(tiny_tokenizer))
