"""A tiny random Llama and a tiny random catalog for the benchmarks' --quick modes (smoke tests, not measurements)."""

import gzip
import json
import random
from pathlib import Path

import torch

WORDS = ("lip gloss cream shampoo mask serum brush nail polish soap oil red blue green black white "
         "rose mint vanilla matte shiny soft big small").split()


def tiny_inputs(folder: Path, users: int, lengths: tuple[int, int], brand: bool) -> list[str]:
    """A random 2-layer, hidden-16 Llama and a 40-item catalog of `users` users in `folder`.

    Args:
        folder: where `data/` and `model/` are written.
        users: users in the catalog.
        lengths: the fewest and most items a user has (drawn uniformly).
        brand: items carry a `brand` field (null), as the normalized Amazon sets do.

    Returns:
        The --set flags that point a config at them (`data.source`, `model.name`).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(0)
    data = folder / "data"
    data.mkdir(parents=True)
    with gzip.open(data / "items.jsonl.gz", "wt") as items:
        for i in range(40):
            item = {"item_id": f"i{i}", "title": " ".join(rng.sample(WORDS, 3)), "categories": ["Beauty", rng.choice(WORDS)]}
            items.write(json.dumps({**item, "brand": None} if brand else item) + "\n")
    lines = ["user_id\titem_id\ttimestamp"]
    for user in range(users):
        lines += [f"u{user}\ti{item}\t{1000 + step}"
                  for step, item in enumerate(rng.sample(range(40), rng.randint(*lengths)))]
    (data / "interactions.tsv").write_text("\n".join(lines) + "\n")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for word in WORDS + list("abcdefghijklmnopqrstuvwxyz0123456789:?.,"):
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=256, tie_word_embeddings=True, pad_token_id=0, bos_token_id=1,
        eos_token_id=2,
    ))
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    return [f"data.source={json.dumps(str(data))}", f"model.name={json.dumps(str(folder / 'model'))}"]
