"""FastVID (Shen et al., NeurIPS'25): DySeg + STPrune (ATS salient selection + DTM merging).

Per docs/sources.md#fastvid (defaults from FastVID's ``scripts/eval.sh``):
- DySeg: cut the video at the c-1 lowest consecutive global-feature similarities and at every
  transition below tau (c = 8, tau = 0.9).
- STPrune per frame with retention r: ``retained`` tokens, of which ``retained - floor(retained*d)``
  salient ones by top-k MAP-head attention (d = 0.4); the rest of the budget is contextual.
- DTM: a DPC-KNN density score (k = 4, distances / sqrt(D), the primitives' "holitom" variant) on
  each frame's non-salient tokens; inside a segment only every p-th frame counted from the segment
  end hosts anchors (p = 4), each anchor frame taking segment_context // n_anchor_frames of its
  densest tokens; every non-salient token of the segment joins its most cosine-similar anchor and
  anchor <- w*anchor + (1-w)*mean(assigned), w = max(1/(count+1), beta = 0.6).
Kept tokens keep their original position ids.

Choices not pinned by the reference (documented so they can be revisited):
- ``retained = max(round(N * r), 1)`` tokens per frame.
- "assigned" includes the anchor itself (anchors are forced into their own cluster), so count >= 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from methods.base import Method, pre_llm_tokens
from methods.primitives import (
    assign_nearest, dpc_knn_scores_batched, dyseg_segments, make_generator, scatter_mean,
    topk_indices, weighted_anchor_merge,
)
from methods.types import Reduction, VideoTokens, check_retention

__all__ = ["FastVIDConfig", "fastvid_reduce", "fastvid_frame_budget", "anchor_frames"]

SALIENCY = "map_head_attn"


@dataclass(frozen=True)
class FastVIDConfig:
    retention: float
    c: int = 8
    tau: float = 0.9
    d: float = 0.4
    k: int = 4
    p: int = 4
    beta: float = 0.6
    seed: int = 0

    def __post_init__(self) -> None:
        check_retention(self.retention)
        if self.c < 1:
            raise ValueError(f"c (minimum number of segments) must be >= 1, got {self.c}")
        if not 0.0 < self.tau < 1.0:
            raise ValueError(f"tau must be in (0, 1), got {self.tau}")
        if not 0.0 <= self.d < 1.0:
            raise ValueError(f"d (contextual share) must be in [0, 1), got {self.d}")
        if self.k < 1 or self.p < 1:
            raise ValueError(f"k and p must be >= 1, got k={self.k}, p={self.p}")
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")


def fastvid_frame_budget(n_tokens: int, retention: float, d: float) -> tuple[int, int]:
    """(salient, contextual) tokens per frame: retained = max(round(N r), 1), contextual = floor(retained d)."""
    retained = max(round(n_tokens * retention), 1)
    ctx = math.floor(retained * d)
    return retained - ctx, ctx


def anchor_frames(start: int, end: int, p: int) -> list[int]:
    """Frames of segment [start, end] that host DTM anchors: every p-th counted from the end, ascending."""
    return list(range(end, start - 1, -p))[::-1]


def fastvid_reduce(tokens: VideoTokens, cfg: FastVIDConfig) -> Reduction:
    X = tokens.features
    F, N, D = X.shape
    sal = tokens.require(SALIENCY).float()
    g = tokens.global_features
    if g is None:
        raise KeyError("FastVID needs tokens.global_features (the MAP-head pooled output per frame) "
                       "for DySeg but the adapter provided none")
    if F > 1:
        gn = torch.nn.functional.normalize(g.float(), dim=-1)
        segments = dyseg_segments((gn[:-1] * gn[1:]).sum(-1), cfg.c, cfg.tau)
    else:
        segments = [(0, 0)]
    n_sal, n_ctx = fastvid_frame_budget(N, cfg.retention, cfg.d)
    n_sal = min(n_sal, N)
    frame_base = torch.arange(F, device=X.device)[:, None] * N

    # ATS: per-frame top-k saliency, all frames at once.
    sal_idx = topk_indices(sal, n_sal, sort_indices=True)                 # (F, n_sal)
    idx_parts = [(sal_idx + frame_base).flatten()]
    feat_parts = [torch.gather(X, 1, sal_idx.unsqueeze(-1).expand(F, n_sal, D)).reshape(-1, D).float()]

    M = N - n_sal
    if n_ctx > 0 and M > 0:
        rest_mask = torch.ones(F, N, dtype=torch.bool, device=X.device)
        rest_mask.scatter_(1, sal_idx, False)
        rest_idx = torch.nonzero(rest_mask)[:, 1].view(F, M)              # ascending per frame
        rest = torch.gather(X, 1, rest_idx.unsqueeze(-1).expand(F, M, D)).float()
        gen = make_generator(cfg.seed, X.device)
        density = dpc_knn_scores_batched(rest, cfg.k, variant="holitom", generator=gen)  # (F, M)
        for s, e in segments:  # loop over segments only
            frames = torch.tensor(anchor_frames(s, e, cfg.p), device=X.device)
            per_anchor = min(((e - s + 1) * n_ctx) // len(frames), M)
            if per_anchor == 0:
                continue
            a_local = topk_indices(density[frames], per_anchor, sort_indices=True)  # (A_f, per_anchor)
            a_pos = ((frames - s)[:, None] * M + a_local).flatten()        # into the segment pool
            pool = rest[s:e + 1].reshape(-1, D)
            anchors = pool[a_pos]
            assign = assign_nearest(pool, anchors, "cosine")
            assign[a_pos] = torch.arange(a_pos.numel(), device=X.device)   # anchors join themselves
            means, counts = scatter_mean(pool, assign, a_pos.numel())
            feat_parts.append(weighted_anchor_merge(anchors, means, counts + 1, cfg.beta))
            idx_parts.append((torch.gather(rest_idx[frames], 1, a_local) + frames[:, None] * N).flatten())

    idx = torch.cat(idx_parts)
    feats = torch.cat(feat_parts)
    order = torch.argsort(idx)
    return Reduction(features=feats[order].to(X.dtype), source=idx[order], positions="original",
                     info={"method": "fastvid", "segments": segments, "salient_per_frame": n_sal,
                           "context_per_frame": n_ctx, "retention": cfg.retention})


# ---- registered Method (methods.registry) ----
class FastVID(Method):
    name = "fastvid"
    description = "FastVID: DySeg on global features + STPrune (MAP-head salient + density merging)"
    Config = FastVIDConfig
    stages = ("pre_llm",)
    families = ("llava-onevision", "llava-video")  # needs the SigLIP MAP head's probe attention

    def reduce(self, tokens: VideoTokens) -> Reduction:
        return fastvid_reduce(tokens, self.config)

    pre_llm_budget = True

    def nominal_tokens(self, arch, frames, budget="global"):
        return pre_llm_tokens(arch, frames, self.config.retention, budget)
