"""DyCoke (Tao et al., CVPR 2025; arXiv 2411.14401) as pure tensor functions.

Two stages:

(a) **TTM, temporal token merging before the LLM** (:func:`dycoke_reduce`). Frames are grouped in
    windows of 4. In the official code (KD-TAO/DyCoke ``llava/model/llava_arch.py::dycole_ttm``,
    read at commit 35cc532, "Update ttm code", the file's last change; issue 24) the comparisons
    inside a window ``(a, a+1, a+2, a+3)`` are:

    - frame ``a`` is the reference and is kept whole;
    - frame ``a+1`` is compared with frame ``a`` (the "adjacent pair" pass);
    - frame ``a+2`` is compared with frame ``a`` (the "odd" pass, stride 2);
    - frame ``a+3`` is compared with frame ``a+2`` -- with its *unpruned* features, the pair pass
      runs on the original frames.

    The comparison is the cosine of the same spatial position; a compared frame keeps its
    ``n`` *least* similar tokens (``topk(largest=False)``) and drops the rest (no averaging, despite
    the name). The official code keeps ``int((1 - k) * N)`` tokens per compared frame, ``k`` being
    ``dycoke_k`` (README: ``dycoke_k=0.7``). Here the budget comes from the retention ``r`` instead:
    ``round_half_up(r * F * N)`` tokens in total (costmodel.nominal's pre-LLM rule), the reference
    frames whole, the rest spread evenly over the compared frames (the first ones take the
    remainder). The smallest reachable retention is therefore ``ceil(F / 4) / F`` (~25 %, the
    setting of DyCoke's row in HoliTom's table); lower values raise ValueError.

    Each pair is pruned with its own similarities, as at 35cc532 (the first commit, 26dc6f4, indexed
    them with ``(i - 2) // 2``, pruning pair ``j`` with pair ``j - 1``'s; 35cc532 fixed that). Run
    beside ours on the same tensors, the kept sets of every frame both prune are equal
    (``tests/methods/test_dycoke_official.py``, from a local mirror of the repository).

    Deliberate deviations from the official code (all documented quirks of that code):
    - its stride-2 pass runs ``range(0, F - 4, 4)``, so the last complete window never prunes its
      third frame; and for odd ``F`` the last frame is silently dropped. Here every window follows
      the same rule and a trailing partial window (``F % 4 != 0``) uses the same references.
    - at ``F <= 4`` that pass finds no window and the official code fails (it stacks an empty list
      of similarities); here any ``F >= 1`` runs (one frame: nothing to compare, kept whole).
    - kept tokens of a compared frame are emitted in spatial order (the official emits them in
      ascending-similarity order). Positions are contiguous: the official splices the shortened
      sequence in, followed by the one newline token.

(b) **Dynamic KV-cache pruning during decoding** (:func:`dycoke_decode_keep`,
    :func:`dycoke_decode_refresh`). Official facts (``llava/model/language_model/modeling_qwen2.py``
    read at commit 2325b63, ``PrunableDynamicCache`` and ``Qwen2Model.forward``; ``llava_qwen.py``
    at 26dc6f4; defaults from the README's lmms-eval example): at decode steps, just
    before layer ``L = dycoke_l`` (README default 3) the attention weights of layer ``L - 1`` are
    averaged over heads, the last (current) query row is restricted to the image span, and its
    cosine similarity to the previous step's row is taken (the first step counts as 0). If it is
    below 0.9 the top ``int(n_img * (1 - p))`` image entries (``p = dycoke_p``, README 0.7) are kept
    and every layer ``>= L`` attends to a *gathered* cache (text + kept image entries + the new
    token); the full cache stays in memory. Quirk kept in the pure rule: the keep list is reset at
    every step, so on a step whose attention is similar (>= 0.9) to the previous one the official
    code attends to the full cache -- :func:`dycoke_decode_refresh` returns None then.

    The project runtime (methods.runtime.llm_decode_step) has no per-step hook to re-select KV
    entries, so **stage (b) is declared but not applied at run time** (see
    methods.baselines.dycoke.DyCoke); the cost model's ``dycoke`` schedule does not model it either.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from costmodel.nominal import round_half_up  # the nominal schedules' rounding

from methods.base import Method, pre_llm_tokens
from methods.paper_options import DYCOKE_DECODE_LAYER
from methods.primitives.padded import ascending_true_positions, upload
from methods.primitives.similarity import cpu_blocked
from methods.setting import PaperSetting, SettingOptions
from methods.types import NotApplicable, Reduction, VideoTokens, check_retention

WINDOW = 4  # frames per TTM window (official)


@dataclass(frozen=True)
class DyCokeConfig:
    """DyCoke hyperparameters (official lmms-eval model_args names in brackets).

    retention: fraction of the F*N video tokens kept by TTM before the LLM (replaces the official
        per-frame pruning rate ``dycoke_k``; see the module docstring).
    decode_layer: layer L whose KV entries (and later ones) are pruned during decoding, scored by
        layer L-1's attention [dycoke_l, README 3].
    decode_prune: fraction of image KV entries pruned at decode steps [dycoke_p, README 0.7].
    decode_sim_threshold: re-select when the cosine of consecutive steps' image attention falls
        below this (hard-coded 0.9 in the official code).
    Stage (b) is declared here but not applied by the runtime (no decode hook).
    """

    retention: float
    decode_layer: int = DYCOKE_DECODE_LAYER
    decode_prune: float = 0.7
    decode_sim_threshold: float = 0.9

    def __post_init__(self) -> None:
        check_retention(self.retention, "DyCokeConfig.retention")
        if isinstance(self.decode_layer, bool) or not isinstance(self.decode_layer, int) or self.decode_layer < 1:
            raise ValueError(f"DyCokeConfig.decode_layer must be an int layer index >= 1, got {self.decode_layer!r}")
        if not 0.0 <= float(self.decode_prune) < 1.0:
            raise ValueError(f"DyCokeConfig.decode_prune must be in [0, 1), got {self.decode_prune!r}")
        if not -1.0 <= float(self.decode_sim_threshold) <= 1.0:
            raise ValueError(
                f"DyCokeConfig.decode_sim_threshold must be a cosine in [-1, 1], got {self.decode_sim_threshold!r}")


def ttm_references(frames: int) -> torch.Tensor:
    """Reference frame of every frame, -1 for frames kept whole: (F,) long.

    Window ``(a, a+1, a+2, a+3)``: ``a -> -1``, ``a+1 -> a``, ``a+2 -> a``, ``a+3 -> a+2``.
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an int >= 1, got {frames!r}")
    f = torch.arange(frames)
    start = f - f % WINDOW
    offset = f % WINDOW
    ref = torch.where(offset == 3, start + 2, start)
    return torch.where(offset == 0, torch.full_like(f, -1), ref)


def ttm_budgets(frames: int, tokens_per_frame: int, retention: float) -> torch.Tensor:
    """Kept tokens per frame: (F,) long. Reference frames keep all N; the remaining budget
    ``round_half_up(r*F*N) - (#references)*N`` is split evenly over the compared frames, the
    earliest compared frames taking the remainder."""
    r = check_retention(retention)
    ref = ttm_references(frames)
    N = tokens_per_frame
    n_ref = int((ref < 0).sum())
    total = max(1, round_half_up(r * frames * N))
    rest = total - n_ref * N
    if rest < 0:
        raise NotApplicable(
            f"dycoke keeps the first frame of every {WINDOW}-frame window whole, so with F={frames} frames "
            f"retention must be >= {n_ref}/{frames} = {n_ref / frames:.4f}; got {retention!r}")
    budgets = torch.full((frames,), N, dtype=torch.long)
    compared = (ref >= 0).nonzero().flatten()
    if compared.numel():
        base, extra = divmod(rest, compared.numel())
        per = torch.full((compared.numel(),), base, dtype=torch.long)
        per[:extra] += 1
        budgets[compared] = per
    return budgets


def ttm_similarity(x: torch.Tensor, ref: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Cosine of every token with the same position of its reference frame: (F, N) fp32, NaN for
    frames kept whole. ``x`` (F, N, D); ``ref`` defaults to :func:`ttm_references`.

    The default references take three strided batched dot products whatever F is (offset 1 and 2
    of every window against its first frame, offset 3 against offset 2): no gathered copies."""
    if x.dim() != 3:
        raise ValueError(f"x must be (F, N, D), got shape {tuple(x.shape)}")
    F, N, _ = x.shape
    sim = torch.full((F, N), float("nan"), dtype=torch.float32, device=x.device)
    if ref is None and cpu_blocked(x):
        return _window_similarity_blocked(x, sim)
    norms = torch.linalg.vector_norm(x.float(), dim=-1).clamp_(min=1e-8)   # (F, N), eps as F.cosine_similarity
    if ref is None:
        for off, roff in ((1, 0), (2, 0), (3, 2)):
            n = len(range(off, F, WINDOW))
            if n:
                a, b = x[off::WINDOW][:n], x[roff::WINDOW][:n]
                sim[off::WINDOW] = torch.linalg.vecdot(a.float(), b.float()) / (norms[off::WINDOW] * norms[roff::WINDOW][:n])
        return sim
    ref = ref.to(x.device)
    compared = (ref >= 0).nonzero().flatten()
    r = ref[compared]
    sim[compared] = torch.linalg.vecdot(x[compared].float(), x[r].float()) / (norms[compared] * norms[r])
    return sim


def _window_similarity_blocked(x: torch.Tensor, sim: torch.Tensor) -> torch.Tensor:
    """:func:`ttm_similarity` with the default references on CPU, one window at a time: each
    frame's norm and its dot with its reference are taken while both frames are cache-hot, a single
    pass over ``x`` whose temporaries are one frame (the batched pass writes and re-reads products
    of several frames; same per-element operations, same results). Fills and returns ``sim``."""
    F = x.shape[0]
    norms = torch.empty(sim.shape, dtype=torch.float32, device=x.device)
    for a in range(0, F, WINDOW):
        frames = [x[f].float() for f in range(a, min(a + WINDOW, F))]
        for i, cur in enumerate(frames):
            torch.linalg.vector_norm(cur, dim=-1, out=norms[a + i])
            norms[a + i].clamp_(min=1e-8)
        for off, roff in ((1, 0), (2, 0), (3, 2)):
            if off < len(frames):
                sim[a + off] = torch.linalg.vecdot(frames[off], frames[roff]) / (norms[a + off] * norms[a + roff])
    return sim


def ttm_keep_mask(sim: torch.Tensor, budgets: torch.Tensor) -> torch.Tensor:
    """BoolTensor (F, N): in every frame keep the ``budgets[f]`` least similar positions (a frame
    whose similarity row is NaN -- a reference frame -- keeps its first ``budgets[f]``, i.e. all).
    Ties go to the lower position (stable sort)."""
    if sim.dim() != 2 or budgets.shape != (sim.shape[0],):
        raise ValueError(f"need sim (F, N) and budgets (F,), got {tuple(sim.shape)} and {tuple(budgets.shape)}")
    s = torch.nan_to_num(sim.float(), nan=-2.0)  # a reference frame: every position ranks first
    order = torch.argsort(s, dim=1, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(s.shape[1], device=s.device).expand_as(order))
    return rank < budgets.to(s.device).unsqueeze(1)


def dycoke_reduce(tokens: VideoTokens, cfg: DyCokeConfig) -> Reduction:
    """DyCoke TTM (stage a) on one video: kept tokens in time order, spatial order within a frame,
    contiguous positions. ``info`` has the per-frame budgets and the effective per-frame pruning
    rate of the compared frames (the official ``dycoke_k``)."""
    if not isinstance(cfg, DyCokeConfig):
        raise ValueError(f"cfg must be a DyCokeConfig, got {type(cfg).__name__}")
    x = tokens.features
    F, N, D = x.shape
    ref = ttm_references(F)
    budgets = ttm_budgets(F, N, cfg.retention)                  # host: depends on shapes only
    sim = ttm_similarity(x)
    keep = ttm_keep_mask(sim, upload(budgets, x.device))
    source = ascending_true_positions(keep.flatten()[None], int(budgets.sum()))[0]  # count known: no sync
    compared = ref >= 0
    mean_kept = float(budgets[compared].float().mean()) if bool(compared.any()) else float(N)
    info = {
        "method": "dycoke",
        "references": ref.tolist(),
        "tokens_per_frame": budgets.tolist(),
        "prune_rate_compared": 1.0 - mean_kept / N,
        "tokens_in": F * N,
        "tokens_out": int(source.numel()),
    }
    return Reduction(x.reshape(F * N, D).index_select(0, source), source, positions="contiguous", info=info)


# ---- stage (b): decode-time KV selection (pure rules; not wired into the runtime) ----------------

def dycoke_decode_keep(attn_row: torch.Tensor, p: float) -> torch.Tensor:
    """Image KV entries kept at a decode step: the ``int(n * (1 - p))`` highest entries of the
    current token's head-averaged attention over the n image tokens, as ascending indices into
    the image span (official ``update_cache``); ties go to the lower index. ``attn_row`` (n,)."""
    if attn_row.dim() != 1:
        raise ValueError(f"attn_row must be (n_image,), got shape {tuple(attn_row.shape)}")
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"p (pruned fraction of image KV entries) must be in [0, 1), got {p!r}")
    n_keep = int(attn_row.numel() * (1.0 - float(p)))
    # stable descending sort: ties go to the lower index (torch.topk leaves their order unspecified)
    order = torch.argsort(attn_row.float(), descending=True, stable=True)
    return order[:n_keep].sort().values


def dycoke_decode_refresh(attn_row: torch.Tensor, prev_row: Optional[torch.Tensor], p: float,
                          threshold: float = 0.9) -> tuple[Optional[torch.Tensor], float]:
    """One decode step of DyCoke's KV policy: (keep indices or None, similarity).

    similarity = cos(attn_row, prev_row) (0 when there is no previous step). Below ``threshold``
    a new keep set is chosen with :func:`dycoke_decode_keep`; otherwise None, which in the official
    code means this step attends to the full cache (the keep list is reset at every step)."""
    if prev_row is None:
        sim = 0.0
    else:
        if prev_row.shape != attn_row.shape:
            raise ValueError(f"prev_row must have the shape of attn_row {tuple(attn_row.shape)}, "
                             f"got {tuple(prev_row.shape)}")
        sim = float(torch.nn.functional.cosine_similarity(attn_row.float(), prev_row.float(), dim=0))
    if sim < threshold:
        return dycoke_decode_keep(attn_row, p), sim
    return None, sim


# ---- registered Method (methods.registry) ----
@dataclass(frozen=True)
class DecodeKVPolicy:
    """DyCoke stage (b) as declared (not applied): before layer ``layer`` at every decode step,
    keep the top ``1 - prune`` of the image KV entries by layer ``layer - 1``'s attention of the
    current token, re-selected when the cosine to the previous step's attention < ``sim_threshold``
    (pure rules: methods.baselines.dycoke.dycoke_decode_keep / dycoke_decode_refresh)."""

    layer: int
    prune: float
    sim_threshold: float
    applied: bool = False


class DyCoke(Method):
    name = "dycoke"
    description = ("DyCoke: temporal token merging in 4-frame windows before the LLM (budget from "
                   "retention); its decode-time dynamic KV pruning is declared but NOT applied "
                   "(the runtime's decode loop has no hook for it)")
    Config = DyCokeConfig
    stages = ("pre_llm",)
    families = ("llava-onevision", "llava-video", "qwen2.5-vl")

    @classmethod
    def from_setting(cls, setting: PaperSetting) -> SettingOptions:
        """The retention as TTM's budget; the decode layer 3 in 28-layer notation, scaled."""
        paper = {"decode_layer": DYCOKE_DECODE_LAYER, **setting.options}
        setting.set_kept(cls.name, paper, "retention", setting.kept_fraction(cls.name))
        return setting.derive(cls, paper, layers=("decode_layer",))

    def reduce(self, tokens: VideoTokens) -> Reduction:
        return dycoke_reduce(tokens, self.config)

    def decode_policy(self) -> DecodeKVPolicy:
        """Stage (b) as the official code defines it; ``applied`` is False: llm_decode_step offers
        no per-step KV re-selection, so generation attends to the whole (TTM-reduced) cache."""
        c = self.config
        return DecodeKVPolicy(c.decode_layer, float(c.decode_prune), float(c.decode_sim_threshold))

    pre_llm_budget = True

    def nominal_tokens(self, arch, frames, budget="global"):
        """Stage (a)'s round_half_up(r*F*N); stage (b) (decode-time KV pruning) is not modelled, as
        the runtime does not apply it either."""
        return pre_llm_tokens(arch, frames, self.config.retention, budget)
