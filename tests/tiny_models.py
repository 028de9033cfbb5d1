"""Tiny random models for tests: a 2-layer, hidden-16 Llama and a word-level tokenizer, built offline.

A module of its own (not conftest) so tests can import it by a unique name.
"""

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


def make_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over a small English vocabulary plus byte-like fallbacks."""
    words = (
        "the a of and to in is item items which has title user interacted with chronological order "
        "can you predict next briefly describe what called described as tell me please could "
        "movie comedy drama action story toy love war night day man woman city house game "
        "red blue green black white big small new old first last one two three : ? . , ; ! -"
    ).split()
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for word in words + letters:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def make_tiny_model(vocab_size: int, tied: bool = True, seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer, hidden-16 Llama with random weights."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        tie_word_embeddings=tied,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    return LlamaForCausalLM(config).eval()
