"""Merging the tokens that inner-LLM pruning drops into the ones it keeps.

Each dropped token joins its most cosine-similar kept token (hidden states entering layer K,
similarities computed once before any update), then the kept tokens are updated with one of the
vectorised rules of :mod:`methods.primitives.merge`:

- ``mean``: ``(h + sum m_i) / (1 + c)``;
- ``blend`` (Tango intra-LLM): ``w * h + (1 - w) * mean``, ``w = 0.6``;
- ``running-pairwise`` (HoliTom Stage III): the sequential ``h <- (h + m_i) / 2`` in closed form.
"""
from __future__ import annotations

import torch

from methods.primitives.merge import assign_nearest, blend_merge, mean_merge, running_pairwise_merge


def assign_to_kept(h: torch.Tensor, kept: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor:
    """Index into ``kept`` (0..k-1) of the most cosine-similar kept token for each dropped token."""
    return assign_nearest(h[dropped], h[kept], metric="cosine")


def merge_dropped(h: torch.Tensor, kept: torch.Tensor, dropped: torch.Tensor, kind: str,
                  blend_weight: float = 0.6) -> torch.Tensor:
    """Merged features of the kept tokens, (k, D); ``h`` is (L, D), ``kept``/``dropped`` index it."""
    hk = h[kept]
    if kind == "drop" or dropped.numel() == 0 or kept.numel() == 0:
        return hk
    target = assign_to_kept(h, kept, dropped)
    hd = h[dropped]
    if kind == "mean":
        out = mean_merge(hk.float(), hd.float(), target)
    elif kind == "blend":
        out = blend_merge(hk.float(), hd.float(), target, keep_weight=blend_weight)
    elif kind == "running-pairwise":
        out = running_pairwise_merge(hk.float(), hd.float(), target)
    else:
        raise ValueError(f"unknown merge {kind!r}; allowed: drop, mean, blend, running-pairwise")
    return out.to(h.dtype)
