"""`model.name = "scratch"` and the `scratch` method: a Llama-shaped decoder trained from nothing over Semantic IDs.

TIGER's idea (a sequence model over Semantic IDs, no pretrained language model) inside gti's pipeline:
random weights of the `model.scratch_*` shape, drawn from `model.scratch_seed`, and a vocabulary of four specials
(`<pad>`, `<s>`, `</s>`, `<unk>`) to which the run adds its SID tokens. Its tokenizer knows no words: a
prompt's text (the sequence layout's prefix) becomes `<unk>` tokens, so only the SIDs carry information.
Trained with the same objective and evaluated with the same beam search as the LM methods, it isolates
what the pretrained language model and its text add. Built locally in a second, cached by shape and seed.
"""

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from gti.config import SCRATCH, ModelConfig
from gti.lm.tiny import built_folder

VERSION = 1
"""Bumped when the recipe changes, so that an old cached folder is not reused."""
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")


def scratch_tokenizer() -> PreTrainedTokenizerFast:
    """Four special tokens, every word `<unk>`; the SID tokens are added by the run (`gti.lm.vocab`)."""
    backend = Tokenizer(models.WordLevel(vocab={token: i for i, token in enumerate(SPECIALS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def scratch_model(config: ModelConfig, vocab_size: int) -> LlamaForCausalLM:
    """The random decoder: `scratch_layers` layers of width `scratch_hidden`, tied embeddings, weights from
    `scratch_seed`."""
    hidden = config.scratch_hidden
    llama = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=config.scratch_layers,
        num_attention_heads=config.scratch_heads, num_key_value_heads=config.scratch_heads,
        max_position_embeddings=4096, tie_word_embeddings=True, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(config.scratch_seed)
        model = LlamaForCausalLM(llama)
    finally:
        torch.random.set_rng_state(state)
    return model.eval()


def scratch_folder(cache: Path, config: ModelConfig) -> Path:
    """`cache/models/scratch-<layers>x<hidden>-h<heads>-s<seed>-v<VERSION>`, built once."""
    name = (f"{SCRATCH}-{config.scratch_layers}x{config.scratch_hidden}-h{config.scratch_heads}"
            f"-s{config.scratch_seed}-v{VERSION}")

    def build(staging: Path) -> None:
        tokenizer = scratch_tokenizer()
        scratch_model(config, len(tokenizer)).save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    return built_folder(Path(cache) / "models" / name, build)
