"""HoliTom (arXiv 2505.21334) pre-LLM stages as a pure function: VideoTokens -> Reduction.

Stage I  global temporal segmentation by dynamic programming on consecutive-frame cosine
         similarity; static positions of each multi-frame segment are averaged over its frames;
         the retention is re-scaled for the tokens this saved.
Stage II spatial merging: dynamic tokens per frame by attention top-k (plus DPC-KNN contextual
         merging when ``contextual_fraction`` > 0); static tokens of a segment by DPC-KNN centres,
         every other static token merged into its nearest centre with weight beta.
Stage III (inner-LLM merging) belongs to the runtime, not here.

Facts follow the official code (cokeshao/HoliTom, holitom/llava_arch.py; docs/sources.md#holitom):
rounding (``ceil`` for the per-frame dynamic budget, Python ``round`` for dominant and static
cluster counts, so a static set may get 0 centres and vanish), DP tie-breaking, and token order.
Python loops run over segments and frames only.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import torch

from costmodel.nominal import check_fraction, check_layer, kept_tokens, round_half_up
from costmodel.schedule import staged
from methods.base import Method, NominalTokens, pre_llm_tokens
from methods.paper_options import HOLITOM_INNER_K, HOLITOM_INNER_R, HOLITOM_MERGE
from methods.runtime import MERGES, InnerPlan, InnerStage
from methods.setting import PaperSetting, SettingOptions

from .primitives import (
    beta_blend,
    consecutive_cosine,
    dpc_knn_centers_batched,
    make_generator,
    paper_tau,
    rescaled_retention,
    static_mask,
    temporal_segments,
    topk_indices,
)
from .types import Reduction, VideoTokens, check_retention

SALIENCY = "vit_attn_received"


@dataclass(frozen=True)
class HoliTomConfig:
    """HoliTom's pre-LLM hyperparameters (official env names in brackets).

    retention: kept fraction r before the LLM [RETAIN_RATIO].
    tau: temporal similarity threshold [T]; None -> 0.65 if r <= 0.10 else 0.80 (official scripts).
    beta: weight of a cluster centre in a merge [BETA].
    contextual_fraction: HoliTom's ``D`` [D]. Note the direction: it is the share of each frame's
        dynamic budget given to *contextual* (DPC-KNN merged) tokens; dominant (attention top-k)
        tokens are ``round(n_keep * (1 - D))``. The default 0 keeps dominant tokens only.
    k: DPC-KNN neighbours [K] (capped at the number of centres, as in the official code).
    max_window: longest temporal window in frames [MAX_WINDOW_SIZE].
    seed: seed of the DPC-KNN tie-breaking noise.
    """

    retention: float
    tau: Optional[float] = None
    beta: float = 0.6
    contextual_fraction: float = 0.0
    k: int = 7
    max_window: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        check_retention(self.retention, "HoliTomConfig.retention")
        if self.tau is not None and not 0.0 < float(self.tau) < 1.0:
            raise ValueError(f"HoliTomConfig.tau must be None or in (0, 1), got {self.tau!r}")
        if not 0.0 <= float(self.beta) <= 1.0:
            raise ValueError(f"HoliTomConfig.beta must be in [0, 1], got {self.beta!r}")
        if not 0.0 <= float(self.contextual_fraction) <= 1.0:
            raise ValueError(
                f"HoliTomConfig.contextual_fraction must be in [0, 1], got {self.contextual_fraction!r}")
        if int(self.k) < 1:
            raise ValueError(f"HoliTomConfig.k must be >= 1, got {self.k!r}")
        if int(self.max_window) < 1:
            raise ValueError(f"HoliTomConfig.max_window must be >= 1, got {self.max_window!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"HoliTomConfig.seed must be an int, got {self.seed!r}")

    @property
    def effective_tau(self) -> float:
        return paper_tau(self.retention, self.tau)


def density_merge_batched(feats: torch.Tensor, n_centers: int, k: int, beta: float,
                          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """HoliTom ``merge_tokens_by_density`` on B sets at once.

    feats (B, M, D) -> (merged (B, C, D) fp32, centre indices (B, C) ascending). Centres come from
    DPC-KNN (HoliTom variant, k = min(k, C)); every non-centre joins its nearest centre (Euclidean);
    merged = beta * centre + (1 - beta) * mean(members), a centre without members unchanged.
    """
    B, M, D = feats.shape
    xf = feats.float()
    if n_centers == M:  # every token is its own centre: nothing to cluster or merge
        return xf, torch.arange(M, device=feats.device).expand(B, M)
    centres, dist = dpc_knn_centers_batched(xf, n_centers, k, variant="holitom",
                                            generator=generator, return_distances=True)
    C = centres.shape[1]
    centre_feat = torch.gather(xf, 1, centres.unsqueeze(-1).expand(B, C, D))
    if C == M or C == 0:
        return centre_feat, centres
    is_centre = torch.zeros((B, M), dtype=torch.bool, device=feats.device)
    is_centre.scatter_(1, centres, True)
    # Non-centre members only (the official code excludes the centres from their own clusters).
    member_idx = (~is_centre).nonzero(as_tuple=True)[1].view(B, M - C)  # same count in every set
    members = torch.gather(xf, 1, member_idx.unsqueeze(-1).expand(B, M - C, D))
    # Nearest centre by the DPC distance matrix (Euclidean / sqrt(D): same argmin; ties -> lowest).
    d_mc = torch.gather(dist, 1, member_idx.unsqueeze(-1).expand(B, M - C, M))
    assign = torch.gather(d_mc, 2, centres.unsqueeze(1).expand(B, M - C, C)).argmin(-1)
    flat_index = (assign + torch.arange(B, device=feats.device).unsqueeze(-1) * C).flatten()
    sums = xf.new_zeros((B * C, D)).index_add_(0, flat_index, members.reshape(-1, D))
    counts = torch.zeros(B * C, dtype=torch.long, device=feats.device).index_add_(
        0, flat_index, torch.ones_like(flat_index))
    mean = sums / counts.clamp(min=1).unsqueeze(-1).to(sums.dtype)
    merged = beta_blend(centre_feat.reshape(B * C, D), mean, counts, beta)
    return merged.view(B, C, D), centres


def _dynamic_path(x: torch.Tensor, attn: torch.Tensor, frames: torch.Tensor, dyn_pos: torch.Tensor,
                  r_prime: float, cfg: HoliTomConfig, generator: torch.Generator
                  ) -> tuple[torch.Tensor, int, Optional[torch.Tensor]]:
    """``merge_tokens_by_attention_density`` for B frames sharing the dynamic positions ``dyn_pos``.

    x (F, N, D) and attn (F, N) of the whole video, frames (B,) the frames to process, dyn_pos
    (L,). Features are read only for the contextual candidates (never copied per frame).
    Returns (pos, n_dom, ctx): pos (B, n_keep) holds the output tokens' positions per frame in
    output order [dominant tokens by position; contextual centres by position]; the first n_dom
    are plain copies, the rest merged tokens whose features are ctx (B, n_keep - n_dom, D) fp32
    (None when there are none).
    """
    B = frames.numel()
    N, D = x.shape[1], x.shape[2]
    L = dyn_pos.numel()
    n_keep = math.ceil(L * r_prime)
    n_dom = round(n_keep * (1.0 - cfg.contextual_fraction))
    n_ctx = n_keep - n_dom
    attn_d = attn[frames.unsqueeze(1), dyn_pos].float()                 # (B, L)
    dom_pos = dyn_pos[topk_indices(attn_d, n_dom, sort_indices=True)]  # (B, n_dom)
    if n_ctx == 0:
        return dom_pos, n_dom, None
    rest = torch.zeros((B, N), dtype=torch.bool, device=x.device)
    rest[:, dyn_pos] = True
    rest.scatter_(1, dom_pos, False)
    rest_pos = rest.nonzero(as_tuple=True)[1].view(B, L - n_dom)        # ascending per frame
    rest_flat = (frames.unsqueeze(1) * N + rest_pos).flatten()
    rest_feat = x.reshape(-1, D).index_select(0, rest_flat).view(B, L - n_dom, D)
    merged, centres = density_merge_batched(rest_feat, n_ctx, cfg.k, cfg.beta, generator)
    ctx_pos = torch.gather(rest_pos, 1, centres)
    return torch.cat([dom_pos, ctx_pos], dim=1), n_dom, merged


class _ReducedSequence:
    """The output being assembled in ``one_token`` order: the flat source index of every output
    token (in pieces), and the output rows whose features are merged rather than copied."""

    def __init__(self, device):
        self.device = device
        self.sources: list[torch.Tensor] = []
        self.merged_rows: list[torch.Tensor] = []
        self.merged_feats: list[torch.Tensor] = []
        self.length = 0

    def add(self, sources: torch.Tensor, merged_rows=None, merged_feats=None) -> None:
        """Append tokens; ``merged_rows`` are relative to this piece's first row."""
        self.sources.append(sources)
        if merged_rows is not None:
            self.merged_rows.append(self.length + merged_rows)
            self.merged_feats.append(merged_feats)
        self.length += sources.numel()

    def gather(self, x: torch.Tensor, newline_policy: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (M, D), source (M,)): one gather of the copied tokens, one scatter of the merged
        ones; ``grid`` orders the output by source index."""
        F, N, D = x.shape
        source = (torch.cat(self.sources) if self.sources
                  else torch.zeros(0, dtype=torch.long, device=self.device)).long()
        rows = torch.cat(self.merged_rows) if self.merged_rows else None
        if newline_policy == "grid":
            order = torch.argsort(source)
            source = source[order]
            if rows is not None:
                inverse = torch.empty_like(order).scatter_(0, order, torch.arange(order.numel(), device=self.device))
                rows = inverse[rows]
        features = x.reshape(F * N, D).index_select(0, source)
        if rows is not None:
            features.index_copy_(0, rows, torch.cat(self.merged_feats).to(x.dtype))
        return features, source


def _static_stage(x, sim, s: int, e: int, tau: float, r_prime: float, cfg: HoliTomConfig, gen,
                  out: _ReducedSequence) -> tuple[int, int, torch.Tensor]:
    """Stage I on a multi-frame segment: merge its static positions into ``round(S * r')`` tokens.
    Returns (static positions S, static tokens out, the segment's dynamic positions)."""
    N = x.shape[1]
    mask = static_mask(sim, s, e, tau)
    static_pos = mask.nonzero().flatten()
    dyn_pos = (~mask).nonzero().flatten()
    n_static = static_pos.numel()
    n_static_out = round(n_static * r_prime)
    if n_static_out > 0:
        # One token per static position, the mean over the window's frames (mean over all
        # positions first: a contiguous pass, faster than fancy indexing).
        static_feat = x[s:e + 1].mean(0, dtype=torch.float32).index_select(0, static_pos)  # (S, D)
        merged, centres = density_merge_batched(static_feat.unsqueeze(0), n_static_out, cfg.k, cfg.beta, gen)
        # always written as merged: even unmerged static tokens are frame means, not copies
        out.add(s * N + static_pos[centres[0]], torch.arange(n_static_out, device=x.device), merged[0])
    return n_static, n_static_out, dyn_pos


def _emit_dynamic(out: _ReducedSequence, s: int, e: int, N: int, pos, n_dom: int, ctx) -> int:
    """Append the kept dynamic tokens of frames s..e (``pos``: (frames, kept) positions, the first
    ``n_dom`` dominant copies, the rest contextual merges ``ctx``); returns how many."""
    if pos is None or not pos.numel():
        return 0
    nf, n_keep = e - s + 1, pos.shape[1]
    device = pos.device
    frame_base = torch.arange(s, e + 1, device=device).unsqueeze(1) * N
    rows = feats = None
    if ctx is not None:
        rows = (torch.arange(nf, device=device).unsqueeze(1) * n_keep
                + torch.arange(n_dom, n_keep, device=device)).flatten()
        feats = ctx.reshape(-1, ctx.shape[-1])
    out.add((pos + frame_base).flatten(), rows, feats)
    return nf * n_keep


def holitom_reduce(tokens: VideoTokens, cfg: HoliTomConfig) -> Reduction:
    """HoliTom stages I and II on one video. See the module docstring for the algorithm.

    Output order: newline policy ``grid`` -> sorted by original flat index (static tokens live at
    the first frame of their segment); otherwise per segment [static tokens; dynamic tokens of each
    frame], segments in time order. ``source`` is the flat index of each token's origin (a merged
    token: its centre). Positions are contiguous (the official code shortens the sequence).

    Implementation: all single-frame segments share one batched dynamic path; the output is one
    gather of the copied tokens from the flattened features plus one scatter of the merged ones.
    """
    if not isinstance(cfg, HoliTomConfig):
        raise ValueError(f"cfg must be a HoliTomConfig, got {type(cfg).__name__}")
    attn = tokens.require(SALIENCY)
    x = tokens.features
    F, N, D = x.shape
    device = x.device
    tau = cfg.effective_tau

    sim = consecutive_cosine(x)
    seg = temporal_segments(sim, tau, cfg.max_window)
    r_prime = rescaled_retention(cfg.retention, seg.total_reduced, F * N)
    gen = make_generator(cfg.seed, device)

    # Single-frame segments: the dynamic path on all N tokens, batched over those frames.
    singles = [s for s, e in seg.segments if s == e]
    if singles:
        s_pos, s_dom, s_ctx = _dynamic_path(x, attn, torch.tensor(singles, device=device),
                                            torch.arange(N, device=device), r_prime, cfg, gen)
        single_row = {f: i for i, f in enumerate(singles)}

    out = _ReducedSequence(device)
    per_segment = []
    for s, e in seg.segments:
        if s == e:
            i = single_row[s]
            pos, n_dom, ctx = s_pos[i:i + 1], s_dom, (None if s_ctx is None else s_ctx[i:i + 1])
            n_static, n_static_out, L = 0, 0, N
        else:
            n_static, n_static_out, dyn_pos = _static_stage(x, sim, s, e, tau, r_prime, cfg, gen, out)
            L = dyn_pos.numel()
            pos, n_dom, ctx = None, 0, None
            if L:
                pos, n_dom, ctx = _dynamic_path(x, attn, torch.arange(s, e + 1, device=device),
                                                dyn_pos, r_prime, cfg, gen)
        n_dyn_out = _emit_dynamic(out, s, e, N, pos, n_dom, ctx)
        per_segment.append({"segment": (s, e), "static_positions": n_static,
                            "static_out": n_static_out, "dynamic_positions": L,
                            "dynamic_out": n_dyn_out})
    features, source = out.gather(x, tokens.newline_policy)
    info = {"method": "holitom", "segments": list(seg.segments), "total_reduced": seg.total_reduced,
            "retention": float(cfg.retention), "retention_rescaled": float(r_prime), "tau": tau,
            "tokens_in": F * N, "tokens_out": int(features.shape[0]), "per_segment": per_segment}
    return Reduction(features=features, source=source, positions="contiguous", info=info)


# ---- registered Methods (methods.registry): stages I+II, and I+II+III through methods.runtime ----
#: where HoliTom runs: the families whose adapters give ``vit_attn_received`` and run inner plans
HOLITOM_FAMILIES = ("llava-onevision", "llava-video", "qwen2.5-vl")
_HOLI_FIELDS = [f.name for f in dataclasses.fields(HoliTomConfig)]


class HoliTomWithoutMerge(Method):
    name = "holitom-wo-m"
    description = "HoliTom stages I+II (temporal DP segmentation + spatial merging), no inner-LLM merge"
    Config = HoliTomConfig
    stages = ("pre_llm",)
    families = HOLITOM_FAMILIES
    notation = {"tau": "tau"}

    def reduce(self, tokens: VideoTokens) -> Reduction:
        return holitom_reduce(tokens, self.config)

    pre_llm_budget = True

    def nominal_tokens(self, arch, frames, budget="global"):
        return pre_llm_tokens(arch, frames, self.config.retention, budget)


@dataclass(frozen=True)
class HoliTomFullConfig(HoliTomConfig):
    """HoliTomConfig plus Stage III: merge away ``inner_r`` of the visual tokens before layer
    ``inner_k`` (HOLITOM_k / HOLITOM_r), merge rule ``running-pairwise`` (official) or
    mean / blend / drop."""

    inner_k: int = HOLITOM_INNER_K
    inner_r: float = HOLITOM_INNER_R
    merge: str = HOLITOM_MERGE

    def __post_init__(self) -> None:
        super().__post_init__()  # the pre-LLM part
        if isinstance(self.inner_k, bool) or not isinstance(self.inner_k, int) or self.inner_k < 1:
            raise ValueError(f"inner_k must be an int layer index >= 1, got {self.inner_k!r}")
        if not 0.0 <= float(self.inner_r) < 1.0:
            raise ValueError(f"inner_r (fraction merged away) must be in [0, 1), got {self.inner_r!r}")
        if self.merge not in MERGES:
            raise ValueError(f"merge must be one of {list(MERGES)}, got {self.merge!r}")


class HoliTom(Method):
    name = "holitom"
    description = "HoliTom: stages I+II before the LLM, Stage III similarity merge at layer K=18 (R=0.5)"
    Config = HoliTomFullConfig
    stages = ("pre_llm", "inner_llm")
    families = HOLITOM_FAMILIES
    #: HOLITOM_k / HOLITOM_r and T of the official scripts, as the papers' tables write them
    notation = {"k": "inner_k", "r": "inner_r", "tau": "tau"}
    schedule_options = ("retention", "inner_k", "inner_r")

    @classmethod
    def from_setting(cls, setting: PaperSetting) -> SettingOptions:
        """Stage III at K = 18 (28-layer notation, scaled) merging away R = 0.5; the retention
        before the LLM as the pre-LLM budget."""
        paper = {"inner_k": HOLITOM_INNER_K, "inner_r": HOLITOM_INNER_R, **setting.options}
        setting.set_kept(cls.name, paper, "retention", setting.kept_fraction(cls.name))
        return setting.derive(cls, paper, layers=("inner_k",))

    def pre_config(self) -> HoliTomConfig:
        return HoliTomConfig(**{n: getattr(self.config, n) for n in _HOLI_FIELDS})

    def reduce(self, tokens: VideoTokens) -> Reduction:
        return holitom_reduce(tokens, self.pre_config())

    def inner_plan(self, num_layers) -> Optional[InnerPlan]:
        c = self.config
        return InnerPlan((InnerStage(c.inner_k, 1.0 - float(c.inner_r)),), scoring="last",
                         merge=c.merge).validate(num_layers)

    pre_llm_budget = True

    def nominal_tokens(self, arch, frames, budget="global"):
        """Pre-LLM kept_tokens(r), then Stage III merges away inner_r of them before layer inner_k."""
        c, L = self.config, arch.llm.layers
        k = check_layer(c.inner_k, L, "inner_k")
        kept = kept_tokens(float(c.retention), frames, arch.tokens_per_frame, budget)
        inner = round_half_up(kept * (1.0 - check_fraction(c.inner_r, "inner_r")))
        return NominalTokens(staged([(0, kept), (k, inner)], L) if k < L else (kept,) * L, kept)
