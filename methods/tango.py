"""Tango: diversity-driven salient selection + ST-RoPE-guided context merging (pre-LLM, training-free).

Follows docs/sources.md#tango (facts from the official code ``prepare_inputs_labels_for_multimodal_tango``
/ ``tango_token_merger`` / ``tango_compressor``):

1. saliency = the SigLIP MAP-head probe attention (``map_head_attn``; on Qwen2.5-VL the tower's
   global-query attention ``vit_global_query_attn``), sink positions zeroed;
2. ST-RoPE features of the L2-normalised features (only for distances / assignments);
3. temporal segmentation (HoliTom DP, or FastVID DySeg on global features);
4. per segment: static positions averaged over the segment and compressed as one frame; dynamic
   tokens: per-frame diversity-driven salient selection, then segment-wise context merging.

Merged outputs are built from the un-rotated features. The output is sorted by flat index (original
temporal / spatial order) and enters the LLM with contiguous position ids.

``fidelity`` picks between the released code and the paper's description where they differ
(read in xjtupanda/Tango, ``VLMEvalKit/.../pre_llm_pruning/tango/{pruner,utils}.py``, commit 610c264):

- ``"released"`` (default; the papers' numbers came from this code):
  (A) ``tango_pruner`` calls ``tango_token_merger`` without ``tau``, so the in-segment static mask
      uses the merger's default 0.8 whatever ``tau`` is; segmentation uses the configured tau.
  (B) in every context merge (single frame, static part, dynamic part) the merged rows are built
      for the anchors in ascending position order (boolean-mask gather) but written back to the
      anchor indices in DPC-score order (``topk``), so merged row i lands on the anchor with the
      i-th highest score. Kept positions are unchanged; features sit at other anchors' positions.
  (C) the LLaVA-Video intra-LLM stage (``intra_llm_pruning/fastv_tango.py``) ranks the whole visual
      span by layer K-1's last-token attention: ``PRUNE_CONFIG["image_token_length"]`` is set in
      ``pre_llm_pruning/tango/llava_arch.py`` to the length of the visual embeddings after
      ``add_token_per_grid_tango``, i.e. kept features plus one newline per row that keeps a token,
      so newlines are ranked (and can be pruned, their states merged into kept tokens) and the kept
      count is Python ``round(span * 0.5)`` (ties to even). Runtime plan: ``span="visual"``,
      ``rounding="half_even"``.
- ``"paper"``: the configured tau for the static mask, merged rows at their own anchors; the
  intra-LLM stage ranks the feature tokens only, always keeps the newlines and rounds half up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional, Union

import torch

from costmodel.nominal import check_fraction, check_layer, kept_tokens, round_half_up
from costmodel.schedule import staged
from methods.base import Method, NominalTokens, pre_llm_tokens
from methods.paper_options import TANGO_INTRA_K, TANGO_INTRA_KEEP
from methods.primitives import (
    dyseg_segments, failure_prefix, make_generator, paper_tau, segments_from_gain, st_rope_rows_and_cosines,
    window_counts, window_gain,
)
from methods.primitives.similarity import cpu_blocked
from methods.tango_batched import DENSITY_NOISE, TangoPlan, merge_padded, run_plan, salient_split, select_padded
from methods.runtime import InnerPlan, InnerStage
from methods.setting import PaperSetting, SettingOptions
from methods.types import Reduction, VideoTokens, check_retention

__all__ = [
    "OV_SINKS", "VIDEO_SINKS", "RELEASED_MERGER_TAU", "SMALL_GRID_TOKENS", "FIDELITIES", "TangoConfig",
    "tango_reduce", "tango_pre_llm_retention", "diverse_salient_selection", "context_merge",
    "resolve_sinks", "setting_sinks", "empirical_sinks", "salient_split",
]

#: MAP-head attention-sink indices on the pooled grid, found empirically by Tango's authors for
#: SigLIP-so400m-patch14-384 (27x27 patches). Source: xjtupanda/Tango
#: ``VLMEvalKit/vlmeval/vlm/llava/llava.py`` (``LLaVA_OneVision.__init__`` sets
#: ``PRUNE_CONFIG["special_attn_token_list"]``; commit 610c264): LLaVA-OV's 14x14 bilinear grid and
#: LLaVA-Video's 13x13 average-pooled grid. The Qwen2.5-VL path masks none.
OV_SINKS: tuple[int, ...] = (28, 27, 41, 169, 11, 12)
VIDEO_SINKS: tuple[int, ...] = (26, 157, 11)
#: grid and newline layout -> sink list used by ``sink_indices="auto"``
_SETTING_SINKS = {((14, 14), "one_token"): OV_SINKS, ((13, 13), "grid"): VIDEO_SINKS}

#: ``tango_token_merger``'s default tau, used by the released code for the in-segment static mask.
RELEASED_MERGER_TAU = 0.8
#: Below this many tokens per frame (the smaller paper grid, LLaVA-Video's 13x13) the salient
#: count of a budget >= 1 is at least 1 (see ``salient_split``).
SMALL_GRID_TOKENS = 169
FIDELITIES = ("released", "paper")

#: Tango's saliency per backbone, the first one the adapter provides: the SigLIP MAP-head probe
#: attention (LLaVA-OV / LLaVA-Video) or the global-query attention of Qwen2.5-VL's tower
#: (``methods.adapters.qwen2_5_vl_encoder``; the official Qwen code's signal).
SALIENCY_SIGNALS = ("map_head_attn", "vit_global_query_attn")


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
    """Tango hyperparameters; defaults are the run scripts' values (docs/sources.md#tango-hyperparameters).

    ``tau`` None resolves to 0.65 when ``retention`` <= 0.10, else 0.8 (segmentation; the static
    mask too under ``fidelity="paper"``, 0.8 under ``"released"``, see the module docstring).
    ``sink_indices="auto"`` masks the official sink list of the setting recognised from the grid and
    newline layout (OV 14x14 one_token, Video 13x13 grid) and none elsewhere; a tuple is used as
    given. ``salient_floor`` None: see ``salient_split``. ``rope_sections`` are
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
    sink_indices: Union[str, tuple[int, ...]] = "auto"
    fidelity: Literal["released", "paper"] = "released"
    salient_floor: Optional[bool] = None
    intra_llm: bool = False
    intra_k: int = TANGO_INTRA_K
    intra_keep: float = TANGO_INTRA_KEEP
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
        if self.fidelity not in FIDELITIES:
            raise ValueError(f"fidelity must be one of {list(FIDELITIES)}, got {self.fidelity!r}")
        if isinstance(self.sink_indices, str):
            if self.sink_indices != "auto":
                raise ValueError(f"sink_indices must be 'auto' or a tuple of ints, got {self.sink_indices!r}")
        else:
            try:  # YAML / CLI give lists: store a tuple of ints so the config stays hashable
                sinks = tuple(int(i) for i in self.sink_indices)
            except (TypeError, ValueError):
                raise ValueError(f"sink_indices must be 'auto' or a tuple of ints, got {self.sink_indices!r}") from None
            object.__setattr__(self, "sink_indices", sinks)
        if self.salient_floor not in (None, True, False):
            raise ValueError(f"salient_floor must be None, True or False, got {self.salient_floor!r}")
        if self.intra_llm:
            tango_pre_llm_retention(self.retention, self.llm_layers, self.intra_k, self.intra_keep)

    @property
    def resolved_tau(self) -> float:
        return paper_tau(self.retention, self.tau)

    @property
    def static_tau(self) -> float:
        """tau of the in-segment static mask: the merger default under ``released`` (behaviour A)."""
        return RELEASED_MERGER_TAU if self.fidelity == "released" else self.resolved_tau

    @property
    def pre_llm_retention(self) -> float:
        if not self.intra_llm:
            return self.retention
        return min(tango_pre_llm_retention(self.retention, self.llm_layers, self.intra_k,
                                           self.intra_keep), 1.0)


# --------------------------------------------------------------------------------------------
# Building blocks (operate on already-gathered tokens; indices are local)
# --------------------------------------------------------------------------------------------

def diverse_salient_selection(saliency: torch.Tensor, rope: torch.Tensor, n_salient: int, *,
                              alpha: float, k: int, generator: torch.Generator) -> torch.Tensor:
    """Tango's frame-wise diversity-driven selection, vectorised over B frames.

    saliency (B, L), rope (B, L, Dr) -> LongTensor (B, n_salient) of selected positions (ascending).
    Candidates = top floor(alpha * n_salient) by saliency; DPC-KNN (tango variant) on their RoPE
    features picks n_salient anchors; each candidate joins its nearest anchor; each cluster keeps
    its most salient candidate. Anchors sit in their own cluster, so no cluster is empty and the
    selected positions are distinct. (One batch of ``methods.tango_batched.select_padded``, whose
    rows ``tango_reduce`` fills with every frame of a video at once.)
    """
    B, L = saliency.shape
    if n_salient <= 0:
        return torch.empty(B, 0, dtype=torch.long, device=saliency.device)
    n = min(n_salient, L)
    c = min(int(math.floor(alpha * n)), L)
    dev = saliency.device
    noise = (torch.rand((B, c), generator=generator, device=dev) * DENSITY_NOISE if c != n
             else torch.zeros((B, c), device=dev))
    gather = lambda cand: torch.gather(rope, 1, cand.unsqueeze(-1).expand(*cand.shape, rope.shape[-1]))
    full = lambda v: torch.full((B,), v, dtype=torch.long, device=dev)
    return select_padded(saliency.float(), gather, full(n), full(c), n, c, k=k, noise=noise, c_min=c)


def context_merge(feats: torch.Tensor, rope: torch.Tensor, budget: int, *, beta: float, k: int,
                  generator: torch.Generator, fidelity: str = "paper") -> tuple[torch.Tensor, torch.Tensor]:
    """Merge a pool of P tokens into ``budget`` tokens: feats (P, D), rope (P, Dr).

    Returns (local anchor indices (M,), merged features (M, D) fp32), row i of the features sitting
    at index i. If P <= budget every token is kept as is. Otherwise DPC-KNN anchors on the RoPE
    features, every pool token (anchors included) joins its nearest anchor, merged = w*anchor +
    (1-w)*mean, w = max(1/count, beta). ``paper``: indices ascending, each row at its own anchor;
    ``released``: indices in DPC-score order, so the row merged for the i-th anchor in position
    order sits at the i-th highest-scoring anchor (behaviour B). (One pool of
    ``methods.tango_batched.merge_padded``.)
    """
    P = feats.shape[0]
    dev = feats.device
    if budget <= 0:
        return torch.empty(0, dtype=torch.long, device=dev), feats.new_zeros(0, feats.shape[1]).float()
    if P <= budget:
        return torch.arange(P, device=dev), feats.float()
    noise = torch.rand((1, P), generator=generator, device=dev) * DENSITY_NOISE
    one = lambda v: torch.full((1,), v, dtype=torch.long, device=dev)
    slot, merged, _ = merge_padded(rope[None], feats.float()[None], torch.ones((1, P), dtype=torch.bool, device=dev),
                                   one(P), one(budget), budget, k=k, beta=beta, noise=noise,
                                   released=fidelity == "released", p_min=P)
    return slot[0], merged[0]


def _uses_floor(cfg: "TangoConfig", tokens_per_frame: int) -> bool:
    """The salient-floor rule: explicit ``salient_floor`` wins; otherwise on under ``paper`` and, under
    ``released``, only below SMALL_GRID_TOKENS per frame, so the paper's grids stay exact."""
    if cfg.salient_floor is not None:
        return cfg.salient_floor
    return cfg.fidelity == "paper" or tokens_per_frame < SMALL_GRID_TOKENS


def resolve_sinks(cfg: "TangoConfig", tokens: VideoTokens) -> tuple[int, ...]:
    """Sink positions to mask: the official list of the recognised setting under ``"auto"``
    (none for any other grid: the sinks belong to SigLIP-so400m's MAP head at those poolings;
    re-derive them with ``empirical_sinks`` for another tower or pooling), else the given tuple."""
    if isinstance(cfg.sink_indices, str):
        return setting_sinks(tokens.grid, tokens.newline_policy)
    N = tokens.tokens_per_frame
    bad = [i for i in cfg.sink_indices if not 0 <= int(i) < N]
    if bad:
        raise ValueError(f"sink_indices {bad} out of range for N={N} tokens per frame")
    return tuple(int(i) for i in cfg.sink_indices)


def setting_sinks(grid, newline: Optional[str]) -> tuple[int, ...]:
    """The official sink list of the setting a pooled grid and newline layout recognise (OV 14x14
    one_token, Video 13x13 grid), none for any other (what ``sink_indices="auto"`` masks)."""
    return _SETTING_SINKS.get((tuple(grid), newline), ())


def empirical_sinks(saliency: torch.Tensor, top: int = 6, min_fraction: float = 0.9) -> tuple[int, ...]:
    """Re-derive attention sinks the way Tango's authors describe them (positions the MAP head
    always attends to): positions among the ``top`` highest saliency of at least ``min_fraction``
    of the frames. saliency (F, N) from one or more videos of the target tower and pooling."""
    if saliency.dim() != 2:
        raise ValueError(f"saliency must be (F, N), got shape {tuple(saliency.shape)}")
    if not 0 < top <= saliency.shape[1]:
        raise ValueError(f"top must be in [1, {saliency.shape[1]}], got {top}")
    hits = torch.zeros(saliency.shape[1], dtype=torch.long)
    hits.index_add_(0, torch.topk(saliency.float(), top, dim=1).indices.flatten().cpu(),
                    torch.ones(saliency.shape[0] * top, dtype=torch.long))
    return tuple(torch.nonzero(hits >= min_fraction * saliency.shape[0]).flatten().tolist())


# --------------------------------------------------------------------------------------------
# The method
# --------------------------------------------------------------------------------------------

def tango_reduce(tokens: VideoTokens, cfg: TangoConfig) -> Reduction:
    """Tango's pre-LLM reduction of one video (docs/sources.md#tango).

    The host reads one table (the segmentation's gains and the static counts of every window); every
    count then follows on the host (``methods.tango_batched.TangoPlan``) and the device runs all
    segments, parts and frames in a fixed number of batched kernels (``run_plan``)."""
    X = tokens.features
    F, N, D = X.shape
    r = cfg.pre_llm_retention
    tau = cfg.resolved_tau
    sal = tokens.require(_saliency_name(tokens))
    sinks = resolve_sinks(cfg, tokens)
    if cfg.use_st_rope:   # rows read on demand on a CPU (the selection and pools read a fraction)
        rope_rows, sim = st_rope_rows_and_cosines(X, tokens.times().to(X.device), tokens.grid,
                                                  cfg.rope_sections, cfg.base_time, cfg.base_space)
    else:
        rope = torch.nn.functional.normalize(X.float(), dim=-1)
        sim = torch.linalg.vecdot(rope[:-1], rope[1:], dim=-1)
        rope_rows = rope.reshape(F * N, D)
    segments, n_static, prefix = _segmentation(tokens, sim, cfg, tau)
    floor = _uses_floor(cfg, N)
    plan = TangoPlan.build(segments, n_static, N, r, cfg, floor, blocked=cpu_blocked(X))
    source, feats = run_plan(plan, X, rope_rows, sal, prefix, sinks, cfg, make_generator(cfg.seed, X.device))
    return Reduction(
        features=feats.to(X.dtype),
        source=source,
        positions="contiguous",
        info={"method": "tango", "segments": segments, "segment_retention": plan.seg_retention,
              "static_positions": n_static, "retention": cfg.retention, "pre_llm_retention": r,
              "tau": tau, "static_tau": cfg.static_tau, "fidelity": cfg.fidelity, "sinks": list(sinks),
              "salient_floor": floor},
    )


def _segmentation(tokens: VideoTokens, sim: torch.Tensor, cfg: TangoConfig, tau: float):
    """(segments, static positions of each at ``cfg.static_tau``, the device failure prefix the static
    masks are read from). HoliTom segmentation: the gain table at ``tau`` and the static counts of
    every window are read to the host in one transfer (the reduction's only host sync)."""
    F = tokens.frames
    if F == 1:
        return [(0, 0)], [0], None
    prefix = failure_prefix(sim, cfg.static_tau)
    counts = window_counts(prefix)
    if cfg.segment == "holitom":
        at_tau = counts if tau == cfg.static_tau else window_counts(failure_prefix(sim, tau))
        gain, counts_h = torch.stack([window_gain(at_tau), counts]).tolist()
        segments = segments_from_gain(gain).segments
    else:
        g = tokens.global_features
        if g is None:
            raise KeyError("Tango segment='fastvid' needs tokens.global_features (the MAP-head pooled "
                           "output per frame) but the adapter provided none")
        gn = torch.nn.functional.normalize(g.float(), dim=-1)
        segments = dyseg_segments((gn[:-1] * gn[1:]).sum(-1), cfg.fastvid_c, cfg.fastvid_tau)
        counts_h = counts.tolist()
    return segments, [counts_h[s][e] if e > s else 0 for s, e in segments], prefix


def _saliency_name(tokens: VideoTokens) -> str:
    """The first of SALIENCY_SIGNALS the adapter provided (``require`` names what is missing)."""
    return next((s for s in SALIENCY_SIGNALS if s in tokens.saliency), SALIENCY_SIGNALS[0])


# ---- registered Method (methods.registry) ----
class Tango(Method):
    name = "tango"
    description = ("Tango: diversity-driven selection + ST-RoPE clustering before the LLM; "
                   "optional intra-LLM blend merge (intra_llm=True, LLaVA-Video)")
    Config = TangoConfig
    stages = ("pre_llm", "inner_llm")
    families = ("llava-onevision", "llava-video", "qwen2.5-vl")
    #: T (tau) of the run scripts
    notation = {"tau": "tau"}
    schedule_options = ("retention", "intra_llm", "intra_k", "intra_keep")
    #: the analytic tables' name for Tango with its intra-LLM stage, whose K and keep fraction p the
    #: tables write as ``k`` and ``p`` (``k`` alone is Tango's DPC-KNN neighbours)
    variants = {"tango-intra": {"options": {"intra_llm": True}, "notation": {"k": "intra_k", "p": "intra_keep"}}}

    @classmethod
    def from_setting(cls, setting: PaperSetting) -> SettingOptions:
        """The intra-LLM stage's K = 18 (28-layer notation, scaled), on (keep 0.5) where the model
        lays its video out with grid newlines, LLaVA-Video's setting and the only one the paper
        runs it in (docs/sources.md#tango-intra-llm; xjtupanda/Tango ``pruning_methods/prune_config.py``
        prune_k / prune_r and ``intra_llm_pruning/fastv_tango.py``, commit 610c264). A setting that
        names the pooled grid gets the sink list of its grid and newline layout written out. The LLM
        depth is recorded as ``llm_layers`` (the intra stage rescales the pre-LLM retention by it)."""
        paper = {"intra_k": TANGO_INTRA_K}
        if setting.newline == "grid":
            paper.update(intra_llm=True, intra_keep=TANGO_INTRA_KEEP)
        paper.update(setting.options)
        if setting.grid is not None and "sink_indices" not in paper:
            paper["sink_indices"] = list(setting_sinks(setting.grid, setting.newline))
        setting.set_kept(cls.name, paper, "retention", setting.kept_fraction(cls.name))
        out = setting.derive(cls, paper, layers=("intra_k",))
        out.applied["llm_layers"] = setting.llm_layers
        return out

    def reduce(self, tokens: VideoTokens) -> Reduction:
        return tango_reduce(tokens, self.config)

    def inner_plan(self, num_layers) -> Optional[InnerPlan]:
        c = self.config
        if not c.intra_llm:
            return None
        released = c.fidelity == "released"  # behaviour C, module docstring
        return InnerPlan((InnerStage(c.intra_k, float(c.intra_keep)),), scoring="last",
                         merge="blend", blend_weight=0.6,
                         span="visual" if released else "features",
                         rounding="half_even" if released else "half_up").validate(num_layers)

    pre_llm_budget = True

    def nominal_label(self, arch, frames):
        name = "tango-intra" if self.config.intra_llm else self.name
        return f"{arch.name}/{name}/F={frames}/r={self.config.retention:g}"

    def nominal_tokens(self, arch, frames, budget="global"):
        """Pre-LLM kept_tokens(r); with ``intra_llm`` the pre-LLM stage keeps r_pre = L·r/(k+(L-k)·p)
        and layer k on keeps p of it, so the layer average is r (docs/sources.md#tango-intra-llm)."""
        c = self.config
        if not c.intra_llm:
            return pre_llm_tokens(arch, frames, c.retention, budget)
        L = arch.llm.layers
        k = check_layer(c.intra_k, L, "intra_k")
        p = check_fraction(c.intra_keep, "intra_keep")
        r_pre = min(1.0, L * float(c.retention) / (k + (L - k) * p))
        kept = kept_tokens(r_pre, frames, arch.tokens_per_frame, budget)
        visual = staged([(0, kept), (k, round_half_up(kept * p))], L) if k < L else (kept,) * L
        # the released stage ranks features + grid newlines and rounds half to even (behaviour C);
        # the feature count here is the paper convention's (no newlines), rounded half up
        return NominalTokens(visual, kept, notes=(f"tango-intra r_pre={r_pre:.4f}",
                                                  "intra stage: feature tokens, half up (released code: whole "
                                                  "visual span incl. newlines, Python round)"))
