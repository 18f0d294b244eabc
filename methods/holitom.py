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
No Python loop runs over segments or frames on the device: see ``holitom_reduce``. On CPU
(``similarity.cpu_blocked``) the static merges run a few segments at a time instead, each
segment's tensors small and reused (same outputs, bitwise).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
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
    failure_prefix,
    make_generator,
    paper_tau,
    rescaled_retention,
    segments_from_gain,
    window_counts,
)
from .primitives.padded import (ascending_true_positions, density_centres_padded, first_n, group_sums,
                                noise_stream, padded_noise, set_chunks, split_plan, take, upload)
from .primitives.similarity import cpu_blocked
from .types import Reduction, VideoTokens, check_retention

SALIENCY = "vit_attn_received"
DENSITY_NOISE = 1e-6  # dpc_knn's tie-breaking scale


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
    (Sets of one size; ``holitom_reduce`` runs sets of every size at once through ``_density_merge``.)
    """
    B, M, D = feats.shape
    xf = feats.float()
    dev = feats.device
    if n_centers == M:  # every token is its own centre: nothing to cluster or merge
        return xf, torch.arange(M, device=dev).expand(B, M)
    if n_centers == 0:
        return xf[:, :0], torch.empty((B, 0), dtype=torch.long, device=dev)
    noise = torch.rand((B, M), generator=generator, device=dev) * DENSITY_NOISE
    full = lambda v: torch.full((B,), v, dtype=torch.long, device=dev)
    merged, centres, _ = _density_merge(xf, torch.ones((B, M), dtype=torch.bool, device=dev), full(M),
                                        full(n_centers), n_centers, k, beta, noise, M, n_centers)
    return merged, centres


def _density_merge(feats, valid, n_valid, n_centres, c_max: int, k: int, beta: float, noise,
                   min_valid: int, min_centres: int):
    """``merge_tokens_by_density`` of B padded sets: (merged (B, c_max, D), centre slots (B, c_max)
    ascending with M at padding, valid centre slots). Members (non-centres) are summed in slot
    order, as the unpadded version adds them."""
    M = feats.shape[1]
    centres, c_ok, nearest, is_centre = density_centres_padded(
        feats, valid, n_valid, n_centres, c_max, k, noise=noise, clip_k=True, min_valid=min_valid,
        min_centres=min_centres)
    sums, counts = group_sums(feats, nearest, valid & ~is_centre, c_max)
    mean = sums / counts.clamp(min=1).unsqueeze(-1).to(sums.dtype)
    own = torch.gather(feats, 1, centres.clamp(max=M - 1).unsqueeze(-1).expand(*centres.shape, feats.shape[-1]))
    return beta_blend(own, mean, counts, beta), centres, c_ok


@dataclass
class _HoliPlan:
    """Host-side counts of one video's stages I-II (from the segmentation, the one host read) and
    the integer tables the device needs, uploaded in one non-blocking copy."""

    segments: list
    rows: list          # per segment: dict of its counts
    stream: int         # density-noise draws, in the order the per-segment implementation drew them
    tables: dict

    @classmethod
    def build(cls, segments, counts, N: int, r_prime: float, cfg: HoliTomConfig) -> "_HoliPlan":
        rows, base = [], 0
        for s, e in segments:
            nf = e - s + 1
            ns = counts[s][e] if nf > 1 else 0
            L = N - ns
            n_keep = math.ceil(L * r_prime) if L else 0
            n_dom = round(n_keep * (1.0 - cfg.contextual_fraction))
            rows.append({"s": s, "e": e, "nf": nf, "ns": ns, "n_out": round(ns * r_prime) if nf > 1 else 0,
                         "L": L, "n_keep": n_keep, "n_dom": n_dom, "n_ctx": n_keep - n_dom, "base": base})
            base += rows[-1]["n_out"] + nf * n_keep
        plan = cls(list(segments), rows, 0, {})
        plan._noise_offsets()
        plan.total = base
        return plan

    def _noise_offsets(self) -> None:
        """Stream offsets: the single-frame segments' contextual merges (one batched call) first, then
        per multi-frame segment its static merge and its frames' contextual merges."""
        singles = [r for r in self.rows if r["nf"] == 1]
        for i, r in enumerate(singles):
            r["ctx_noise"] = self.stream + i * (r["L"] - r["n_dom"])
        if singles and 0 < singles[0]["n_ctx"] != singles[0]["L"] - singles[0]["n_dom"]:
            self.stream += len(singles) * (singles[0]["L"] - singles[0]["n_dom"])
        for r in self.rows:
            r["static_noise"] = -1
            if r["nf"] == 1:
                continue
            if 0 < r["n_out"] != r["ns"]:
                r["static_noise"], self.stream = self.stream, self.stream + r["ns"]
            r["ctx_noise"] = self.stream
            if r["L"] and 0 < r["n_ctx"] != r["L"] - r["n_dom"]:
                self.stream += r["nf"] * (r["L"] - r["n_dom"])

    def upload(self, device, N: int) -> dict[str, torch.Tensor]:
        rows = self.rows
        frame = [(i, f) for i, r in enumerate(rows) for f in range(r["s"], r["e"] + 1)]
        seg_of = np.array([i for i, _ in frame])
        per = lambda key: np.array([rows[i][key] for i, _ in frame])
        q = np.array([f - rows[i]["s"] for i, f in frame])
        dom_base = per("base") + per("n_out") + q * per("n_keep")
        m_rest = np.where(per("L") > 0, per("L") - per("n_dom"), 0)
        ctx_on = (per("n_ctx") > 0) & (per("L") > 0)
        draws = ctx_on & (per("n_ctx") != m_rest)
        ctx_frames = np.nonzero(ctx_on)[0]
        width = int(m_rest[ctx_frames].max()) if ctx_frames.size else 0
        j = np.arange(width)
        noise_off = per("ctx_noise") + q * m_rest
        stat = [i for i, r in enumerate(rows) if r["n_out"] > 0]
        s_width = max((rows[i]["ns"] for i in stat), default=0)
        static_row = np.full(len(rows) + 1, len(stat))
        static_row[stat] = np.arange(len(stat))
        sj = np.arange(s_width)
        sn = np.array([rows[i]["static_noise"] for i in stat]).reshape(-1, 1)
        arrays = {
            "seg_start": [r["s"] for r in rows], "seg_end": [r["e"] for r in rows],
            "seg_multi": [int(r["nf"] > 1) for r in rows], "frame_seg": seg_of,
            "n_dom": per("n_dom"), "dom_key": dom_base,
            "ctx_frames": ctx_frames, "ctx_rest": m_rest[ctx_frames], "ctx_n": per("n_ctx")[ctx_frames],
            "ctx_key": (dom_base + per("n_dom"))[ctx_frames],
            "ctx_noise": np.where(draws[ctx_frames, None] & (j < m_rest[ctx_frames, None]),
                                  noise_off[ctx_frames, None] + j, -1),
            "static_seg": stat, "static_row": static_row[seg_of],
            "static_ns": [rows[i]["ns"] for i in stat], "static_out": [rows[i]["n_out"] for i in stat],
            "static_key": [rows[i]["base"] for i in stat],
            "static_noise": np.where((sn >= 0) & (sj < np.array([rows[i]["ns"] for i in stat]).reshape(-1, 1)),
                                     sn + sj, -1).reshape(len(stat), s_width),
        }
        flat = np.concatenate([np.asarray(v, dtype=np.int64).reshape(-1) for v in arrays.values()])
        self.widths = {"ctx": width, "static": s_width}
        return split_plan(upload(torch.from_numpy(flat), device), {k: np.shape(v) for k, v in arrays.items()})


def _dominant(attn, dynamic, t, n_dom_max: int):
    """(F, n_dom_max) attention top-n_dom dynamic positions of every frame, ascending, N at padding."""
    N = attn.shape[1]
    top = torch.topk(attn.float().masked_fill(~dynamic, float("-inf")), n_dom_max, dim=1).indices
    ok = first_n(t["n_dom"], n_dom_max)
    return torch.sort(top.masked_fill(~ok, N), dim=1).values, ok


def _contextual(x, dynamic, dom, plan, t, stream, cfg):
    """Contextual merges of the frames that have them: (positions (Fc, n_ctx_max), merged features,
    valid, frames). Each frame's non-dominant dynamic tokens are merged into its n_ctx DPC centres."""
    F, N, D = x.shape
    fr = t["ctx_frames"]
    width, c_max = plan.widths["ctx"], max(r["n_ctx"] for r in plan.rows if r["L"])
    rest = torch.cat([dynamic[fr], dynamic.new_zeros(fr.numel(), 1)], 1).scatter_(1, dom[fr], False)[:, :N]
    pos = ascending_true_positions(rest, width)
    valid, noise = first_n(t["ctx_rest"], width), padded_noise(stream, t["ctx_noise"])
    rests = [r["L"] - r["n_dom"] for r in plan.rows if r["L"] and r["n_ctx"]]
    bounds = (min(rests), min(r["n_ctx"] for r in plan.rows if r["L"] and r["n_ctx"]))

    def merge(rows=None):  # the frames ``rows`` of fr (all: None)
        feats = x.reshape(F * N, D)[(take(fr, rows).unsqueeze(1) * N + take(pos, rows)).flatten()].float()
        return _density_merge(feats.view(-1, width, D), take(valid, rows), take(t["ctx_rest"], rows),
                              take(t["ctx_n"], rows), c_max, cfg.k, cfg.beta, take(noise, rows), *bounds)

    if cpu_blocked(x):   # a few frames at a time: no (frames, width, D) copy of the video
        merged, centres, ok = (torch.cat(p) for p in zip(*map(merge, set_chunks(fr.numel(), width * D * 4))))
    else:
        merged, centres, ok = merge()
    return torch.gather(pos, 1, centres.clamp(max=width - 1)), merged, ok


def _static(x, static, plan, t, stream, cfg):
    """Stage I merges: (sources (S_m, out_max), merged features, valid) of the segments that keep
    static tokens. One token per static position, the mean over the segment's frames, merged into
    round(S * r') DPC centres. Only the static positions' sums are divided by the frame counts."""
    F, N, D = x.shape
    seg = t["static_seg"]
    width = plan.widths["static"]
    stat = [r for r in plan.rows if r["n_out"] > 0]
    out_max = max(r["n_out"] for r in stat)
    pos = ascending_true_positions(static[seg], width)
    nf = (t["seg_end"][seg] - t["seg_start"][seg] + 1).to(torch.float32).view(-1, 1, 1)
    valid, noise = first_n(t["static_ns"], width), padded_noise(stream, t["static_noise"])
    bounds = (min(r["ns"] for r in stat), min(r["n_out"] for r in stat))

    def merge(feats, rows=None):
        return _density_merge(feats, take(valid, rows), take(t["static_ns"], rows), take(t["static_out"], rows),
                              out_max, cfg.k, cfg.beta, take(noise, rows), *bounds)

    if cpu_blocked(x):
        merged, centres, ok = _static_blocked(x, stat, pos, nf, merge)
    else:
        sums = x.new_zeros((seg.numel() + 1, N * D), dtype=torch.float32).index_add_(
            0, t["static_row"], x.reshape(F, N * D).float())
        feats = torch.gather(sums[:-1].view(-1, N, D), 1, pos.unsqueeze(-1).expand(-1, width, D)) / nf
        merged, centres, ok = merge(feats)
    src = t["seg_start"][seg].unsqueeze(1) * N + torch.gather(pos, 1, centres.clamp(max=width - 1))
    return src, merged, ok


def _static_blocked(x, stat: list, pos, nf, merge):
    """``_static``'s means and merges on CPU, a few segments at a time (``set_chunks``): each
    segment's frames are summed into one reused (N, D) buffer in frame order (the order
    ``index_add_`` adds them in), its static rows gathered and divided, and the chunk merged, so no
    tensor grows with the number of segments. Same values as the batched path."""
    N, D = x.shape[1:]
    width = pos.shape[1]
    acc = x.new_empty((N, D), dtype=torch.float32)
    parts = []
    for rows in set_chunks(len(stat), width * D * 4):
        feats = x.new_empty((rows.stop - rows.start, width, D), dtype=torch.float32)
        for j, r in enumerate(stat[rows]):
            torch.add(x[r["s"]], 0.0, out=acc)       # 0 + first frame, as index_add_ starts from 0
            for f in range(r["s"] + 1, r["e"] + 1):
                acc.add_(x[f])
            torch.index_select(acc, 0, pos[rows.start + j], out=feats[j])
        parts.append(merge(feats.div_(nf[rows]), rows))
    return tuple(torch.cat(p) for p in zip(*parts))


def holitom_reduce(tokens: VideoTokens, cfg: HoliTomConfig) -> Reduction:
    """HoliTom stages I and II on one video. See the module docstring for the algorithm.

    Output order: newline policy ``grid`` -> sorted by original flat index (static tokens live at
    the first frame of their segment); otherwise per segment [static tokens; dynamic tokens of each
    frame], segments in time order. ``source`` is the flat index of each token's origin (a merged
    token: its centre). Positions are contiguous (the official code shortens the sequence).

    Implementation: the host reads the static counts of every window once (the segmentation and
    every count follow from them); the device then runs every frame's dominant selection, every
    contextual merge and every segment's static merge as padded batches, and orders the output by
    keys computed from the counts.
    """
    if not isinstance(cfg, HoliTomConfig):
        raise ValueError(f"cfg must be a HoliTomConfig, got {type(cfg).__name__}")
    attn = tokens.require(SALIENCY)
    x = tokens.features
    F, N, D = x.shape
    device = x.device
    tau = cfg.effective_tau
    prefix = failure_prefix(consecutive_cosine(x), tau)
    counts = window_counts(prefix).tolist()                    # the one host read
    seg = segments_from_gain(_gain_rows(counts, cfg.max_window), cfg.max_window)
    r_prime = rescaled_retention(cfg.retention, seg.total_reduced, F * N)
    plan = _HoliPlan.build(seg.segments, counts, N, r_prime, cfg)
    t = plan.upload(device, N)
    gen = make_generator(cfg.seed, device)
    stream = noise_stream(plan.stream, gen, device, DENSITY_NOISE)
    static = (prefix[t["seg_end"]] == prefix[t["seg_start"]]) & (t["seg_multi"] > 0).unsqueeze(1)
    features, source = _assemble(x, attn, static, plan, t, stream, cfg, tokens.newline_policy)
    per_segment = [{"segment": (r["s"], r["e"]), "static_positions": r["ns"], "static_out": r["n_out"],
                    "dynamic_positions": r["L"], "dynamic_out": r["nf"] * r["n_keep"]} for r in plan.rows]
    info = {"method": "holitom", "segments": list(seg.segments), "total_reduced": seg.total_reduced,
            "retention": float(cfg.retention), "retention_rescaled": float(r_prime), "tau": tau,
            "tokens_in": F * N, "tokens_out": int(features.shape[0]), "per_segment": per_segment}
    return Reduction(features=features, source=source, positions="contiguous", info=info)


def _gain_rows(counts: list, max_window: int) -> list:
    """``window_gain`` of a static-count table already on the host."""
    return [[c * (e - s) if e > s and e - s + 1 <= max_window else 0 for e, c in enumerate(row)]
            for s, row in enumerate(counts)]


def _assemble(x, attn, static, plan: _HoliPlan, t, stream, cfg, newline_policy: str):
    """(features (M, D) in x's dtype, source (M,)): every stage's tokens keyed by their output slot
    (or, for ``grid``, by source) and sorted once; the features are one gather of every token's
    source row, the merged tokens' rows then overwritten (no concatenated copy to reorder)."""
    F, N, D = x.shape
    keys, srcs, merges = [], [], []
    n_dom_max = max((r["n_dom"] for r in plan.rows if r["L"]), default=0)
    dynamic = ~static[t["frame_seg"]]
    dom = None
    if n_dom_max:
        dom, ok = _dominant(attn, dynamic, t, n_dom_max)
        keys.append(torch.where(ok, t["dom_key"].unsqueeze(1) + torch.arange(n_dom_max, device=x.device), plan.total))
        srcs.append(torch.arange(F, device=x.device).unsqueeze(1) * N + dom.clamp(max=N - 1))
    else:
        dom = torch.full((F, 1), N, dtype=torch.long, device=x.device)
    if t["ctx_frames"].numel():
        pos, merged, ok = _contextual(x, dynamic, dom, plan, t, stream, cfg)
        keys.append(torch.where(ok, t["ctx_key"].unsqueeze(1) + torch.arange(ok.shape[1], device=x.device), plan.total))
        srcs.append(t["ctx_frames"].unsqueeze(1) * N + pos)
        merges.append(merged.reshape(-1, D))
    if t["static_seg"].numel():
        src, merged, ok = _static(x, static, plan, t, stream, cfg)
        keys.append(torch.where(ok, t["static_key"].unsqueeze(1) + torch.arange(ok.shape[1], device=x.device), plan.total))
        srcs.append(src)
        merges.append(merged.reshape(-1, D))
    if not keys:
        return x.new_zeros((0, D)), torch.zeros(0, dtype=torch.long, device=x.device)
    key, src = torch.cat([k.flatten() for k in keys]), torch.cat([s.flatten() for s in srcs])
    if newline_policy == "grid":
        key = torch.where(key < plan.total, src, F * N)
    order = torch.argsort(key)
    src = src[order]
    features = x.reshape(F * N, D).index_select(0, src)
    if merges:  # the merged tokens are the last entries; their rows: the key (padding: rows >= total)
        merged = torch.cat(merges) if len(merges) > 1 else merges[0]
        slot = key if newline_policy != "grid" else torch.empty_like(order).scatter_(
            0, order, torch.arange(order.numel(), device=x.device))
        features.index_copy_(0, slot[-merged.shape[0]:], merged.to(x.dtype))
    return features[:plan.total], src[:plan.total]


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
