"""Left padding of token-id lists, shared by training batches and decoding.

Left padding puts every sequence's end at the last position, so answers and the next
token to decode line up across a batch. Position ids count real tokens only.
"""

import torch

from gti.errors import GtiError


def left_pad(
    sequences: list[list[int]], pad_token_id: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, T) input ids, attention mask and position ids of left-padded sequences."""
    if any(len(sequence) == 0 for sequence in sequences):
        raise GtiError("token sequences must be non-empty")
    width = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        input_ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
        mask[row, width - len(sequence) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)
    return input_ids.to(device), mask.to(device), positions.to(device)
