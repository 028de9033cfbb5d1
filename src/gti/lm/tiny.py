"""`model.name = "tiny-random"`: a tiny random Llama for quick tries and smoke runs, built locally.

Two layers, hidden size 32, random weights from a fixed seed, and a byte-level tokenizer (every
text encodes, one token per UTF-8 byte): the same folder on every machine with the same torch,
built in about a second, no download. It runs the whole pipeline in seconds; its
recommendations and metrics mean nothing.
"""

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from gti.config import TINY_RANDOM

VERSION = 1
"""Bumped when the recipe changes, so that an old cached folder is not reused."""
SEED = 0


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """Special tokens `<pad>` (0), `<s>`, `</s>`, then the 256 byte symbols of byte-level BPE, with no merges."""
    specials = ["<pad>", "<s>", "</s>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: index for index, token in enumerate(specials + alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def tiny_random_model(vocab_size: int) -> LlamaForCausalLM:
    """The 2-layer, hidden-32 Llama with tied embeddings, its weights drawn from `SEED`."""
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    return model.eval()


def tiny_random_folder(cache: Path) -> Path:
    """`cache/models/tiny-random-v<VERSION>`: built once (written whole, then renamed into place)."""
    def build(staging: Path) -> None:
        tokenizer = byte_tokenizer()
        tiny_random_model(len(tokenizer)).save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    return built_folder(Path(cache) / "models" / f"{TINY_RANDOM}-v{VERSION}", build)


def built_folder(folder: Path, build: Callable[[Path], None]) -> Path:
    """`folder`, made once by `build(staging)` in a staging folder that is then renamed into place (a folder that
    another process renamed first is kept)."""
    if (folder / "model.safetensors").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        build(staging)
        os.chmod(staging, 0o755)
        if folder.exists():  # an incomplete folder left by something else
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(staging, folder)
        except OSError:  # another process (a launcher's other rank) renamed its copy first
            if not (folder / "model.safetensors").is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder
