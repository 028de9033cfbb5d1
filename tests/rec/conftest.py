"""Fixtures of the rec tests: the tiny model extended with SID tokens, a catalog, and prompts of four lengths."""

import numpy as np
import pytest
import torch

from gti.rec import level_token_ids
from gti.sid import codec
from gti.sid.trie import SidTrie

CODEBOOK_SIZES = [3, 3, 2]
PROMPTS = [
    "the user interacted with items <a_0><b_1><c_1> and <a_2><b_0><c_0> in chronological order . "
    "can you predict the next item ?",
    "which item has the title : red toy ?",
    "tell me",
    "briefly describe what the big old comedy movie is called please",
]


@pytest.fixture
def catalog() -> np.ndarray:
    """12 distinct SIDs out of the 18 the codebooks allow, so some prefixes have fewer children."""
    rows = np.random.default_rng(0).permutation(int(np.prod(CODEBOOK_SIZES)))[:12]
    return np.stack(np.unravel_index(rows, CODEBOOK_SIZES), axis=1)  # (12, 3)


@pytest.fixture
def sid_setup(tiny_tokenizer, tiny_model, catalog):
    """The tiny model with SID tokens, embeddings re-drawn at unit scale so scores are well apart."""
    tiny_tokenizer.add_tokens(codec.sid_tokens(CODEBOOK_SIZES))
    tiny_model.resize_token_embeddings(len(tiny_tokenizer))
    torch.manual_seed(1)
    with torch.no_grad():
        tiny_model.get_input_embeddings().weight.normal_(0.0, 1.0)
    prompts = [tiny_tokenizer(text, add_special_tokens=False)["input_ids"] for text in PROMPTS]
    token_ids = level_token_ids(tiny_tokenizer, CODEBOOK_SIZES)
    return tiny_model, prompts, SidTrie(catalog, CODEBOOK_SIZES), token_ids


@pytest.fixture
def codebook_sizes() -> list[int]:
    return list(CODEBOOK_SIZES)
