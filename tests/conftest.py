"""Shared fixtures: a tiny random Llama (2 layers, hidden 16) and its tokenizer, built offline."""

import pytest
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from tiny_models import make_tiny_model, make_tiny_tokenizer


@pytest.fixture
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    return make_tiny_tokenizer()


@pytest.fixture
def tiny_model(tiny_tokenizer) -> LlamaForCausalLM:
    return make_tiny_model(len(tiny_tokenizer))
