"""FastVID (Shen et al., NeurIPS'25): DySeg + STPrune (ATS salient selection + DTM merging).

Official code read (issue 24): LunarShen/FastVID at a40a109, the FastVID block of
``Qwen2Model.forward`` in ``fastvid_llavaonevision/LLaVA-NeXT/llava/model/language_model/
modeling_qwen2.py`` (last changed at ea8b57e; the LLaVA-Video copy has the same block); defaults
from its ``scripts/eval.sh`` (docs/sources.md#fastvid):
- DySeg: cut the video at the c-1 lowest consecutive global-feature similarities and at every
  transition below tau (c = 8, tau = 0.9).
- STPrune per frame with retention r: ``retained = int(N * r)`` tokens (19 at r = 0.10 on 196), of
  which ``retained - int(retained * d)`` salient ones by top-k MAP-head attention (d = 0.4); the
  rest of the budget is contextual.
- DTM: a DPC-KNN density score (k = 4, distances / sqrt(D), the primitives' "holitom" variant) on
  each frame's non-salient tokens; inside a segment only every p-th frame counted from the segment
  end hosts anchors (p = 4), each anchor frame taking segment_context // n_anchor_frames of its
  densest tokens. **Per anchor frame**, every non-salient token of the segment joins that frame's
  most cosine-similar anchor (argmax; ties to the densest anchor), and anchor <- w*anchor +
  (1-w)*mean(assigned), w = max(1/(count+1), beta = 0.6), count = the tokens assigned to it (the
  anchor itself among them): a token is merged once into every anchor frame of its segment. An
  anchor frame whose anchor count equals the per-frame contextual count (a one-frame segment; with
  p = 4 never a longer one, but e.g. 3 frames at p = 2) merges only its own frame's tokens, as the
  released code's "single-frame" branch selects frames by that count.
Kept tokens keep their original position ids.

``fidelity="project"`` is this project's earlier reading: ``retained = round(N * r)``, and every
non-salient token of a segment joins the one nearest anchor over all anchor frames of the segment
(each anchor forced into its own cluster). On a 32 x 196 x 3584 video the two assign 125 of 392
merged anchors differently (issue 24).

Kept here against the official code: ``max(., 1)`` retained tokens per frame (at N * r < 1 the
official keeps no token of the video), and anchor counts capped at the frame's non-salient tokens
(the official top-k fails there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from methods.base import Method, pre_llm_tokens
from methods.primitives import (
    assign_nearest, dpc_knn_scores_batched, dyseg_segments, make_generator, scatter_mean,
    topk_indices, weighted_anchor_merge,
)
from methods.types import BASELINE_FIDELITIES, Reduction, VideoTokens, check_fidelity, check_retention

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
    fidelity: Literal["released", "project"] = "released"

    def __post_init__(self) -> None:
        check_retention(self.retention)
        check_fidelity(self.fidelity, BASELINE_FIDELITIES, "fastvid fidelity")
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


def fastvid_frame_budget(n_tokens: int, retention: float, d: float, fidelity: str = "released") -> tuple[int, int]:
    """(salient, contextual) tokens per frame: retained = max(int(N r), 1) (``project``:
    max(round(N r), 1)), contextual = floor(retained d)."""
    retained = max(int(n_tokens * retention) if fidelity == "released" else round(n_tokens * retention), 1)
    ctx = math.floor(retained * d)
    return retained - ctx, ctx


def anchor_frames(start: int, end: int, p: int) -> list[int]:
    """Frames of segment [start, end] that host DTM anchors: every p-th counted from the end, ascending."""
    return list(range(end, start - 1, -p))[::-1]


def _anchor_merge(pool: torch.Tensor, anchors: torch.Tensor, beta: float) -> torch.Tensor:
    """Released DTM of one segment: ``anchors`` (A, k, D), one set per anchor frame in descending
    density; every token of ``pool`` (P, D), or of its own pool (A, P, D), joins its most
    cosine-similar anchor of *each* set (first maximum wins), then w * anchor + (1 - w) * mean,
    w = max(1 / (count + 1), beta)."""
    pool_n = torch.nn.functional.normalize(pool, dim=-1)
    sim = torch.nn.functional.normalize(anchors, dim=-1) @ pool_n.transpose(-1, -2)
    assign = sim.argmax(dim=1)                                           # (A, P) anchor of each token
    one_hot = (assign[:, None, :] == torch.arange(anchors.shape[1], device=pool.device)[None, :, None])
    one_hot = one_hot.to(pool.dtype)                                     # (A, k, P)
    counts = one_hot.sum(-1)
    means = (one_hot @ pool) / counts.clamp(min=1).unsqueeze(-1)
    return weighted_anchor_merge(anchors, means, counts + 1, beta)


def _released_merge(rest: torch.Tensor, rest_idx: torch.Tensor, density: torch.Tensor, frames: torch.Tensor,
                    k: int, pool, beta: float, N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Released DTM for ``frames``' anchors (the ``k`` densest of each, densest first) against
    ``pool`` ((P, D) shared, or None: each frame's own tokens): (features, flat source indices)."""
    D = rest.shape[-1]
    a_local = topk_indices(density[frames], k, sort_indices=False)            # (A, k) densest first
    own = rest[frames]                                                         # (A, M, D)
    anchors = torch.gather(own, 1, a_local.unsqueeze(-1).expand(-1, -1, D))
    merged = _anchor_merge(own if pool is None else pool, anchors, beta).reshape(-1, D)
    return merged, (torch.gather(rest_idx[frames], 1, a_local) + frames[:, None] * N).flatten()


def _dtm(rest: torch.Tensor, rest_idx: torch.Tensor, density: torch.Tensor, segments, n_ctx: int,
         cfg: FastVIDConfig, N: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """DTM over every segment: (merged anchor features, their flat source indices) per segment.
    Released: the anchor frames whose count equals the per-frame one (every one-frame segment) merge
    within their own frame, all of them in one batch, as the released code's single-frame branch."""
    F, M, D = rest.shape
    feats, idxs, alone = [], [], []
    for s, e in segments:  # loop over segments only
        frames = torch.tensor(anchor_frames(s, e, cfg.p), device=rest.device)
        per_anchor = min(((e - s + 1) * n_ctx) // len(frames), M)
        if per_anchor == 0:
            continue
        pool = rest[s:e + 1].reshape(-1, D)
        if cfg.fidelity == "released":
            if per_anchor == n_ctx:
                alone.append(frames)
                continue
            merged, src = _released_merge(rest, rest_idx, density, frames, per_anchor, pool, cfg.beta, N)
            feats.append(merged)
            idxs.append(src)
            continue
        # project: one nearest anchor over the whole segment, anchors in their own clusters
        a_local = topk_indices(density[frames], per_anchor, sort_indices=True)  # (A_f, per_anchor)
        a_pos = ((frames - s)[:, None] * M + a_local).flatten()        # into the segment pool
        anchors = pool[a_pos]
        assign = assign_nearest(pool, anchors, "cosine")
        assign[a_pos] = torch.arange(a_pos.numel(), device=rest.device)   # anchors join themselves
        means, counts = scatter_mean(pool, assign, a_pos.numel())
        feats.append(weighted_anchor_merge(anchors, means, counts + 1, cfg.beta))
        idxs.append((torch.gather(rest_idx[frames], 1, a_local) + frames[:, None] * N).flatten())
    if alone:
        merged, src = _released_merge(rest, rest_idx, density, torch.cat(alone), min(n_ctx, M), None, cfg.beta, N)
        feats.append(merged)
        idxs.append(src)
    return feats, idxs


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
    n_sal, n_ctx = fastvid_frame_budget(N, cfg.retention, cfg.d, cfg.fidelity)
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
        feats, idxs = _dtm(rest, rest_idx, density, segments, n_ctx, cfg, N)
        feat_parts += feats
        idx_parts += idxs

    idx = torch.cat(idx_parts)
    feats = torch.cat(feat_parts)
    order = torch.argsort(idx)
    return Reduction(features=feats[order].to(X.dtype), source=idx[order], positions="original",
                     info={"method": "fastvid", "segments": segments, "salient_per_frame": n_sal,
                           "context_per_frame": n_ctx, "retention": cfg.retention, "fidelity": cfg.fidelity})


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
