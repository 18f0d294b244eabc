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

Batched (issue 26): the segments are read to the host once (their number is data-dependent); the
anchors of every anchor frame are chosen in one top-k, and the similarity and merge run once per
run of consecutive same-shape pools (one batched matmul each, on views of the frames: no gathered
copy of the tokens). The DPC-KNN distances of the contextual tokens are taken from each frame's
full distance matrix (the same entries, measured bitwise equal at the papers' shapes). Outputs
equal the per-segment loop's: 450 seeded cases in both fidelities, features within 4.8e-7.

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
    dpc_knn_scores_from_distances, dyseg_segments, make_generator, pairwise_distances, topk_indices,
    weighted_anchor_merge,
)
from methods.primitives.padded import ascending_true_positions, first_n, split_plan, upload
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


@dataclass(frozen=True)
class _Run:
    """``count`` consecutive DTM pools of ``frames`` frames each from frame ``start``, each with
    ``hosts`` anchor frames of ``k`` anchors; their anchor frames are ``first_host`` onwards in the
    layout's host list. Consecutive pools of one shape are one batch, their frames one view."""
    start: int
    frames: int
    count: int
    hosts: int
    k: int
    first_host: int


@dataclass(frozen=True)
class _DTMLayout:
    """Where DTM's anchors live, built on the host from the segments (shapes only, no tensor read).

    A pool is a segment, whose tokens join each of its anchor frames (every p-th frame from the
    end); released, an anchor frame whose anchor count equals the per-frame one (the released
    single-frame branch: every one-frame segment) is a pool of its own frame alone. ``hosts``: the
    anchor frames in pool order; ``pool_start``: the first frame of each one's pool; ``k``: the
    anchors each takes; ``runs``: the pools batched by shape."""
    hosts: list[int]
    pool_start: list[int]
    k: list[int]
    runs: list[_Run]

    @property
    def width(self) -> int:
        return max(self.k, default=0)

    def plan(self) -> tuple[list[int], dict]:
        """The device plan as one int64 list and its ``split_plan`` layout: ``hosts``, ``k``,
        ``pool_start``, ``valid`` (the flat positions host * width + rank of the anchors that exist)."""
        valid = [h * self.width + r for h, k in enumerate(self.k) for r in range(k)]
        parts = [self.hosts, self.k, self.pool_start, valid]
        return [x for part in parts for x in part], {"hosts": len(self.hosts), "k": len(self.k),
                                                     "pool_start": len(self.hosts), "valid": len(valid)}


def _dtm_layout(segments, M: int, n_ctx: int, p: int, fidelity: str) -> _DTMLayout:
    pools = []                                          # (start, frames, host frames, k)
    for s, e in segments:
        frames = anchor_frames(s, e, p)
        k = min(((e - s + 1) * n_ctx) // len(frames), M)
        if k == 0:
            continue
        if fidelity == "released" and k == n_ctx:
            pools += [(f, 1, [f], k) for f in frames]
        else:
            pools.append((s, e - s + 1, frames, k))
    hosts, pool_start, ks, runs = [], [], [], []
    for start, n, frames, k in pools:
        last = runs[-1] if runs else None
        if last and (last.frames, last.hosts, last.k) == (n, len(frames), k) and last.start + last.count * n == start:
            runs[-1] = _Run(last.start, n, last.count + 1, len(frames), k, last.first_host)
        else:
            runs.append(_Run(start, n, 1, len(frames), k, len(hosts)))
        hosts += frames
        pool_start += [start] * len(frames)
        ks += [k] * len(frames)
    return _DTMLayout(hosts, pool_start, ks, runs)


def _run_members(X: torch.Tensor, rest_mask: torch.Tensor, run: _Run, anchors_n: torch.Tensor,
                 own: torch.Tensor, fidelity: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums (count * hosts * k, D) and counts of the tokens that join each anchor of a run.
    ``anchors_n`` (hosts, width, D) normalised anchors of the whole layout; ``own`` (hosts, width)
    each anchor's token position inside its pool. Tokens are not normalised: a token's norm scales
    all its similarities alike and changes no argmax."""
    D = X.shape[-1]
    G, H, k, P = run.count, run.hosts, run.k, run.frames * X.shape[1]
    pool = X[run.start:run.start + G * run.frames].reshape(G, P, D)
    usable = rest_mask[run.start:run.start + G * run.frames].reshape(G, 1, P)
    hosts = slice(run.first_host, run.first_host + G * H)
    sim = torch.bmm(anchors_n[hosts, :k].reshape(G, H * k, D), pool.transpose(1, 2))   # (G, H * k, P)
    if fidelity == "released":   # one anchor of each anchor frame: its most similar
        best = sim.view(G, H, k, P).argmax(2).unsqueeze(2)                              # (G, H, 1, P)
        member = (best == torch.arange(k, device=X.device).view(1, 1, k, 1)).view(G, H * k, P)
    else:                        # one anchor over the whole segment; an anchor joins itself
        ids = torch.arange(H * k, device=X.device)
        best = sim.argmax(1).scatter_(1, own[hosts, :k].reshape(G, H * k), ids.expand(G, H * k))
        member = best.unsqueeze(1) == ids.view(1, -1, 1)
    member = (member & usable).to(X.dtype)
    return torch.bmm(member, pool).reshape(-1, D), member.sum(-1).flatten()


def _dtm(X: torch.Tensor, rest_idx: torch.Tensor, rest_mask: torch.Tensor, density: torch.Tensor, segments,
         n_ctx: int, cfg: FastVIDConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """DTM over every segment: (merged anchor features, their flat source indices). X (F, N, D) fp32;
    the contextual tokens are ``rest_idx`` (F, M) / ``rest_mask`` (F, N). Anchors are chosen for all
    anchor frames at once; the similarity and merge run once per batch of same-shape pools."""
    F, N, D = X.shape
    M = rest_idx.shape[1]
    layout = _dtm_layout(segments, M, n_ctx, cfg.p, cfg.fidelity)
    if not layout.hosts:
        return X.new_zeros(0, D), rest_idx.new_zeros(0)
    values, sizes = layout.plan()
    plan = split_plan(upload(torch.tensor(values, dtype=torch.long), X.device), sizes)
    width, hosts = layout.width, plan["hosts"]
    order = torch.topk(density[hosts], width, dim=-1).indices               # densest first
    if cfg.fidelity == "project":                                           # anchors in index order
        order = torch.sort(order.masked_fill(~first_n(plan["k"], width), M), dim=-1).values
    token = torch.gather(rest_idx[hosts], 1, order.clamp(max=M - 1))        # (hosts, width)
    at = (token + hosts.unsqueeze(1) * N).flatten()                         # flat position in X
    own = token + (hosts - plan["pool_start"]).unsqueeze(1) * N             # position in its pool
    anchors_n = torch.nn.functional.normalize(X.reshape(F * N, D).index_select(0, at), dim=-1).view(-1, width, D)
    parts = [_run_members(X, rest_mask, run, anchors_n, own, cfg.fidelity) for run in layout.runs]
    sums, counts = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    at = at.index_select(0, plan["valid"])                                  # pool order = valid order
    means = sums / counts.clamp(min=1).unsqueeze(-1)
    return weighted_anchor_merge(X.reshape(F * N, D).index_select(0, at), means, counts + 1, cfg.beta), at


def _context_density(X: torch.Tensor, rest_idx: torch.Tensor, cfg: FastVIDConfig) -> torch.Tensor:
    """DPC-KNN score ("holitom" variant) of each frame's contextual tokens among themselves, (F, M).
    The distances come from the whole frame's matrix (the same entries as the subset's own, without
    gathering the tokens)."""
    F, N, D = X.shape
    M = rest_idx.shape[1]
    dist = pairwise_distances(X) / math.sqrt(D)                              # (F, N, N)
    dist = torch.gather(dist, 1, rest_idx.unsqueeze(-1).expand(F, M, N))
    dist = torch.gather(dist, 2, rest_idx.unsqueeze(1).expand(F, M, M))
    return dpc_knn_scores_from_distances(dist, cfg.k, variant="holitom",
                                         generator=make_generator(cfg.seed, X.device))


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
    Xf = X.float()

    # ATS: per-frame top-k saliency, all frames at once.
    sal_idx = topk_indices(sal, n_sal, sort_indices=True)                 # (F, n_sal)
    idx = [(sal_idx + torch.arange(F, device=X.device)[:, None] * N).flatten()]
    feats = [torch.gather(Xf, 1, sal_idx.unsqueeze(-1).expand(F, n_sal, D)).reshape(-1, D)]

    M = N - n_sal
    if n_ctx > 0 and M > 0:
        rest_mask = torch.ones(F, N, dtype=torch.bool, device=X.device).scatter_(1, sal_idx, False)
        rest_idx = ascending_true_positions(rest_mask, M)                 # ascending per frame
        density = _context_density(Xf, rest_idx, cfg)
        merged, src = _dtm(Xf, rest_idx, rest_mask, density, segments, n_ctx, cfg)
        feats.append(merged)
        idx.append(src)

    idx = torch.cat(idx)
    order = torch.argsort(idx)
    return Reduction(features=torch.cat(feats)[order].to(X.dtype), source=idx[order], positions="original",
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
