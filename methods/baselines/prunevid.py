"""PruneVid (Huang et al., ACL 2025 Findings; arXiv 2412.16117) pre-LLM stages as pure functions.

Facts from the official code (Visual-AI/PruneVid, ``models/pllava/modeling_pllava.py``,
``PllavaForConditionalGeneration.merge_frames_dynamic`` and helpers, read at commit a7fd711;
defaults from ``scripts/eval.sh``). The released code is for PLLaVA only (anchors.md A9).

1. **Temporal segmentation.** The per-frame mean feature (mean over the N tokens) of every frame is
   clustered with DPC-KNN into ``int(F * temporal_segment_ratio)`` clusters (eval.sh: 0.25), k = 7.
   DPC-KNN is the same variant as HoliTom's (``cdist / sqrt(D)``, k nearest including the point
   itself, 1e-6 noise); every frame joins its nearest centre. The labels are then *refined*
   (:func:`refine_labels`): for each cluster only its longest contiguous run(s) survive (a cluster
   whose runs all have length 1 loses them all); every other run is relabelled, left to right, with
   the label of the longer neighbouring run (ties to the left; no neighbour at all -> label 0).
   Segments are the maximal runs of equal label.
2. **Static tokens.** In a segment of W frames, position n is static if the *mean pairwise cosine*
   over all ordered pairs of distinct frames exceeds tau (eval.sh: 0.8) -- not the consecutive
   "all above tau" rule of HoliTom. A single-frame segment has no static tokens (the official 0/0
   is NaN, never above tau). Static positions are averaged over the W frames into one token each.
3. **Spatial merging.** The static tokens of a segment, and the remaining (dynamic) tokens of each
   frame separately, are clustered by DPC-KNN (k = 7) and every cluster is replaced by the plain mean
   of its members (centre included). Official counts: ``int(size * cluster_ratio)`` clusters
   (eval.sh: 0.5), only for sets of more than 14 tokens; smaller sets are kept as they are.
   Output order per segment: [static; dynamic of frame 0; dynamic of frame 1; ...].
4. **Inside the LLM** (not here): question-to-video attention at layer ``selected_layer`` (eval.sh:
   10 for PLLaVA-7B's 32 layers) keeps the top ``alpha`` (eval.sh: 0.4) of the video tokens, in the
   KV cache too. Expressed as an InnerPlan stage by methods.baselines.prunevid.PruneVid.

Budget. PruneVid has no retention knob; to compare at HoliTom's pre-LLM retentions (its table puts
PruneVid at the same 10-25 % as VisionZip) the default here is ``retention`` mode: exactly
``M = round_half_up(r * F * N)`` tokens leave stage 3 (costmodel.nominal's pre-LLM rule). After
stage 2 the video has ``T'`` tokens in S sets (static set per segment, dynamic set per frame); M is
apportioned over the sets in proportion to their sizes by the largest-remainder rule
(:func:`apportion`) -- a uniform cluster ratio ``M / T'``, as the official uniform
``cluster_ratio`` -- and the 14-token floor is not applied. If ``M > T'`` (a retention above what
static merging already leaves), all ``T'`` tokens are kept and ``info['budget_short']`` says by how
much the count misses M. ``cluster_ratio`` mode reproduces the official counts instead (no
retention; ``max(1, .)`` guards the official ``int`` against 0 clusters).

Other deviations: cluster centres are emitted in spatial order (the official in DPC-score order);
``max(1, int(F * ratio))`` temporal clusters (the official fails at 0, i.e. below 4 frames at 0.25),
and the frame clustering's k = 7 neighbours capped at the number of frames (the official top-k over
F frames fails below 7 frames): videos of any length run here. No Python loop runs over segments or
frames on the device: every set is clustered in one padded batch (``prunevid_reduce``). On CPU
(``similarity.cache_blocking``, on by default) the same arithmetic runs frame by frame and in chunks
of a few sets, so no multi-MB temporary is made per pass; the output is bit for bit the same.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from costmodel.nominal import round_half_up  # the nominal schedules' rounding

from methods.base import Method, NominalTokens, pre_llm_tokens
from methods.paper_options import PRUNEVID_SELECTED_LAYER
from methods.primitives import dpc_knn_centers_batched, make_generator
from methods.primitives.padded import (CPU_CHUNK_BYTES, ascending_true_positions, density_centres_padded, first_n,
                                       group_sums, noise_stream, padded_noise, size_chunks, split_plan, upload)
from methods.primitives.similarity import cpu_blocked
from methods.runtime import MODES, InnerPlan, InnerStage
from methods.setting import PaperSetting, SettingOptions
from methods.types import Reduction, VideoTokens, check_retention

DENSITY_NOISE = 1e-6  # dpc_knn's tie-breaking scale

OFFICIAL_MIN_CLUSTER_SET = 14  # official: sets of <= 14 tokens are not clustered

#: CPU cache blocking: the padded sets are clustered a few at a time, each chunk's (sets, width, D)
#: fp32 block at most about this many bytes (at least one set): it stays in the last-level cache
#: across the chunk's passes (norms, Gram, group sums), and one reused buffer holds every chunk
CHUNK_BYTES = 2 * CPU_CHUNK_BYTES


@dataclass(frozen=True)
class PruneVidConfig:
    """PruneVid pre-LLM hyperparameters (official argument names; defaults from scripts/eval.sh).

    retention: tokens leaving the pre-LLM stages = round_half_up(r * F * N) (see the module
        docstring); give exactly one of ``retention`` and ``cluster_ratio``.
    cluster_ratio: official fixed spatial cluster ratio gamma [cluster_ratio, 0.5]; the count then
        depends on the content and has no nominal schedule.
    tau: static threshold on the mean pairwise cosine [tau, 0.8].
    temporal_segment_ratio: temporal clusters = int(F * ratio) [temporal_segment_ratio, 0.25].
    k: DPC-KNN neighbours, for frames and tokens alike [k=7, hard-coded].
    seed: seed of the DPC-KNN tie-breaking noise.
    """

    retention: Optional[float] = None
    cluster_ratio: Optional[float] = None
    tau: float = 0.8
    temporal_segment_ratio: float = 0.25
    k: int = 7
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.retention is None) == (self.cluster_ratio is None):
            raise ValueError("PruneVidConfig: give exactly one of retention (budgeted, default mode) and "
                             f"cluster_ratio (official fixed ratio); got retention={self.retention!r}, "
                             f"cluster_ratio={self.cluster_ratio!r}")
        if self.retention is not None:
            check_retention(self.retention, "PruneVidConfig.retention")
        if self.cluster_ratio is not None:
            check_retention(self.cluster_ratio, "PruneVidConfig.cluster_ratio")
        if not 0.0 < float(self.tau) < 1.0:
            raise ValueError(f"PruneVidConfig.tau must be in (0, 1), got {self.tau!r}")
        check_retention(self.temporal_segment_ratio, "PruneVidConfig.temporal_segment_ratio")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"PruneVidConfig.k must be an int >= 1, got {self.k!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"PruneVidConfig.seed must be an int, got {self.seed!r}")


# ---- clustering helpers ------------------------------------------------------------------------

def dpc_knn_labels(x: torch.Tensor, n_clusters: int, k: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """DPC-KNN clustering of x (M, D): (labels (M,) in [0, C), centre indices (C,) ascending).

    Label c is the cluster of centre ``centres[c]``; every point joins its nearest centre (Euclidean,
    ties to the lower label) and every centre its own cluster (as the official ``cluster_dpc_knn``).
    k is not clipped to the number of centres (PruneVid passes k = 7 as is); it is capped at M.
    """
    M = x.shape[0]
    if not 1 <= n_clusters <= M:
        raise ValueError(f"n_clusters must be in [1, {M}], got {n_clusters}")
    centres, dist = dpc_knn_centers_batched(x.unsqueeze(0), n_clusters, k, variant="holitom",
                                            generator=generator, clip_k_to_centers=False,
                                            return_distances=True)
    centres = centres[0]
    labels = dist[0][:, centres].argmin(dim=1)
    labels[centres] = torch.arange(centres.numel(), device=x.device)
    return labels, centres


def refine_labels(labels: torch.Tensor) -> torch.Tensor:
    """PruneVid's ``refine_clusters`` for one video: labels (F,) -> refined labels (F,).

    1. per cluster, its runs (maximal contiguous stretches); if its longest run has length 1 all
       its runs are released, else every run shorter than the longest is released (runs tied for
       longest all stay);
    2. released stretches, left to right, take the label of the longer of the runs directly to
       their left and right (lengths measured on the labels as refined so far; ties -> left; no
       neighbour -> 0).
    A Python loop over frames (F is small), on the host (:func:`refine_label_list`).
    """
    return torch.tensor(refine_label_list(labels.tolist()), dtype=labels.dtype, device=labels.device)


def refine_label_list(lab: list[int]) -> list[int]:
    """:func:`refine_labels` on a list of ints already on the host."""
    F = len(lab)
    runs: dict[int, list[tuple[int, int]]] = {}
    s = 0
    for i in range(1, F + 1):
        if i == F or lab[i] != lab[s]:
            runs.setdefault(lab[s], []).append((s, i - 1))
            s = i
    out = list(lab)
    for segs in runs.values():
        longest = max(e - s + 1 for s, e in segs)
        for s, e in segs:
            if longest == 1 or e - s + 1 < longest:
                out[s:e + 1] = [None] * (e - s + 1)
    i = 0
    while i < F:
        if out[i] is not None:
            i += 1
            continue
        start = i
        while i < F and out[i] is None:
            i += 1
        end = i - 1
        left = right = None
        left_len = right_len = 0
        if start > 0:
            left = out[start - 1]
            j = start - 1
            while j >= 0 and out[j] == left:
                j -= 1
            left_len = start - 1 - j
        if end < F - 1:
            right = out[end + 1]
            j = end + 1
            while j < F and out[j] == right:
                j += 1
            right_len = j - end - 1
        if left_len > right_len:
            new = left
        elif right_len > left_len:
            new = right
        else:
            new = left if left is not None else right
        out[start:end + 1] = [0 if new is None else new] * (end - start + 1)
    return out


def label_segments(labels: torch.Tensor) -> list[tuple[int, int]]:
    """Maximal runs of equal label as inclusive (start, end) frame pairs."""
    if labels.dim() != 1 or labels.numel() == 0:
        raise ValueError(f"labels must be a non-empty (F,) tensor, got shape {tuple(labels.shape)}")
    change = (labels[1:] != labels[:-1]).nonzero().flatten() + 1
    starts = [0] + change.tolist()
    ends = [s - 1 for s in starts[1:]] + [labels.numel() - 1]
    return list(zip(starts, ends))


def run_segments(labels: list[int]) -> list[tuple[int, int]]:
    """Maximal runs of equal label of a host list as inclusive (start, end) frame pairs."""
    starts = [0] + [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    return list(zip(starts, [s - 1 for s in starts[1:]] + [len(labels) - 1]))


def temporal_segments(x: torch.Tensor, ratio: float, k: int, generator: torch.Generator) -> list[tuple[int, int]]:
    """PruneVid stage 1 on features x (F, N, D): segments from DPC-KNN on per-frame means (the frame
    labels are read to the host once: the refinement is sequential)."""
    F = x.shape[0]
    n = min(F, max(1, int(F * ratio)))
    labels, _ = dpc_knn_labels(x.float().mean(dim=1), n, k, generator)
    return run_segments(refine_label_list(labels.tolist()))


def mean_pairwise_cosine(x: torch.Tensor) -> torch.Tensor:
    """Per position, the mean cosine over ordered pairs of distinct frames: x (W, N, D) -> (N,).

    Equals the official ``(sum_w sum_t cos(w, t) - W) / (W (W - 1))`` using
    ``sum_{w,t} xhat_w . xhat_t = |sum_w xhat_w|^2``. NaN for W = 1 (as the official 0/0).
    """
    W = x.shape[0]
    xh = torch.nn.functional.normalize(x.float(), dim=-1)
    total = xh.sum(0).square().sum(-1)
    if W == 1:
        return torch.full_like(total, float("nan"))
    return (total - W) / (W * (W - 1))


def apportion(total: int, sizes: list[int]) -> list[int]:
    """Largest-remainder split of ``total`` over sets of the given sizes in proportion to size:
    counts sum to ``min(total, sum(sizes))``, each <= its size; ties in the remainder go to the
    earlier set. Exact integer arithmetic."""
    S = sum(sizes)
    if total < 0 or any(s < 0 for s in sizes):
        raise ValueError(f"need total >= 0 and sizes >= 0, got {total}, {sizes}")
    if S == 0:
        return [0] * len(sizes)
    if total >= S:
        return list(sizes)
    base = [total * s // S for s in sizes]
    frac = [total * s % S for s in sizes]
    left = total - sum(base)
    for i in sorted(range(len(sizes)), key=lambda i: (-frac[i], i))[:left]:
        base[i] += 1
    return base


def cluster_merge(x: torch.Tensor, n_clusters: int, k: int, generator: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """PruneVid ``spatial_merge_tokens`` on one set x (M, D): (merged (C, D) fp32, centre indices (C,)).

    Each cluster becomes the plain mean of its members including the centre. ``n_clusters == M``
    copies the set; 0 returns empty tensors. (One set of ``_cluster_merge_padded``.)"""
    M, D = x.shape
    if n_clusters == 0:
        return x.new_zeros((0, D), dtype=torch.float32), torch.zeros(0, dtype=torch.long, device=x.device)
    if n_clusters == M:
        return x.float(), torch.arange(M, device=x.device)
    if not 1 <= n_clusters <= M:
        raise ValueError(f"n_clusters must be in [1, {M}], got {n_clusters}")
    noise = torch.rand((1, M), generator=generator, device=x.device) * DENSITY_NOISE
    one = lambda v: torch.full((1,), v, dtype=torch.long, device=x.device)
    merged, centres, _ = _cluster_merge_padded(x.float()[None], torch.ones((1, M), dtype=torch.bool, device=x.device),
                                               one(M), one(n_clusters), n_clusters, k, noise, M)
    return merged[0], centres[0]


def _cluster_merge_padded(feats, valid, n_valid, n_clusters, c_max: int, k: int, noise, min_valid: int):
    """``spatial_merge_tokens`` of B padded sets: DPC-KNN centres (HoliTom variant, k as given), every
    point to its nearest centre and every centre to its own cluster, each cluster its plain mean.
    Returns (merged (B, c_max, D), centre slots (B, c_max) ascending with M at padding, valid)."""
    B, M, _ = feats.shape
    centres, ok, nearest, _ = density_centres_padded(feats, valid, n_valid, n_clusters, c_max, k, noise=noise,
                                                     clip_k=False, min_valid=min_valid)
    own = torch.arange(c_max, device=feats.device).expand(B, c_max)
    labels = torch.cat([nearest, nearest.new_zeros(B, 1)], 1).scatter(1, centres, own)[:, :M]
    sums, counts = group_sums(feats, labels, valid, c_max)
    return sums / counts.clamp(min=1).unsqueeze(-1).to(sums.dtype), centres, ok


def _official_count(size: int, ratio: float) -> int:
    if size <= OFFICIAL_MIN_CLUSTER_SET:
        return size
    return max(1, int(size * ratio))


def prunevid_reduce(tokens: VideoTokens, cfg: PruneVidConfig) -> Reduction:
    """PruneVid stages 1-3 on one video (see the module docstring).

    Output order: per segment [static tokens; dynamic tokens of each frame], segments in time
    order, clusters in spatial order; newline policy ``grid`` -> sorted by source. ``source`` is
    the flat index of each token's origin (a cluster: its centre; a static token: the centre's
    position in the segment's first frame). Positions are contiguous.

    Implementation: two host reads, each an output size that depends on the data: the frame
    labels (the segments) and the static counts of the segments (the set sizes the budget is
    apportioned over). Every set of every segment is then clustered in one padded batch (on CPU
    with cache blocking: :func:`_static_masks_blocked` and :func:`_cluster_blocked`, same output).
    """
    if not isinstance(cfg, PruneVidConfig):
        raise ValueError(f"cfg must be a PruneVidConfig, got {type(cfg).__name__}")
    x = tokens.features
    F, N, D = x.shape
    device = x.device
    gen = make_generator(cfg.seed, device)
    segments = temporal_segments(x, cfg.temporal_segment_ratio, cfg.k, gen)          # host read 1
    seg_plan = split_plan(upload(torch.tensor([i for i, (s, e) in enumerate(segments) for _ in range(s, e + 1)]
                                              + [e - s + 1 for s, e in segments], dtype=torch.long), device),
                          {"frame_seg": F, "frames": len(segments)})
    blocked = cpu_blocked(x)
    if blocked:
        static, static_means = _static_masks_blocked(x, segments, cfg.tau)
    else:
        static, seg_sums = _static_masks(x, seg_plan["frame_seg"], seg_plan["frames"], cfg.tau)
    n_static = static.sum(1).tolist()                                                # host read 2
    sets = _Sets.build(segments, n_static, N, cfg, F)
    if blocked:
        features, source = _cluster_blocked(x, static, static_means, sets, cfg, gen, tokens.newline_policy)
    else:
        features, source = _cluster_all(x, static, seg_sums, seg_plan["frames"], sets, cfg, gen,
                                        tokens.newline_policy)
    out = int(source.numel())
    after_static = sum(sets.sizes)
    info = {
        "method": "prunevid",
        "segments": segments,
        "per_segment": [{"segment": (s, e), "static_positions": ns, "dynamic_positions": N - ns, "frames": e - s + 1}
                        for (s, e), ns in zip(segments, n_static)],
        "tokens_in": F * N,
        "tokens_after_static": after_static,
        "tokens_out": out,
        "cluster_ratio_effective": out / after_static if after_static else 0.0,
        "budget_short": 0 if sets.target is None else sets.target - out,
    }
    return Reduction(features, source, positions="contiguous", info=info)


def _static_masks(x: torch.Tensor, frame_seg: torch.Tensor, frames: torch.Tensor, tau: float):
    """(static (S, N) bool: mean pairwise cosine over the segment's frames > tau, never for one
    frame; the per-segment feature sums (S, N * D) fp32 for the static means). ``frames`` (S,)."""
    F, N, D = x.shape
    S = frames.numel()
    xh = torch.nn.functional.normalize(x.float(), dim=-1)
    total = xh.new_zeros(S, N * D).index_add_(0, frame_seg, xh.reshape(F, N * D)).view(S, N, D).square().sum(-1)
    W = frames.to(torch.float32).unsqueeze(1)
    static = ((total - W) / (W * (W - 1)).clamp(min=1)) > tau
    static &= W > 1                                   # the official 0/0 is NaN, never above tau
    sums = x.float().new_zeros(S, N * D).index_add_(0, frame_seg, x.float().reshape(F, N * D))
    return static, sums


def _static_masks_blocked(x: torch.Tensor, segments: list[tuple[int, int]], tau: float):
    """:func:`_static_masks` on CPU one frame at a time (same values: the same fp32 adds in frame
    order): (static (S, N) bool, per segment the static positions' means (n_static, D) fp32 or None).
    Only (N, D) buffers are live, reused for every frame: no normalised (F, N, D) copy, no (S, N, D)
    sums, no fresh allocation per frame."""
    F, N, D = x.shape
    static = torch.zeros((len(segments), N), dtype=torch.bool)
    means: list[Optional[torch.Tensor]] = [None] * len(segments)
    hat, raw, scratch = (torch.empty((N, D), dtype=torch.float32) for _ in range(3))
    upcast = None if x.dtype == torch.float32 else torch.empty((N, D), dtype=torch.float32)
    norm = torch.empty((N, 1), dtype=torch.float32)
    for i, (s, e) in enumerate(segments):
        if e == s:                                    # one frame: the official 0/0, never static
            continue
        hat.zero_()
        raw.zero_()
        for f in range(s, e + 1):
            xf = x[f] if upcast is None else upcast.copy_(x[f])
            raw.add_(xf)
            torch.linalg.vector_norm(xf, dim=-1, keepdim=True, out=norm).clamp_min_(1e-12)
            hat.addcdiv_(xf, norm)                    # + xf / |xf| (normalize's eps), no temporary
        W = torch.full((1,), float(e - s + 1), dtype=torch.float32)
        total = torch.mul(hat, hat, out=scratch).sum(-1)         # hat.square(), into the buffer
        static[i] = ((total - W) / (W * (W - 1)).clamp(min=1)) > tau
        pos = static[i].nonzero().flatten()
        if pos.numel():
            means[i] = raw[pos] / W.view(1, 1)
    return static, means


class _Sets:
    """Host layout of the clustering sets: per segment its static set, then one set per frame."""

    def __init__(self, segments, n_static, N: int, cfg: PruneVidConfig, F: int):
        self.rows = []                  # (segment, frame, static?, size, clusters)
        for i, ((s, e), ns) in enumerate(zip(segments, n_static)):
            self.rows.append((i, s, 1, ns, 0))
            self.rows += [(i, f, 0, N - ns, 0) for f in range(s, e + 1)]
        self.sizes = [r[3] for r in self.rows]
        if cfg.retention is not None:
            self.target = max(1, round_half_up(cfg.retention * F * N))
            counts = apportion(self.target, self.sizes)
        else:
            self.target = None
            counts = [_official_count(sz, float(cfg.cluster_ratio)) for sz in self.sizes]
        self.rows = [r[:4] + (c,) for r, c in zip(self.rows, counts)]

    @classmethod
    def build(cls, segments, n_static, N, cfg, F) -> "_Sets":
        return cls(segments, n_static, N, cfg, F)

    def tables(self, device) -> dict[str, torch.Tensor]:
        """Per used set: segment, frame, static flag, size, clusters, output key base, and the density
        noise index of each slot (-1: none), in the order the per-set implementation drew it."""
        used = [r for r in self.rows if r[4] > 0]
        width = max(r[3] for r in used)
        base, key, stream, noise = 0, [], 0, []
        j = np.arange(width)
        for r in used:
            key.append(base)
            base += r[4]
            draws = r[4] < r[3]
            noise.append(np.where(draws & (j < r[3]), stream + j, -1))
            stream += r[3] if draws else 0
        self.stream, self.width, self.total = stream, width, base
        self.static_sets = [b for b, r in enumerate(used) if r[2]]
        arrays = {"seg": [r[0] for r in used], "frame": [r[1] for r in used], "static": [r[2] for r in used],
                  "size": [r[3] for r in used], "clusters": [r[4] for r in used], "key": key,
                  "noise": np.stack(noise), "static_sets": self.static_sets,
                  "static_seg": [used[b][0] for b in self.static_sets]}
        self.used = used
        flat = np.concatenate([np.asarray(v, dtype=np.int64).reshape(-1) for v in arrays.values()])
        return split_plan(upload(torch.from_numpy(flat), device), {k: np.shape(v) for k, v in arrays.items()})


def _cluster_all(x, static, seg_sums, seg_frames, sets: _Sets, cfg, gen, newline_policy: str):
    """Every set's clusters in one padded batch: (features in x's dtype, sources), ordered."""
    F, N, D = x.shape
    dev = x.device
    if not any(r[4] for r in sets.rows):
        return x.new_zeros((0, D)), torch.zeros(0, dtype=torch.long, device=dev)
    t = sets.tables(dev)
    width = sets.width
    pos = ascending_true_positions(static[t["seg"]] == t["static"].unsqueeze(1), width)   # the set's members
    feats = x.reshape(F * N, D)[(t["frame"].unsqueeze(1) * N + pos).flatten()].float().view(-1, width, D)
    if sets.static_sets:   # static sets: their segment's means, computed for them alone and written in
        st, seg = t["static_sets"], t["static_seg"]
        W = seg_frames[seg].to(torch.float32).view(-1, 1, 1)
        feats.index_copy_(0, st, seg_sums.view(-1, N, D)[seg.unsqueeze(1), pos[st]] / W)
    stream = noise_stream(sets.stream, gen, dev, DENSITY_NOISE)
    c_max = max(r[4] for r in sets.used)
    merged, centres, ok = _cluster_merge_padded(feats, first_n(t["size"], width), t["size"], t["clusters"], c_max,
                                                cfg.k, padded_noise(stream, t["noise"]),
                                                min(r[3] for r in sets.used))
    src = t["frame"].unsqueeze(1) * N + torch.gather(pos, 1, centres.clamp(max=width - 1))
    key = torch.where(ok, t["key"].unsqueeze(1) + torch.arange(c_max, device=dev), sets.total).flatten()
    src = src.flatten()
    if newline_policy == "grid":
        key = torch.where(key < sets.total, src, F * N)
    order = torch.argsort(key)[:sets.total]
    return merged.reshape(-1, D)[order].to(x.dtype), src[order]


def _cluster_blocked(x, static, static_means, sets: _Sets, cfg, gen, newline_policy: str):
    """:func:`_cluster_all` on CPU a chunk of sets of similar size at a time (``padded.size_chunks``), each
    chunk padded to its own width in one reused buffer; same noise draws (one stream, indexed per
    set), same values. Padding slots hold other rows of the frame, as in the unblocked path (never
    read)."""
    F, N, D = x.shape
    if not any(r[4] for r in sets.rows):
        return x.new_zeros((0, D)), torch.zeros(0, dtype=torch.long)
    t = sets.tables(x.device)
    stream = noise_stream(sets.stream, gen, x.device, DENSITY_NOISE)
    pos = ascending_true_positions(static[t["seg"]] == t["static"].unsqueeze(1), N)    # each set's members
    rows = (t["frame"].unsqueeze(1) * N + pos)                                           # their rows of x
    keys = np.cumsum([0] + [r[4] for r in sets.used])
    chunks = size_chunks({b: r[3] for b, r in enumerate(sets.used)}, D * 4, CHUNK_BYTES)
    buffer = torch.empty(max(len(ids) * sets.used[ids[0]][3] for ids in chunks) * D, dtype=torch.float32)
    out = torch.empty((sets.total, D), dtype=torch.float32)
    src = torch.empty(sets.total, dtype=torch.long)
    xs = x.reshape(F * N, D)
    for ids in chunks:
        used = [sets.used[b] for b in ids]
        width, c_max = used[0][3], max(r[4] for r in used)
        sel = torch.tensor(ids, dtype=torch.long)
        feats = buffer[:len(ids) * width * D].view(len(ids), width, D)
        index = rows.index_select(0, sel)[:, :width]
        if x.dtype == torch.float32:
            torch.index_select(xs, 0, index.flatten(), out=feats.view(-1, D))
        else:
            feats.view(-1, D).copy_(xs.index_select(0, index.flatten()))
        for i, (seg, _, is_static, size, _) in enumerate(used):
            if is_static:
                feats[i, :size] = static_means[seg]
        size, clusters, noise = (t[name].index_select(0, sel) for name in ("size", "clusters", "noise"))
        merged, centres, _ = _cluster_merge_padded(feats, first_n(size, width), size, clusters, c_max, cfg.k,
                                                   padded_noise(stream, noise[:, :width]), used[-1][3])
        kept = torch.tensor([i * c_max + j for i, r in enumerate(used) for j in range(r[4])], dtype=torch.long)
        dest = torch.from_numpy(np.concatenate([np.arange(keys[b], keys[b + 1]) for b in ids]))
        out.index_copy_(0, dest, merged.view(-1, D).index_select(0, kept))
        src.index_copy_(0, dest, torch.gather(index, 1, centres.clamp(max=width - 1)).view(-1).index_select(0, kept))
    if newline_policy == "grid":
        order = torch.argsort(src)
        out, src = out[order], src[order]
    return out.to(x.dtype), src


# ---- registered Method (methods.registry) ----
@dataclass(frozen=True)
class PruneVidFullConfig(PruneVidConfig):
    """PruneVidConfig plus stage 4: after LLM layer ``selected_layer`` (0-indexed; eval.sh 10) keep
    the top ``alpha`` (eval.sh 0.4) of the video tokens by that layer's attention from the last
    prompt token; ``selected_layer=None`` turns stage 4 off."""

    selected_layer: Optional[int] = PRUNEVID_SELECTED_LAYER
    alpha: float = 0.4
    mode: str = "inplace"

    def __post_init__(self) -> None:
        super().__post_init__()  # the pre-LLM part
        if self.selected_layer is not None and (isinstance(self.selected_layer, bool)
                                                or not isinstance(self.selected_layer, int)
                                                or self.selected_layer < 0):
            raise ValueError(f"selected_layer must be None (no inner-LLM stage) or an int layer index >= 0, "
                             f"got {self.selected_layer!r}")
        check_retention(self.alpha, "alpha")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")


_PRE_FIELDS = [f.name for f in dataclasses.fields(PruneVidConfig)]


class PruneVid(Method):
    name = "prunevid"
    description = ("PruneVid: DPC-KNN temporal segments, static-token averaging, DPC-KNN spatial "
                   "merging before the LLM (budget from retention); keeps alpha of the video tokens "
                   "after layer selected_layer by last-token attention")
    Config = PruneVidFullConfig
    stages = ("pre_llm", "inner_llm")
    families = ("llava-onevision", "llava-video", "qwen2.5-vl")
    schedule_options = ("retention", "selected_layer", "alpha")

    @classmethod
    def from_setting(cls, setting: PaperSetting) -> SettingOptions:
        """The retention as the pre-LLM budget; stage 4 after layer 10 (28-layer notation, scaled,
        at most L - 2: it prunes *after* that layer, so one must follow). Priced as the papers'
        tables price PruneVid (HoliTom's FLOPs column: its pre-LLM retention), stage 4 is off."""
        paper = {"selected_layer": None if setting.priced else PRUNEVID_SELECTED_LAYER, **setting.options}
        setting.set_kept(cls.name, paper, "retention", setting.kept_fraction(cls.name))
        out = setting.derive(cls, paper, layers=("selected_layer",))
        if "selected_layer" in out.scaled:
            out.applied["selected_layer"] = min(out.applied["selected_layer"], setting.llm_layers - 2)
            out.scaled["selected_layer"][1] = out.applied["selected_layer"]
        return out

    def pre_config(self) -> PruneVidConfig:
        return PruneVidConfig(**{n: getattr(self.config, n) for n in _PRE_FIELDS})

    def reduce(self, tokens: VideoTokens) -> Reduction:
        return prunevid_reduce(tokens, self.pre_config())

    def inner_plan(self, num_layers) -> Optional[InnerPlan]:
        """Stage 4 through the shared runtime. The official code runs layer ``M = selected_layer``
        with its attention returned, then prunes, so layers > M see the kept tokens: that is an
        InnerStage at ``K = M + 1`` (scores from layer K-1 = M). Scoring: the last prompt token's
        head-averaged row (the end of the question); the official scoring code (``elastic_cache``)
        is not in the released sources we could read, so its exact reduction over question tokens
        and heads is not reproduced. Unlike the official cache pruning, layers < K keep their full
        KV cache."""
        c = self.config
        if c.selected_layer is None:
            return None
        return InnerPlan((InnerStage(c.selected_layer + 1, float(c.alpha)),), scoring="last",
                         mode=c.mode).validate(num_layers)

    pre_llm_budget = True

    def nominal_label(self, arch, frames):
        c, base = self.config, super().nominal_label(arch, frames)
        return base if c.selected_layer is None else f"{base}/alpha={c.alpha:g}@K={c.selected_layer + 1}"

    def nominal_tokens(self, arch, frames, budget="global"):
        """Stages 1-3 keep round_half_up(r*F*N) (retention mode only: with cluster_ratio the count
        depends on the content); stage 4 keeps alpha of them from layer selected_layer + 1."""
        c = self.config
        if c.retention is None:
            raise NotImplementedError(
                "prunevid with cluster_ratio (official fixed ratio) keeps a content-dependent number of "
                "tokens and has no nominal schedule; use retention=")
        pre = pre_llm_tokens(arch, frames, c.retention, budget)
        if c.selected_layer is None:
            return pre
        L = arch.llm.layers
        return NominalTokens(self.inner_plan(L).nominal_visual(pre.kept, L), pre.kept,
                             notes=(f"prunevid stage 4: keep {c.alpha:g} of the video tokens "
                                    f"from layer {c.selected_layer + 1}",))
