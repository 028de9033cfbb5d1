"""Will a training step fit? An estimate checked before the first step, not after an out-of-memory crash.

Memory a step needs beyond the weights already loaded: gradients and AdamW's two moments
for the trained parameters (float32), and the activations kept for the backward pass.
Activations follow Korthikanti et al. (2022): per layer, s*b*h*(34 + 5*a*s/h) bytes in
16-bit, twice that in float32 (s tokens, b rows, h hidden size, a attention heads). It is
an estimate: the check refuses only steps that need more than what is free.
"""

from pathlib import Path

import torch
from transformers import PreTrainedModel

from gti.errors import GtiError

GIB = 2**30


def step_bytes(model: PreTrainedModel, parameters: list[torch.nn.Parameter], rows: int, tokens: int,
               precision: str, move_weights: bool = False) -> dict[str, int]:
    """Bytes a training step needs beyond the loaded weights, by part.

    Args:
        parameters: the trained parameters.
        rows, tokens: the largest micro-batch: rows of `tokens` tokens each.
        precision: `float32` or `bfloat16` (activations' width).
        move_weights: the weights are not on the training device yet and count too.
    """
    config = model.config
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 0)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 0)
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", 1)
    trained = sum(p.numel() for p in {id(p): p for p in parameters}.values())
    width = 2 if precision == "bfloat16" else 4
    activations = layers * rows * tokens * hidden * (34 + 5 * heads * tokens / max(hidden, 1)) * width / 2
    parts = {"gradients": trained * 4, "optimizer": trained * 8, "activations": int(activations)}
    if move_weights:
        parts["weights"] = sum(p.numel() * p.element_size() for p in model.parameters())
    return parts


def free_bytes(device: torch.device) -> int | None:
    """Free memory on `device` (CUDA: free device memory; CPU: MemAvailable), None when unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_fits(model: PreTrainedModel, parameters: list[torch.nn.Parameter], rows: int, tokens: int,
               precision: str, device: torch.device, description: str) -> None:
    """Raise a GtiError with advice when the planned step needs more memory than `device` has free."""
    free = free_bytes(device)
    if free is None:
        return
    move = next(model.parameters()).device != device
    parts = step_bytes(model, parameters, rows, tokens, precision, move_weights=move)
    needed = sum(parts.values())
    if needed > free:
        shown = ", ".join(f"{name} {value / GIB:.1f}" for name, value in parts.items())
        raise GtiError(
            f"{description}: a step needs about {needed / GIB:.1f} GiB ({shown}; micro-batch {rows} x {tokens} "
            f"tokens) but {free / GIB:.1f} GiB is free on {device}; lower the batch size, raise train.grad_accum, "
            "shorten prompts (prompts.history, prompts.max_text_tokens) or use finetune.mode = \"lora\""
        )
