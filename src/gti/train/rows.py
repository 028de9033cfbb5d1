"""The new SID rows as an AdamW parameter group of their own, inside matrices whose other rows train at another rate."""

import torch


class RowGroup:
    """Rows of some weight matrices that train at their own peak learning rate (`finetune.new_rows_lr`).

    The rows may belong to a matrix whose other rows train at the loop's rate (tied input/output
    embeddings are one tensor), which a parameter group cannot express. So the rows get
    parameters of their own, one (R, H) copy per matrix, in an AdamW parameter group at `lr`: after
    the gradient-norm clip (over everything that trains, as with real groups) each step moves the
    rows' gradient from the matrix to those copies, AdamW steps both groups (the matrix's rows see
    a zero gradient, so with weight decay 0 their moments and update are exactly zero), and the
    copies are written back into the matrix. The rows are therefore updated exactly as an AdamW
    parameter group of their own at `lr` would update them (same betas, eps, warmup and schedule
    factor), and everything else exactly as before. Under LoRA the old rows get no gradient, so
    only these rows of the matrix move. The copies are saved in checkpoints with their moments.

    Attributes:
        matrices: the weight matrices holding the rows (the input embedding, and the output one when untied).
        ids: (R,) row indices, the same in every matrix.
        lr: the rows' peak learning rate.
    """

    def __init__(self, matrices: list[torch.nn.Parameter], ids: torch.Tensor, lr: float):
        self.matrices, self.ids, self.lr = list(matrices), ids, lr
        self.rows: list[torch.nn.Parameter] = []

    def prepare(self, device: torch.device) -> list[torch.nn.Parameter]:
        """The rows' own parameters, copied from the matrices onto `device` (the optimizer steps these)."""
        self.rows = [torch.nn.Parameter(weight.detach()[self.ids.to(weight.device)].to(device).clone())
                     for weight in self.matrices]
        return self.rows

    def named(self) -> dict[str, torch.nn.Parameter]:
        """The rows' parameters by a checkpoint name."""
        return {f"new_rows.matrix_{index}": rows for index, rows in enumerate(self.rows)}

    def take_gradients(self) -> None:
        """Move the rows' (clipped) gradient from the matrices to the rows' parameters."""
        for weight, rows in zip(self.matrices, self.rows):
            ids = self.ids.to(weight.device)
            rows.grad = None if weight.grad is None else weight.grad[ids].to(rows.device).clone()
            if weight.grad is not None:
                weight.grad[ids] = 0.0

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the rows' parameters into the matrices (after a step, a resume or restoring the best weights)."""
        for weight, rows in zip(self.matrices, self.rows):
            weight[self.ids.to(weight.device)] = rows.to(weight.device, weight.dtype)
