"""Pre-LLM baselines: VisionZip (HoliTom's OV/Video adaptation), random subset, uniform pooling.

VisionZip's official code here is HoliTom's port (cokeshao/HoliTom at e9b2972,
``visionzip/llava_arch.py``, last changed at e5f7da2), read for issue 24. Per frame after the 2-D
pooling, with a budget of ``b`` tokens (its ``SPATIAL_TOKENS``): ``int(b * 54/64)`` dominant tokens
by top-k attention (16 + 4 at b = 20, 33 + 7 at b = 40; 25 + 5 at 30 and 42 + 8 at 50), taken in
position order; targets every ``max(1, (N - dominant) // contextual)``-th non-dominant token; every
other non-dominant token joins its most key-cosine-similar target; contextual = target + mean of
its members. In the one-token layout (LLaVA-OV) a frame is emitted as [dominant tokens in position
order; contextual tokens in position order] and the prompt's position ids are contiguous in that
order; in the grid layout (LLaVA-Video) the frame's tokens are sorted by position (the layout puts
a newline after every pooled row). ``fidelity="project"`` is this project's earlier reading:
``round_half_up(b * 54/64)`` dominant tokens (17 + 3 at 20, 34 + 6 at 40) and every frame sorted by
position. Not reproduced: the official grid layout adds a newline after every pooled row, also a
row that keeps no token; the LLaVA-Video prompt builder here adds one only after rows that keep one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, Optional

import torch

from costmodel.nominal import check_frames, round_half_up  # the nominal schedules' rounding

from methods.base import Method, pre_llm_tokens, resolve_arch
from methods.primitives.merge import assign_nearest, scatter_mean
from methods.primitives.rng import make_generator
from methods.types import BASELINE_FIDELITIES, Reduction, VideoTokens, check_fidelity, check_retention


def video_budget(tokens: VideoTokens, retention: float) -> int:
    """Kept tokens of a pre-LLM method: max(1, round_half_up(r * F * N)) (costmodel.nominal rule)."""
    return max(1, round_half_up(retention * tokens.num_tokens))


def frame_budgets(total: int, frames: int, per_frame_max: int) -> torch.Tensor:
    """Split ``total`` over frames as evenly as possible (the first frames take the remainder)."""
    base, extra = divmod(total, frames)
    b = torch.full((frames,), base, dtype=torch.long)
    b[:extra] += 1
    return b.clamp_(max=per_frame_max)


@dataclass(frozen=True)
class VisionZipConfig:
    """VisionZip as HoliTom adapted it to LLaVA-OV/Video (docs/sources.md#visionzip): per frame after pooling,
    ``round(b * dominant_share)`` dominant tokens by ``vit_attn_received`` top-k, the rest of the
    budget ``b`` as contextual tokens: uniform targets among the non-dominant tokens, every other
    non-dominant token assigned to its most key-cosine-similar target, contextual = target + mean
    of its assigned tokens. Budget: round(r*F*N) spread evenly over frames, or a fixed
    ``tokens_per_frame`` (HoliTom's SPATIAL_TOKENS 20/30/40/50 at 10/15/20/25 %). ``fidelity``:
    'released' takes int(b * dominant_share) dominant tokens and emits a one-token-layout frame as
    [dominant; contextual] (HoliTom's port), 'project' rounds half up and sorts every frame by
    position (module docstring)."""

    retention: float
    dominant_share: float = 54 / 64
    tokens_per_frame: Optional[int] = None
    fidelity: Literal["released", "project"] = "released"

    def __post_init__(self):
        check_retention(self.retention)
        check_fidelity(self.fidelity, BASELINE_FIDELITIES, "visionzip fidelity")
        if not 0.0 <= self.dominant_share <= 1.0:
            raise ValueError(f"dominant_share must be in [0, 1], got {self.dominant_share!r}")
        if self.tokens_per_frame is not None and (not isinstance(self.tokens_per_frame, int) or self.tokens_per_frame < 1):
            raise ValueError(f"tokens_per_frame must be None or an int >= 1, got {self.tokens_per_frame!r}")


def visionzip_split(budget: int, dominant_share: float, fidelity: str = "released") -> tuple[int, int]:
    """(dominant, contextual) tokens of a frame budget: int(b * share) (``project``: round half up)."""
    n_dom = int(budget * dominant_share) if fidelity == "released" else round_half_up(budget * dominant_share)
    n_dom = min(budget, n_dom)
    return n_dom, budget - n_dom


def visionzip_frame(feat: torch.Tensor, attn: torch.Tensor, keys: torch.Tensor, budget: int,
                    dominant_share: float, fidelity: str = "released",
                    sort: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame: feat (N, D), attn (N,), keys (N, Dk) -> (features (b, D), local source (b,)),
    sorted by position, or (``sort=False``) [dominant; contextual], each in position order."""
    N = feat.shape[0]
    budget = min(budget, N)
    n_dom, n_ctx = visionzip_split(budget, dominant_share, fidelity)
    dom = torch.topk(attn, n_dom).indices.sort().values
    if n_ctx == 0:
        src, out = dom, feat[dom]
    else:
        rest_mask = torch.ones(N, dtype=torch.bool, device=feat.device)
        rest_mask[dom] = False
        rest = rest_mask.nonzero().squeeze(1)
        step = max(1, rest.numel() // n_ctx)
        t_local = torch.arange(0, rest.numel(), step, device=feat.device)[:n_ctx]
        targets = rest[t_local]
        other_mask = torch.ones(rest.numel(), dtype=torch.bool, device=feat.device)
        other_mask[t_local] = False
        others = rest[other_mask]
        ctx = feat[targets]
        if others.numel():
            assign = assign_nearest(keys[others], keys[targets], metric="cosine")
            mean, _ = scatter_mean(feat[others].float(), assign, targets.numel())
            ctx = (ctx.float() + mean).to(feat.dtype)
        src = torch.cat([dom, targets])
        out = torch.cat([feat[dom], ctx])
    if not sort:
        return out, src
    order = torch.argsort(src)
    return out[order], src[order]


def visionzip_frames(features: torch.Tensor, attn: torch.Tensor, keys: torch.Tensor, start: int, end: int,
                     budget: int, dominant_share: float, fidelity: str = "released",
                     sort: bool = True, out: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`visionzip_frame` on frames ``start:end`` of one budget at once, without host syncs:
    features (F, N, D), attn (F, N), keys (F, N, Dk) -> (features ((end-start)*b, D), global source
    index f * N + n), frame by frame in the per-frame function's order. Every size is known on the
    host (each frame keeps ``b`` tokens, ``N - dominant`` are not dominant), so the position-order
    selections are stable sorts of masks instead of ``nonzero``. The kept rows are gathered once, in
    output order (into ``out``, a contiguous ((end-start)*b, D) tensor, when given); the contextual
    rows then get their members' means added in place."""
    F, N, D = features.shape
    dev = features.device
    G = end - start
    budget = min(budget, N)
    n_dom, n_ctx = visionzip_split(budget, dominant_share, fidelity)
    base = (torch.arange(start, end, device=dev) * N).unsqueeze(1)  # (G, 1) global offset
    flat = features.reshape(F * N, D)
    dom = torch.topk(attn[start:end], n_dom, dim=1).indices.sort(dim=1).values  # (G, n_dom)
    if n_ctx == 0:
        src = (dom + base).reshape(-1)
        return torch.index_select(flat, 0, src, out=out), src
    ranked = _contextual_roles(dom, N, n_ctx)  # (G, R): targets, then the others
    targets = ranked[:, :n_ctx]
    src = torch.cat([dom, targets], dim=1)
    if sort:
        src = torch.sort(src, dim=1).values
        rows = torch.searchsorted(src, targets.contiguous())  # where each target lands (sources are distinct)
    flat_src = (src + base).reshape(-1)
    out = torch.index_select(flat, 0, flat_src, out=out)
    if ranked.shape[1] > n_ctx:
        mean = _contextual_means(features, keys, start, end, base, ranked, n_ctx)
        kept = out.view(G, budget, D)
        if sort:
            at = rows.unsqueeze(-1).expand(-1, -1, D)
            kept.scatter_(1, at, (kept.gather(1, at).float() + mean).to(out.dtype))
        else:  # [dominant; contextual]: the contextual rows are the last n_ctx of every frame
            ctx = kept[:, n_dom:]
            ctx.copy_((ctx.float() + mean).to(out.dtype))
    return out, flat_src


def _contextual_roles(dom: torch.Tensor, N: int, n_ctx: int) -> torch.Tensor:
    """(G, R): the R = N - n_dom non-dominant tokens of every frame, the ``n_ctx`` contextual
    targets first (every ``max(1, R // n_ctx)``-th of them), then the others, each in position
    order."""
    G, n_dom = dom.shape
    dev = dom.device
    R = N - n_dom
    is_dom = torch.zeros((G, N), dtype=torch.uint8, device=dev).scatter_(1, dom, 1)
    rest = torch.sort(is_dom, dim=1, stable=True).indices[:, :R]  # non-dominant, position order
    step = max(1, R // n_ctx)
    r = torch.arange(R, device=dev)
    not_target = ((r % step != 0) | (r >= step * n_ctx)).to(torch.uint8)
    role = torch.sort(not_target, stable=True).indices  # targets, then the others, each in order
    return rest.index_select(1, role)


def _contextual_means(features: torch.Tensor, keys: torch.Tensor, start: int, end: int, base: torch.Tensor,
                      ranked: torch.Tensor, n_ctx: int) -> torch.Tensor:
    """Mean features of the tokens assigned to each target (most key-cosine-similar): (G, n_ctx, D)
    fp32; ``ranked`` as :func:`_contextual_roles` returns it, ``base`` the frames' offsets f * N
    (G, 1). Summed straight from the frames (in every frame the tokens that are not members go to
    a spare group, n_ctx) instead of from a gathered copy of the members: the same sums in the
    same order, without a fresh (G, M, D) tensor."""
    F, N, D = features.shape
    G = ranked.shape[0]
    k = keys.reshape(F * N, keys.shape[-1]).index_select(0, (ranked + base).reshape(-1)).reshape(G, ranked.shape[1], -1)
    assign = assign_nearest(k[:, n_ctx:], k[:, :n_ctx], metric="cosine")  # (G, M)
    member = torch.full((G, N), n_ctx, dtype=torch.long, device=features.device).scatter_(1, ranked[:, n_ctx:], assign)
    group = member + torch.arange(G, device=features.device).unsqueeze(1) * (n_ctx + 1)
    mean, _ = scatter_mean(features[start:end].reshape(G * N, D).float(), group.reshape(-1), G * (n_ctx + 1))
    return mean.view(G, n_ctx + 1, D)[:, :n_ctx]


class VisionZip(Method):
    name = "visionzip"
    description = "VisionZip (HoliTom's OV/Video port): dominant attention top-k + merged contextual tokens per frame"
    Config = VisionZipConfig
    stages = ("pre_llm",)
    families = ("llava-onevision", "llava-video", "qwen2.5-vl")  # needs ViT keys and received attention
    schedule_options = ("retention", "tokens_per_frame")

    def reduce(self, tokens: VideoTokens) -> Reduction:
        attn = tokens.require("vit_attn_received")
        if tokens.keys is None:
            raise KeyError("visionzip needs VideoTokens.keys (pooled vision-tower keys); the adapter provided none")
        F, N, _ = tokens.features.shape
        c = self.config
        if c.tokens_per_frame is not None:
            budgets = torch.full((F,), min(c.tokens_per_frame, N), dtype=torch.long)
        else:
            budgets = frame_budgets(video_budget(tokens, c.retention), F, N)
        # the released port sorts a frame by position only in the grid layout
        sort = c.fidelity == "project" or tokens.newline_policy == "grid"
        # budgets depend on shapes only: frames with equal budgets (at most two runs, the first
        # frames taking the remainder) are reduced together, frame order kept
        per_frame = budgets.tolist()
        feats = tokens.features.new_empty((sum(per_frame), tokens.features.shape[-1]))  # each run writes its rows
        srcs = []
        start = 0
        while start < F:
            end = start
            while end < F and per_frame[end] == per_frame[start]:
                end += 1
            rows = feats[sum(per_frame[:start]):sum(per_frame[:end])]
            srcs.append(visionzip_frames(tokens.features, attn, tokens.keys, start, end, per_frame[start],
                                         c.dominant_share, c.fidelity, sort, out=rows)[1])
            start = end
        return Reduction(feats, torch.cat(srcs) if len(srcs) > 1 else srcs[0], positions="contiguous",
                         info={"tokens_per_frame": per_frame, "fidelity": c.fidelity})

    @property
    def pre_llm_budget(self) -> bool:
        return self.config.tokens_per_frame is None

    def nominal_tokens(self, arch, frames, budget="global"):
        return pre_llm_tokens(arch, frames, self.config.retention, budget)

    def nominal_schedule(self, arch, frames=None, text_tokens=0, decode_steps=0, *, budget="global", label=None):
        if self.config.tokens_per_frame is None:
            return super().nominal_schedule(arch, frames, text_tokens, decode_steps, budget=budget, label=label)
        spec = resolve_arch(arch)
        return _pre_llm_schedule(spec, frames, min(self.config.tokens_per_frame, spec.tokens_per_frame),
                                 text_tokens, decode_steps, self.name, label, rows=None)


@dataclass(frozen=True)
class RandomConfig:
    """Seeded uniform random subset of round(r*F*N) tokens, kept in original order."""

    retention: float
    seed: int = 0

    def __post_init__(self):
        check_retention(self.retention)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")


class RandomSubset(Method):
    name = "random"
    description = "random pre-LLM subset (seeded), original order"
    Config = RandomConfig
    stages = ("pre_llm",)

    def reduce(self, tokens: VideoTokens) -> Reduction:
        F, N, D = tokens.features.shape
        kept = video_budget(tokens, self.config.retention)
        gen = make_generator(self.config.seed)
        idx = torch.randperm(F * N, generator=gen)[:kept].sort().values.to(tokens.features.device)
        return Reduction(tokens.features.reshape(F * N, D)[idx], idx, positions="contiguous")

    pre_llm_budget = True

    def nominal_tokens(self, arch, frames, budget="global"):
        return pre_llm_tokens(arch, frames, self.config.retention, budget)


@dataclass(frozen=True)
class UniformPoolConfig:
    """Average-pool every frame's (h, w) grid to (h', w') = (round(h*sqrt(r)), round(w*sqrt(r))),
    at least 1. Each pooled token's source is the grid cell at the centre of its pooling window.
    The kept count F*h'*w' only approximates r*F*N, so the nominal schedule is this method's own."""

    retention: float

    def __post_init__(self):
        check_retention(self.retention)


def pooled_grid(grid: tuple[int, int], retention: float) -> tuple[int, int]:
    s = math.sqrt(retention)
    h, w = grid
    return (min(h, max(1, round_half_up(h * s))), min(w, max(1, round_half_up(w * s))))


class UniformPool(Method):
    name = "uniform-pool"
    description = "uniform spatial average pooling of each frame to the retention"
    Config = UniformPoolConfig
    stages = ("pre_llm",)

    def reduce(self, tokens: VideoTokens) -> Reduction:
        F, N, D = tokens.features.shape
        h, w = tokens.grid
        hp, wp = pooled_grid(tokens.grid, self.config.retention)
        g = tokens.features.reshape(F, h, w, D).permute(0, 3, 1, 2)
        pooled = torch.nn.functional.adaptive_avg_pool2d(g.float(), (hp, wp)).to(g.dtype)
        feats = pooled.permute(0, 2, 3, 1).reshape(F * hp * wp, D)
        rows = ((torch.arange(hp) + 0.5) * h / hp).floor().long()
        cols = ((torch.arange(wp) + 0.5) * w / wp).floor().long()
        cell = (rows[:, None] * w + cols[None, :]).reshape(-1)
        src = (torch.arange(F)[:, None] * N + cell[None, :]).reshape(-1).to(feats.device)
        return Reduction(feats, src, positions="contiguous", info={"pooled_grid": (hp, wp)})

    def nominal_schedule(self, arch, frames=None, text_tokens=0, decode_steps=0, *, budget="global", label=None):
        """Its own kept count F*h'*w' (no rounding of r*F*N applies, so ``budget`` has no effect)."""
        spec = resolve_arch(arch)
        hp, wp = pooled_grid(tuple(spec.pooled_grid), self.config.retention)
        return _pre_llm_schedule(spec, frames, hp * wp, text_tokens, decode_steps, self.name, label, rows=hp)


def _pre_llm_schedule(spec, frames: Optional[int], per_frame: int, text_tokens: int, decode_steps: int,
                      name: str, label: Optional[str], rows: Optional[int]):
    """Schedule of the pre-LLM method ``name`` keeping ``per_frame`` tokens in every frame."""
    from methods.baselines.inner_llm import Vanilla

    frames = check_frames(spec.default_frames if frames is None else frames)
    base = Vanilla().nominal_schedule(spec, frames, text_tokens, decode_steps)
    kept = frames * per_frame
    if spec.newline == "one_token":
        newline = 1
    elif spec.newline == "grid":
        newline = frames * rows if rows is not None else min(frames * spec.pooled_grid[0], kept)
    else:
        newline = 0
    L = base.llm_layers
    return replace(base, llm_visual=(kept,) * L, llm_newline=(newline,) * L,
                   label=label or f"{spec.name}/{name}/F={frames}")
