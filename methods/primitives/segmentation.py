"""Temporal segmentation: HoliTom's global dynamic programme and FastVID's DySeg.

Segments are inclusive ``(start, end)`` frame pairs covering ``0..F-1`` in order.
``sim`` is always the (F-1, N) consecutive-frame cosine of the same position
(``similarity.consecutive_cosine``); ``sim[t]`` is the transition between frames t and t+1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass(frozen=True)
class Segmentation:
    segments: list[tuple[int, int]]  # inclusive (start, end), in time order
    total_reduced: int               # tokens saved by keeping one copy per static position


def _check_sim(sim: torch.Tensor) -> None:
    if sim.dim() != 2:
        raise ValueError(f"sim must be (F-1, N), got shape {tuple(sim.shape)}")


def _check_tau(tau: float) -> None:
    if not 0.0 < float(tau) < 1.0:
        raise ValueError(f"tau (temporal similarity threshold) must be in (0, 1), got {tau!r}")


def failure_prefix(sim: torch.Tensor, tau: float) -> torch.Tensor:
    """(F, N) int32: prefix[t, n] = transitions before frame t at which position n is not static
    (sim <= tau). Position n is static over the window [s, e] iff prefix[s, n] == prefix[e, n]."""
    _check_sim(sim)
    fail = (sim <= tau).to(torch.int32)                                   # (F-1, N)
    return torch.cat([fail.new_zeros((1, sim.shape[1])), fail.cumsum(0)])


def window_counts(prefix: torch.Tensor) -> torch.Tensor:
    """(F, F) int64 static counts of every window from a ``failure_prefix``; zero where e <= s."""
    F = prefix.shape[0]
    same = prefix.unsqueeze(1) == prefix.unsqueeze(0)                   # [s, e, n]
    counts = same.sum(-1, dtype=torch.int64)
    upper = torch.ones((F, F), dtype=torch.bool, device=prefix.device).triu(1)
    return counts * upper


def static_counts(sim: torch.Tensor, tau: float) -> torch.Tensor:
    """count[s, e] = number of positions static over window [s, e] (all sim[s..e-1] > tau).

    (F, F) int64; zero where e <= s. Vectorised over positions with a prefix count of failures:
    a position is static on [s, e] iff no failure falls in transitions s..e-1.
    """
    return window_counts(failure_prefix(sim, tau))


def window_gain(counts: torch.Tensor, max_window: int = 1024) -> torch.Tensor:
    """gain[s, e] = counts[s, e] * (e - s), zero for windows longer than ``max_window`` frames."""
    F = counts.shape[0]
    ar = torch.arange(F, device=counts.device)
    length = (ar.unsqueeze(0) - ar.unsqueeze(1)).clamp(min=0)            # [s, e] = e - s
    return (counts * length).masked_fill(length + 1 > max_window, 0)


def static_window_gain(sim: torch.Tensor, tau: float, max_window: int = 1024) -> torch.Tensor:
    """gain[s, e] = static_counts[s, e] * (e - s): tokens saved by merging window [s, e]
    (one copy of each static position instead of e - s + 1). Zero for e <= s and for windows
    longer than ``max_window`` frames. (F, F) int64."""
    return window_gain(static_counts(sim, tau), max_window)


def temporal_segments(sim: torch.Tensor, tau: float, max_window: int = 1024) -> Segmentation:
    """HoliTom Stage I: the segmentation maximising the total static-merge gain.

    dp[i] = max(dp[i-1], max_{w=2..min(i+1, max_window)} dp[i-w] + gain[i-w+1, i]). As in the
    official code, windows are tried in increasing length and only a strictly larger value
    replaces the current best, so ties go to the singleton, then to the shortest window.
    O(F^2) scalar steps on a precomputed gain table (F <= a few hundred).
    """
    _check_sim(sim)
    _check_tau(tau)
    if int(max_window) < 1:
        raise ValueError(f"max_window must be >= 1, got {max_window!r}")
    return segments_from_gain(static_window_gain(sim, tau, max_window).tolist(), max_window)


def segments_from_gain(gain: list[list[int]], max_window: int = 1024) -> Segmentation:
    """``temporal_segments``' dynamic programme on a gain table already read to the host (F x F
    nested lists of ints), so callers can read it together with other tables in one transfer."""
    F = len(gain)
    dp = [0] * F
    prev = [0] * F
    for i in range(F):
        best = dp[i - 1] if i > 0 else 0
        best_start = i
        for w in range(2, min(i + 1, max_window) + 1):
            j = i - w
            val = (dp[j] if j >= 0 else 0) + gain[j + 1][i]
            if val > best:
                best, best_start = val, j + 1
        dp[i], prev[i] = best, best_start
    segments = []
    i = F - 1
    while i >= 0:
        segments.append((prev[i], i))
        i = prev[i] - 1
    return Segmentation(segments=segments[::-1], total_reduced=int(dp[F - 1]))


def static_mask(sim: torch.Tensor, start: int, end: int, tau: float) -> torch.Tensor:
    """BoolTensor (N,): positions whose consecutive similarities over [start, end] all exceed tau.
    A single-frame window has no static positions (all False)."""
    _check_sim(sim)
    F = sim.shape[0] + 1
    if not 0 <= start <= end < F:
        raise ValueError(f"window ({start}, {end}) must satisfy 0 <= start <= end < F={F}")
    if start == end:
        return torch.zeros(sim.shape[1], dtype=torch.bool, device=sim.device)
    return (sim[start:end] > tau).all(dim=0)


def paper_tau(retention: float, tau: Optional[float] = None) -> float:
    """The static-similarity threshold the HoliTom and Tango run scripts use: 0.65 at 10 %
    retention (or below), 0.80 otherwise [code: both repos' scripts]; an explicit ``tau`` wins."""
    if tau is not None:
        return float(tau)
    return 0.65 if retention <= 0.10 + 1e-9 else 0.80


def rescaled_retention(r: float, total_reduced: int, total_tokens: int) -> float:
    """HoliTom budget re-scaling: r' = min(r / ((T - reduced) / T), 1)."""
    if total_tokens <= 0 or not 0 <= total_reduced < total_tokens:
        raise ValueError(f"need 0 <= total_reduced < total_tokens, got {total_reduced}, {total_tokens}")
    return min(r / ((total_tokens - total_reduced) / total_tokens), 1.0)


def dyseg_segments(global_sim: torch.Tensor, c: int, tau: float) -> list[tuple[int, int]]:
    """FastVID DySeg: cut at the ``c - 1`` lowest-similarity transitions and at every transition
    with similarity < tau. global_sim (F-1,) is the cosine of consecutive frames' global features.
    """
    if global_sim.dim() != 1:
        raise ValueError(f"global_sim must be (F-1,), got shape {tuple(global_sim.shape)}")
    if c < 1:
        raise ValueError(f"c (minimum number of segments) must be >= 1, got {c}")
    T = global_sim.shape[0]
    cut = global_sim < tau
    n_low = min(c - 1, T)
    if n_low > 0:
        cut = cut.index_fill(0, torch.topk(global_sim, n_low, largest=False).indices, True)
    # the one host read: the number of segments is the output's size
    cuts = [t for t, is_cut in enumerate(cut.tolist()) if is_cut]  # cut after frame t
    starts = [0] + [t + 1 for t in cuts]
    ends = cuts + [T]
    return list(zip(starts, ends))
