"""Assignment and merge rules shared by HoliTom, Tango and FastVID.

All merges are vectorised with ``index_add_``; none loops over tokens.
"""
from __future__ import annotations

from typing import Literal

import torch

Metric = Literal["euclidean", "cosine"]


def assign_nearest(x: torch.Tensor, centers: torch.Tensor, metric: Metric = "euclidean") -> torch.Tensor:
    """Index of the nearest centre for every point: x (..., M, D), centers (..., C, D) -> (..., M).

    ``euclidean``: smallest L2 distance (|c|^2 - 2 x.c, the |x|^2 term does not change argmin);
    ``cosine``: largest cosine similarity. Ties go to the lowest centre index.
    """
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"unknown metric {metric!r}; allowed: ['euclidean', 'cosine']")
    if centers.shape[-2] == 0:
        raise ValueError("assign_nearest needs at least one centre")
    xf, cf = x.float(), centers.float()
    if metric == "cosine":
        xf = torch.nn.functional.normalize(xf, dim=-1)
        cf = torch.nn.functional.normalize(cf, dim=-1)
        return torch.argmax(xf @ cf.transpose(-1, -2), dim=-1)
    score = (cf * cf).sum(-1).unsqueeze(-2) - 2.0 * (xf @ cf.transpose(-1, -2))
    return torch.argmin(score, dim=-1)


def scatter_sum(values: torch.Tensor, index: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group sum and count: values (M, D), index (M,) in [0, size) -> ((size, D), (size,) long)."""
    if values.dim() != 2 or index.shape != (values.shape[0],):
        raise ValueError(f"need values (M, D) and index (M,), got {tuple(values.shape)} and {tuple(index.shape)}")
    sums = values.new_zeros((size, values.shape[1])).index_add_(0, index, values)
    counts = torch.zeros(size, dtype=torch.long, device=values.device).index_add_(
        0, index, torch.ones_like(index))
    return sums, counts


def scatter_mean(values: torch.Tensor, index: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group mean (zeros for empty groups) and count."""
    sums, counts = scatter_sum(values, index, size)
    return sums / counts.clamp(min=1).unsqueeze(-1).to(sums.dtype), counts


def beta_blend(center: torch.Tensor, members_mean: torch.Tensor, counts: torch.Tensor,
               beta: float) -> torch.Tensor:
    """HoliTom static merge: beta * centre + (1 - beta) * mean(members); a centre without members
    is kept unchanged. ``members_mean`` excludes the centre itself."""
    blended = beta * center + (1.0 - beta) * members_mean
    return torch.where((counts > 0).unsqueeze(-1), blended, center)


def weighted_anchor_merge(anchor: torch.Tensor, members_mean: torch.Tensor, counts: torch.Tensor,
                          beta: float) -> torch.Tensor:
    """Tango / FastVID merge: w * anchor + (1 - w) * mean with w = max(1 / count, beta).

    ``counts`` is whatever the method divides by: Tango counts every assigned token including the
    anchor itself; FastVID uses count + 1 (pass ``counts + 1``). count 0 keeps the anchor.
    """
    c = counts.to(anchor.dtype).unsqueeze(-1)
    w = torch.where(c > 0, torch.clamp(1.0 / c.clamp(min=1), min=beta), torch.ones_like(c))
    return w * anchor + (1.0 - w) * members_mean


def _check_merge_args(kept: torch.Tensor, dropped: torch.Tensor, target: torch.Tensor) -> None:
    if kept.dim() != 2 or dropped.dim() != 2 or kept.shape[1] != dropped.shape[1]:
        raise ValueError(f"need kept (K, D) and dropped (P, D), got {tuple(kept.shape)} and {tuple(dropped.shape)}")
    if target.shape != (dropped.shape[0],):
        raise ValueError(f"target must be ({dropped.shape[0]},), got {tuple(target.shape)}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= kept.shape[0]):
        raise ValueError(f"target indices must lie in [0, {kept.shape[0]})")


def running_pairwise_merge(kept: torch.Tensor, dropped: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """HoliTom Stage III semantics without a loop: equivalent to, for p = 0..P-1 in order,
    ``kept[target[p]] = (kept[target[p]] + dropped[p]) / 2``.

    For a target receiving members m_1..m_c in that order the result is
    h / 2^c + sum_i m_i / 2^(c - i + 1); member weights come from each member's rank within its
    target (stable sort keeps the sequential order). Weights underflow to 0 for c > ~150 in fp32,
    which the sequential loop also does.
    """
    _check_merge_args(kept, dropped, target)
    K, P = kept.shape[0], dropped.shape[0]
    if P == 0:
        return kept.clone()
    dtype = torch.promote_types(kept.dtype, torch.float32)
    order = torch.sort(target, stable=True).indices
    sorted_t = target[order]
    counts = torch.zeros(K, dtype=torch.long, device=kept.device).index_add_(
        0, target, torch.ones_like(target))
    first = torch.cumsum(counts, 0) - counts                       # first sorted slot of each target
    rank_sorted = torch.arange(P, device=kept.device) - first[sorted_t]   # 0-based arrival rank
    rank = torch.empty_like(rank_sorted).scatter_(0, order, rank_sorted)
    c_of = counts[target]
    w_member = torch.exp2(-(c_of - rank).to(dtype))               # 2^-(c - i + 1) with i = rank + 1
    w_kept = torch.exp2(-counts.to(dtype))
    out = kept.to(dtype) * w_kept.unsqueeze(-1)
    out.index_add_(0, target, dropped.to(dtype) * w_member.unsqueeze(-1))
    return out.to(kept.dtype)


def mean_merge(kept: torch.Tensor, dropped: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(h + sum of assigned dropped tokens) / (1 + count) for every kept token."""
    _check_merge_args(kept, dropped, target)
    sums, counts = scatter_sum(dropped, target, kept.shape[0])
    return (kept + sums) / (1 + counts).unsqueeze(-1).to(kept.dtype)


def blend_merge(kept: torch.Tensor, dropped: torch.Tensor, target: torch.Tensor,
                keep_weight: float = 0.6) -> torch.Tensor:
    """Tango's intra-LLM rule: keep_weight * h + (1 - keep_weight) * mean_merge(h, members)."""
    pooled = mean_merge(kept, dropped, target)
    return keep_weight * kept + (1.0 - keep_weight) * pooled
