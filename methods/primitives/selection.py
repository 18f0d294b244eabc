"""Top-k selection helpers (last dimension), with deterministic ascending index order."""
from __future__ import annotations

import math

import torch


def topk_indices(scores: torch.Tensor, k: int, *, sort_indices: bool = True) -> torch.Tensor:
    """Indices of the ``k`` largest entries along the last dim of ``scores`` (..., N).

    With ``sort_indices`` the result is sorted ascending (original order preserved), otherwise it
    is in descending score order. Returns a LongTensor (..., k).
    """
    n = scores.shape[-1]
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}] for scores with last dim {n}, got {k}")
    idx = torch.topk(scores, k, dim=-1, largest=True, sorted=True).indices
    if sort_indices:
        idx = torch.sort(idx, dim=-1).values
    return idx


def expanded_candidates(scores: torch.Tensor, k: int, alpha: float, *,
                        sort_indices: bool = True) -> torch.Tensor:
    """Tango's expanded candidate set: the top ``floor(alpha * k)`` entries (capped at N).

    alpha >= 1 is the expansion coefficient (Tango uses 1.5).
    """
    if alpha < 1.0:
        raise ValueError(f"alpha (expansion coefficient) must be >= 1, got {alpha}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    kk = min(int(math.floor(alpha * k)), scores.shape[-1])
    return topk_indices(scores, kk, sort_indices=sort_indices)
