"""Tango: diversity-driven salient selection + ST-RoPE-guided context merging (pre-LLM, training-free).

Follows papers.md §1.2 (facts from the official code ``prepare_inputs_labels_for_multimodal_tango``
/ ``tango_token_merger`` / ``tango_compressor``):

1. saliency = the SigLIP MAP-head probe attention (``map_head_attn``), sink positions zeroed;
2. ST-RoPE features of the L2-normalised features (only for distances / assignments);
3. temporal segmentation (HoliTom DP, or FastVID DySeg on global features);
4. per segment: static positions averaged over the segment and compressed as one frame; dynamic
   tokens: per-frame diversity-driven salient selection, then segment-wise context merging.

Merged outputs are built from the un-rotated features. The output is sorted by flat index (original
temporal / spatial order) and enters the LLM with contiguous position ids.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import torch

from methods.primitives import (
    assign_nearest, consecutive_cosine, dpc_knn_centers, dpc_knn_centers_batched, dyseg_segments,
    expanded_candidates, make_generator, paper_tau, rescaled_retention, scatter_mean, st_rope, static_mask,
    temporal_segments, weighted_anchor_merge,
)
from methods.types import Reduction, VideoTokens, check_retention

__all__ = [
    "OV_SINKS", "VIDEO_SINKS", "TangoConfig", "tango_reduce", "tango_pre_llm_retention",
    "diverse_salient_selection", "context_merge",
]

#: MAP-head attention-sink indices on the pooled grid, found empirically by Tango's authors
#: (official code): LLaVA-OV 14x14 bilinear grid and LLaVA-Video 13x13 average-pooled grid.
OV_SINKS: tuple[int, ...] = (28, 27, 41, 169, 11, 12)
VIDEO_SINKS: tuple[int, ...] = (26, 157, 11)

SALIENCY = "map_head_attn"


def tango_pre_llm_retention(r: float, layers: int = 28, k: int = 18, keep: float = 0.5) -> float:
    """Pre-LLM ratio so that the layer-averaged visual-token ratio equals ``r`` with an intra-LLM
    stage keeping ``keep`` of the tokens from layer ``k`` on: L*r / (K + (L-K)*p)."""
    r = check_retention(r)
    if not 0 < k <= layers:
        raise ValueError(f"intra-LLM layer k must be in (0, layers={layers}], got {k}")
    keep = check_retention(keep, "keep")
    return layers * r / (k + (layers - k) * keep)


@dataclass(frozen=True)
class TangoConfig:
    """Tango hyperparameters; defaults are the run scripts' values (papers.md §1.2 table).

    ``tau`` None resolves to 0.65 when ``retention`` <= 0.10, else 0.8. ``rope_sections`` are
    rescaled by ``methods.primitives.rope_sections`` when they do not sum to the feature dim.
    With ``intra_llm`` the pre-LLM stage runs at ``tango_pre_llm_retention(retention,
    llm_layers, intra_k, intra_keep)``; the intra-LLM merge itself is run by the adapter.
    """

    retention: float
    tau: Optional[float] = None
    context_ratio: float = 0.4
    alpha: float = 1.5
    beta: float = 0.6
    k: int = 7
    segment: Literal["holitom", "fastvid"] = "holitom"
    fastvid_c: int = 8
    fastvid_tau: float = 0.9
    use_st_rope: bool = True
    rope_sections: tuple[int, int, int] = (1196, 1194, 1194)
    base_time: float = 10000.0
    base_space: float = 1000.0
    sink_indices: tuple[int, ...] = ()
    intra_llm: bool = False
    intra_k: int = 18
    intra_keep: float = 0.5
    llm_layers: int = 28
    seed: int = 0

    def __post_init__(self) -> None:
        check_retention(self.retention)
        if self.tau is not None and not 0.0 < self.tau < 1.0:
            raise ValueError(f"tau must be in (0, 1) or None, got {self.tau}")
        if not 0.0 <= self.context_ratio < 1.0:
            raise ValueError(f"context_ratio must be in [0, 1), got {self.context_ratio}")
        if self.alpha < 1.0:
            raise ValueError(f"alpha (expansion coefficient) must be >= 1, got {self.alpha}")
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")
        if self.k < 1:
            raise ValueError(f"k (DPC-KNN neighbours) must be >= 1, got {self.k}")
        if self.segment not in ("holitom", "fastvid"):
            raise ValueError(f"segment must be 'holitom' or 'fastvid', got {self.segment!r}")
        if self.intra_llm:
            tango_pre_llm_retention(self.retention, self.llm_layers, self.intra_k, self.intra_keep)

    @property
    def resolved_tau(self) -> float:
        return paper_tau(self.retention, self.tau)

    @property
    def pre_llm_retention(self) -> float:
        if not self.intra_llm:
            return self.retention
        return min(tango_pre_llm_retention(self.retention, self.llm_layers, self.intra_k,
                                           self.intra_keep), 1.0)


# --------------------------------------------------------------------------------------------
# Building blocks (operate on already-gathered tokens; indices are local)
# --------------------------------------------------------------------------------------------

def _nearest_with_self(x: torch.Tensor, anchors: torch.Tensor, anchor_pos: torch.Tensor) -> torch.Tensor:
    """Nearest anchor (Euclidean) for every point of x (B, M, D); anchors (B, A, D) are rows
    ``anchor_pos`` (B, A) of x and are forced into their own cluster (exact distance 0, which the
    matmul form of the distance only approximates)."""
    assign = assign_nearest(x, anchors, "euclidean")
    own = torch.arange(anchors.shape[1], device=x.device).expand_as(anchor_pos)
    return assign.scatter(1, anchor_pos, own)


def diverse_salient_selection(saliency: torch.Tensor, rope: torch.Tensor, n_salient: int, *,
                              alpha: float, k: int, generator: torch.Generator) -> torch.Tensor:
    """Tango's frame-wise diversity-driven selection, vectorised over B frames.

    saliency (B, L), rope (B, L, Dr) -> LongTensor (B, n_salient) of selected positions (ascending).
    Candidates = top floor(alpha * n_salient) by saliency; DPC-KNN (tango variant) on their RoPE
    features picks n_salient anchors; each candidate joins its nearest anchor; each cluster keeps
    its most salient candidate. Anchors sit in their own cluster, so no cluster is empty and the
    selected positions are distinct.
    """
    B, L = saliency.shape
    if n_salient <= 0:
        return torch.empty(B, 0, dtype=torch.long, device=saliency.device)
    n_salient = min(n_salient, L)
    cand = expanded_candidates(saliency, n_salient, alpha, sort_indices=False)  # (B, C) desc saliency
    C = cand.shape[1]
    if C == n_salient:
        return torch.sort(cand, dim=1).values
    cand_rope = torch.gather(rope, 1, cand.unsqueeze(-1).expand(B, C, rope.shape[-1]))
    anchor_pos = dpc_knn_centers_batched(cand_rope, n_salient, k, variant="tango", generator=generator)
    anchors = torch.gather(cand_rope, 1, anchor_pos.unsqueeze(-1).expand(B, n_salient, rope.shape[-1]))
    assign = _nearest_with_self(cand_rope, anchors, anchor_pos)          # (B, C) cluster ids
    rank = torch.arange(C, device=cand.device).expand(B, C)               # 0 = most salient
    best = torch.full((B, n_salient), C, dtype=torch.long, device=cand.device)
    best = best.scatter_reduce(1, assign, rank, reduce="amin")
    return torch.sort(torch.gather(cand, 1, best), dim=1).values


def context_merge(feats: torch.Tensor, rope: torch.Tensor, budget: int, *, beta: float, k: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge a pool of P tokens into ``budget`` tokens: feats (P, D), rope (P, Dr).

    Returns (local anchor indices (M,) ascending, merged features (M, D) fp32). If P <= budget
    every token is kept as is. Otherwise DPC-KNN anchors on the RoPE features, every pool token
    (anchors included) joins its nearest anchor, merged = w*anchor + (1-w)*mean, w = max(1/count, beta).
    """
    P = feats.shape[0]
    if budget <= 0:
        return torch.empty(0, dtype=torch.long, device=feats.device), feats.new_zeros(0, feats.shape[1]).float()
    if P <= budget:
        return torch.arange(P, device=feats.device), feats.float()
    anchor_pos = dpc_knn_centers(rope, budget, k, variant="tango", generator=generator)
    assign = _nearest_with_self(rope[None], rope[anchor_pos][None], anchor_pos[None])[0]
    xf = feats.float()
    means, counts = scatter_mean(xf, assign, budget)
    return anchor_pos, weighted_anchor_merge(xf[anchor_pos], means, counts, beta)


def _select_and_merge(feats: torch.Tensor, sal: torch.Tensor, rope: torch.Tensor, raw: int,
                      cfg: TangoConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens of B frames (B, L, ·) with a per-frame budget ``raw``: diverse salient selection per
    frame, then one context merge over the non-selected tokens of all B frames (budget
    context * B). Returns (local flat indices into B*L, features fp32)."""
    B, L, D = feats.shape
    raw = min(raw, L)
    salient = int(raw * (1.0 - cfg.context_ratio))
    context = raw - salient
    sel = diverse_salient_selection(sal, rope, salient, alpha=cfg.alpha, k=cfg.k, generator=gen)
    sel_flat = (sel + torch.arange(B, device=sel.device)[:, None] * L).flatten()
    chosen = torch.zeros(B * L, dtype=torch.bool, device=feats.device)
    chosen[sel_flat] = True
    pool = torch.nonzero(~chosen).flatten()
    f2, r2 = feats.reshape(B * L, D), rope.reshape(B * L, -1)
    ctx_pos, ctx_feats = context_merge(f2[pool], r2[pool], context * B, beta=cfg.beta, k=cfg.k, generator=gen)
    idx = torch.cat([sel_flat, pool[ctx_pos]])
    out = torch.cat([f2[sel_flat].float(), ctx_feats])
    return idx, out


# --------------------------------------------------------------------------------------------
# The method
# --------------------------------------------------------------------------------------------

def _segments(tokens: VideoTokens, sim: torch.Tensor, cfg: TangoConfig, tau: float) -> list[tuple[int, int]]:
    F = tokens.frames
    if F == 1:
        return [(0, 0)]
    if cfg.segment == "holitom":
        return temporal_segments(sim, tau).segments
    g = tokens.global_features
    if g is None:
        raise KeyError("Tango segment='fastvid' needs tokens.global_features (the MAP-head pooled "
                       "output per frame) but the adapter provided none")
    gn = torch.nn.functional.normalize(g.float(), dim=-1)
    return dyseg_segments((gn[:-1] * gn[1:]).sum(-1), cfg.fastvid_c, cfg.fastvid_tau)


def tango_reduce(tokens: VideoTokens, cfg: TangoConfig) -> Reduction:
    """Tango's pre-LLM reduction of one video (papers.md §1.2)."""
    X = tokens.features
    F, N, D = X.shape
    h, w = tokens.grid
    r = cfg.pre_llm_retention
    tau = cfg.resolved_tau
    sal = tokens.require(SALIENCY).float().clone()
    if cfg.sink_indices:
        bad = [i for i in cfg.sink_indices if not 0 <= i < N]
        if bad:
            raise ValueError(f"sink_indices {bad} out of range for N={N} tokens per frame")
        sal[:, list(cfg.sink_indices)] = 0.0
    if cfg.use_st_rope:
        rope = st_rope(X, tokens.times().to(X.device), (h, w), cfg.rope_sections, cfg.base_time, cfg.base_space)
    else:
        rope = torch.nn.functional.normalize(X.float(), dim=-1)
    sim = consecutive_cosine(X)
    segments = _segments(tokens, sim, cfg, tau)
    gen = make_generator(cfg.seed, X.device)

    idx_parts, feat_parts, ratios = [], [], []
    for s, e in segments:  # loop over segments only
        nf = e - s + 1
        if nf == 1:
            li, lf = _select_and_merge(X[s:s + 1], sal[s:s + 1], rope[s:s + 1],
                                       max(math.ceil(N * r), 1), cfg, gen)
            idx_parts.append(li + s * N)
            feat_parts.append(lf)
            ratios.append(r)
            continue
        smask = static_mask(sim, s, e, tau)
        n_static = int(smask.sum())
        r_seg = rescaled_retention(r, (nf - 1) * n_static, nf * N)
        ratios.append(r_seg)
        if n_static:
            spos = torch.nonzero(smask).flatten()
            sf = X[s:e + 1, spos].float().mean(0, keepdim=True)
            ss = sal[s:e + 1, spos].mean(0, keepdim=True)
            sr = rope[s:s + 1, spos]
            li, lf = _select_and_merge(sf, ss, sr, max(math.ceil(n_static * r_seg), 1), cfg, gen)
            idx_parts.append(spos[li] + s * N)
            feat_parts.append(lf)
        n_dyn = N - n_static
        if n_dyn:
            dpos = torch.nonzero(~smask).flatten()
            raw = math.ceil(n_dyn * r_seg)
            li, lf = _select_and_merge(X[s:e + 1, dpos], sal[s:e + 1, dpos], rope[s:e + 1, dpos],
                                       raw, cfg, gen)
            frame, pos = li // n_dyn, li % n_dyn
            idx_parts.append((s + frame) * N + dpos[pos])
            feat_parts.append(lf)

    idx = torch.cat(idx_parts)
    feats = torch.cat(feat_parts)
    order = torch.argsort(idx)
    return Reduction(
        features=feats[order].to(X.dtype),
        source=idx[order],
        positions="contiguous",
        info={"method": "tango", "segments": segments, "segment_retention": ratios,
              "retention": cfg.retention, "pre_llm_retention": r, "tau": tau},
    )


# ---- registered Method (methods.registry) ----
from methods.base import Method  # noqa: E402
from methods.runtime import InnerPlan, InnerStage  # noqa: E402


class Tango(Method):
    name = "tango"
    description = ("Tango: diversity-driven selection + ST-RoPE clustering before the LLM; "
                   "optional intra-LLM blend merge (intra_llm=True, LLaVA-Video)")
    Config = TangoConfig
    stages = ("pre_llm", "inner_llm")

    def reduce(self, tokens: VideoTokens) -> Reduction:
        return tango_reduce(tokens, self.config)

    def inner_plan(self, num_layers) -> Optional[InnerPlan]:
        c = self.config
        if not c.intra_llm:
            return None
        return InnerPlan((InnerStage(c.intra_k, float(c.intra_keep)),), scoring="last",
                         merge="blend", blend_weight=0.6).validate(num_layers)

    def nominal_name_and_options(self):
        c = self.config
        if c.intra_llm:
            return "tango-intra", {"retention": float(c.retention), "k": c.intra_k, "p": float(c.intra_keep)}
        return "tango", {"retention": float(c.retention)}
