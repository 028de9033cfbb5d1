"""SID log-probabilities in float32, with equal rows giving equal scores by construction.

Beam search and pool scoring rank items by the sum of their SID tokens' log-probabilities.
Two things made those sums depend on the machine and on the batch:

- Under bfloat16 autocast the LM head's logits came out in bfloat16 (a step of about 0.06 at
  |logit| ~ 10), so a different batch shape, hence a different GEMM kernel, created or broke ties.
- A matrix product does not promise that equal rows (a mean-initialized model's collapsed SID
  rows) give bit-equal outputs: kernels treat edge tiles differently, and on some CPUs they came out
  a few ulps apart, so rounding noise instead of the tie rule ordered equal items.

`SidHead` takes the model's final hidden state (after the last norm) in float32, computes the
log-normalizer over the whole vocabulary in float32 with autocast off, and scores each *distinct*
pair of (hidden row, SID token row) exactly once, scattering the results back: equal rows share one
float32 number, whatever kernel computed it. `hidden_states` runs the model's decoder (not the
LM head) so the full-vocabulary logits are computed once, here, in float32.
"""

import torch
from torch import nn
from transformers import PreTrainedModel

from gti.errors import GtiError


def decoder(model: PreTrainedModel) -> nn.Module:
    """The model's body: input ids to final hidden states (after the last norm), without the LM head."""
    body = model.get_decoder() if hasattr(model, "get_decoder") else None
    if body is None or body is model:
        raise GtiError(f"{type(model).__name__} exposes no decoder body (get_decoder()); SID scoring needs one")
    return body


def hidden_states(model: PreTrainedModel, **inputs) -> tuple[torch.Tensor, object]:
    """(B, T, D) final hidden states of the model's decoder and its output (for the cache)."""
    out = decoder(model)(**inputs)
    return out.last_hidden_state, out


class SidHead:
    """float32 log-probabilities of the SID tokens of each level, from final hidden states.

    Args:
        model: the causal LM; its output embedding (LM head) must be a plain linear map, optionally
            with a bias (logit soft-capping or scaling, as in Gemma 2 or Cohere, is refused).
        token_ids: per level, the (K_l,) token ids of its codes (see `gti.lm.vocab.level_token_ids`).
    """

    def __init__(self, model: PreTrainedModel, token_ids: list[torch.Tensor]):
        config = model.config
        for name in ("final_logit_softcapping", "logit_scale"):
            if getattr(config, name, None) not in (None, 1, 1.0):
                raise GtiError(f"{type(model).__name__} transforms its logits ({name}); SID scoring supports plain LM heads")
        head = model.get_output_embeddings()
        if head is None or not hasattr(head, "weight"):
            raise GtiError(f"{type(model).__name__} has no output embedding to score SID tokens with")
        device = head.weight.device
        self.weight = head.weight.detach().float()  # (V, D); no copy when the model is float32
        bias = getattr(head, "bias", None)
        self.bias = None if bias is None else bias.detach().float()  # (V,)
        self.rows, self.inverse = [], []
        for ids in token_ids:
            ids = ids.to(device)
            rows = self.weight[ids]  # (K, D)
            if self.bias is not None:
                rows = torch.cat([rows, self.bias[ids][:, None]], dim=1)  # (K, D+1)
            unique, inverse = torch.unique(rows, dim=0, return_inverse=True)  # (U, D[+1]), (K,)
            self.rows.append(unique)
            self.inverse.append(inverse)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(R, V) float32 logits over the whole vocabulary for (R, D) final hidden states, autocast off."""
        with torch.autocast(hidden.device.type, enabled=False):
            logits = hidden.float() @ self.weight.T
            return logits if self.bias is None else logits + self.bias

    def log_probs(self, hidden: torch.Tensor, level: int) -> torch.Tensor:
        """(R, K_level) float32 log-probabilities of the level's SID tokens for (R, D) final hidden states.

        Rows of `hidden` that are bit-equal get bit-equal outputs, and so do tokens whose head rows
        (and biases) are bit-equal: each distinct pair is computed once.
        """
        with torch.autocast(hidden.device.type, enabled=False):
            unique, which = torch.unique(hidden.float(), dim=0, return_inverse=True)  # (H, D), (R,)
            log_norm = torch.logsumexp(self.logits(unique), dim=-1)  # (H,)
            rows = self.rows[level]
            if self.bias is not None:
                scores = unique @ rows[:, :-1].T + rows[:, -1]  # (H, U)
            else:
                scores = unique @ rows.T  # (H, U)
            return (scores - log_norm[:, None])[which][:, self.inverse[level]]  # (R, K)


def input_row_classes(model: PreTrainedModel, token_ids: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per level, (K_l,) class of each code's input embedding row: codes with bit-equal rows share a class.

    Feeding any code of a class gives the model the same input, so beam search computes one forward
    row per class (see `gti.rec.beam`).
    """
    weight = model.get_input_embeddings().weight.detach()
    classes = []
    for ids in token_ids:
        _, inverse = torch.unique(weight[ids.to(weight.device)], dim=0, return_inverse=True)  # (K,)
        classes.append(inverse.cpu())
    return classes
