"""RQ-VAE (as in TIGER and LC-Rec): an MLP autoencoder whose latent is residual-quantized.

The encoder maps an item embedding x (D) to a latent e; level l quantizes the residual
r_l (r_0 = e) to its nearest code c_l and passes r_{l+1} = r_l - c_l on; the decoder
reconstructs x from the quantized latent sum_l c_l, with the straight-through estimator
carrying the decoder's gradient to the encoder. Loss per batch:

    MSE(x, x_hat) + sum_l [ MSE(c_l, sg(r_l)) + beta * MSE(r_l, sg(c_l)) ]

Codebooks start as k-means of the first batch's residuals; a code unused for a whole
epoch is re-seeded at a random residual of the epoch's last batch. With `sinkhorn`, the
last level assigns by a Sinkhorn-balanced transport plan instead of the nearest code,
in training and for the final codes, which spreads items evenly over that level.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gti.errors import GtiError
from gti.sid.quantize import kmeans, squared_distances

BETA = 0.25
KMEANS_ITERS = 20
SINKHORN_EPSILON = 0.003
SINKHORN_ITERS = 10


@dataclass
class RqVaeResult:
    """What `rq_vae` learned about a catalog.

    Attributes:
        codes: (N, L) int64 codes, level 0 first.
        codebooks: L codebooks of shape (K, latent) float32.
        latent: (N, latent) float32 encoder outputs e, the vectors the codebooks quantize.
        reconstruction: (N, D) float32 decoder outputs from the quantized latents.
    """

    codes: np.ndarray
    codebooks: list[np.ndarray]
    latent: np.ndarray
    reconstruction: np.ndarray


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for index, (width_in, width_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(width_in, width_out))
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def sinkhorn_assign(distances: torch.Tensor, epsilon: float = SINKHORN_EPSILON, iters: int = SINKHORN_ITERS) -> torch.Tensor:
    """Near-uniform hard assignment of N points to K codes by Sinkhorn-Knopp.

    Distances are rescaled to [-1, 1], so the plan exp(-d / epsilon) stays within float64
    range (about 1e+-145 for the default epsilon); it is then alternately normalized so
    every code receives mass 1/K and every point gives mass 1/N; each point takes the code
    of its largest plan entry.

    Args:
        distances: (N, K) squared distances from points to codes.
        epsilon: entropic temperature; smaller follows the distances more closely.
        iters: number of column/row normalization rounds.

    Returns:
        (N,) int64 code of each point.
    """
    d = distances.double()
    middle = (d.max() + d.min()) / 2
    amplitude = (d.max() - middle).clamp(min=1e-12)
    plan = torch.exp(-((d - middle) / amplitude) / epsilon)  # (N, K)
    n_points, n_codes = d.shape
    for _ in range(iters):
        plan /= plan.sum(0, keepdim=True) * n_codes  # each code receives 1/K
        plan /= plan.sum(1, keepdim=True) * n_points  # each point gives 1/N
    return plan.argmax(1)


class _RqVae(nn.Module):
    """Encoder, L codebooks and decoder; `quantize` does the residual assignment."""

    def __init__(self, dim: int, hidden: tuple[int, ...], latent: int, levels: int, codes: int, sinkhorn: bool):
        super().__init__()
        self.encoder = _mlp([dim, *hidden, latent])
        self.decoder = _mlp([latent, *reversed(hidden), dim])
        self.codebooks = nn.Parameter(torch.zeros(levels, codes, latent))  # (L, K, latent)
        self.sinkhorn = sinkhorn

    def quantize(self, e: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Residual-quantize latents e (B, latent).

        Returns:
            (B, L) codes, the per-level residuals r_l (B, latent) and the chosen codes c_l (B, latent).
        """
        residual = e
        assignments, residuals, chosen = [], [], []
        levels = self.codebooks.shape[0]
        for level in range(levels):
            distances = squared_distances(residual.detach(), self.codebooks[level].detach())  # (B, K)
            if self.sinkhorn and level == levels - 1:
                assignment = sinkhorn_assign(distances)
            else:
                assignment = distances.argmin(1)
            # a one-hot product instead of indexing: its backward is a matrix product, not a scatter-add,
            # whose accumulation order (hence the result) varies from run to run on CPU
            one_hot = torch.nn.functional.one_hot(assignment, self.codebooks.shape[1]).to(residual.dtype)  # (B, K)
            code = one_hot @ self.codebooks[level]  # (B, latent)
            assignments.append(assignment)
            residuals.append(residual)
            chosen.append(code)
            residual = residual - code.detach()
        return torch.stack(assignments, 1), residuals, chosen  # (B, L)

    @torch.no_grad()
    def init_codebooks(self, x: torch.Tensor, generator: torch.Generator) -> None:
        """Set each level's codebook to k-means of that level's residuals on batch x."""
        residual = self.encoder(x)  # (B, latent)
        for level in range(self.codebooks.shape[0]):
            centroids, assignment = kmeans(residual, self.codebooks.shape[1], generator, KMEANS_ITERS)
            self.codebooks[level] = centroids
            residual = residual - centroids[assignment]


def _loss(model: _RqVae, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Training loss on a batch, plus its (B, L) codes and per-level residuals."""
    e = model.encoder(x)  # (B, latent)
    assignment, residuals, chosen = model.quantize(e)
    quantized = torch.stack(chosen).sum(0)  # (B, latent)
    straight_through = e + (quantized - e).detach()
    loss = nn.functional.mse_loss(model.decoder(straight_through), x)
    for residual, code in zip(residuals, chosen):
        loss = loss + nn.functional.mse_loss(code, residual.detach()) + BETA * nn.functional.mse_loss(residual, code.detach())
    return loss, assignment, residuals


def rq_vae(
    x: np.ndarray,
    levels: int,
    codes: int,
    seed: int = 0,
    epochs: int = 100,
    batch_size: int = 1024,
    lr: float = 1e-3,
    hidden: tuple[int, ...] = (256, 128),
    latent: int = 32,
    sinkhorn: bool = False,
) -> RqVaeResult:
    """Train an RQ-VAE on item embeddings and return every item's codes.

    Deterministic for a seed on one machine (CPU, same thread count); the global torch
    random state is left untouched.

    Args:
        x: (N, D) item embeddings.
        levels: number of quantizer levels L.
        codes: codebook size per level K.
        seed: seed of weight init, k-means, shuffling and dead-code resets.
        epochs: passes over the catalog.
        batch_size: items per step (raised to K so the first batch can seed K codes).
        lr: AdamW learning rate.
        hidden: widths of the encoder's hidden layers (the decoder mirrors them).
        latent: width of the quantized latent.
        sinkhorn: balance the last level with Sinkhorn assignment (training and final codes).

    Returns:
        The codes, codebooks, latents and reconstructions (see `RqVaeResult`).

    Raises:
        GtiError: levels, codes or epochs below 1, or fewer items than codes.
    """
    if levels < 1 or codes < 1 or epochs < 1:
        raise GtiError(f"levels, codes and epochs must be at least 1, got {levels}, {codes}, {epochs}")
    n_items = len(x)
    if n_items < codes:
        raise GtiError(
            f"the catalog has {n_items} items but the codebook asks for {codes} codes; use fewer codes (--codes)"
        )
    data = torch.as_tensor(np.asarray(x), dtype=torch.float32)  # (N, D)
    batch_size = min(n_items, max(batch_size, codes))
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = _RqVae(data.shape[1], tuple(hidden), latent, levels, codes, sinkhorn)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for epoch in range(epochs):
        order = torch.randperm(n_items, generator=generator)
        used = torch.zeros(levels, codes, dtype=torch.bool)
        for start in range(0, n_items, batch_size):
            batch = data[order[start : start + batch_size]]  # (B, D)
            if epoch == 0 and start == 0:
                model.init_codebooks(batch, generator)
            loss, assignment, residuals = _loss(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            used[torch.arange(levels).unsqueeze(0), assignment] = True  # (B, L) codes marked per level
        _reset_dead_codes(model, used, residuals, generator)
    with torch.no_grad():
        e = model.encoder(data)  # (N, latent)
        assignment, _, chosen = model.quantize(e)
        reconstruction = model.decoder(torch.stack(chosen).sum(0))  # (N, D)
    return RqVaeResult(
        codes=assignment.numpy(),
        codebooks=[book.detach().numpy().copy() for book in model.codebooks],
        latent=e.numpy(),
        reconstruction=reconstruction.numpy(),
    )


@torch.no_grad()
def _reset_dead_codes(model: _RqVae, used: torch.Tensor, residuals: list[torch.Tensor], generator: torch.Generator) -> None:
    """Move every code unused this epoch onto a random residual of its level from the last batch."""
    for level, residual in enumerate(residuals):
        dead = (~used[level]).nonzero().squeeze(1)  # (n_dead,)
        if len(dead):
            picks = torch.randint(len(residual), (len(dead),), generator=generator)
            model.codebooks[level, dead] = residual[picks].detach()
