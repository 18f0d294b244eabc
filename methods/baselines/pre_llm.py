"""Pre-LLM baselines: VisionZip (HoliTom's OV/Video adaptation), random subset, uniform pooling."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import torch

from costmodel.nominal import check_frames, round_half_up  # the nominal schedules' rounding

from methods.base import Method, pre_llm_tokens, resolve_arch
from methods.primitives.merge import assign_nearest, scatter_mean
from methods.primitives.rng import make_generator
from methods.types import Reduction, VideoTokens, check_retention


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
    ``tokens_per_frame`` (HoliTom's SPATIAL_TOKENS 20/30/40/50 at 10/15/20/25 %)."""

    retention: float
    dominant_share: float = 54 / 64
    tokens_per_frame: Optional[int] = None

    def __post_init__(self):
        check_retention(self.retention)
        if not 0.0 <= self.dominant_share <= 1.0:
            raise ValueError(f"dominant_share must be in [0, 1], got {self.dominant_share!r}")
        if self.tokens_per_frame is not None and (not isinstance(self.tokens_per_frame, int) or self.tokens_per_frame < 1):
            raise ValueError(f"tokens_per_frame must be None or an int >= 1, got {self.tokens_per_frame!r}")


def visionzip_frame(feat: torch.Tensor, attn: torch.Tensor, keys: torch.Tensor, budget: int,
                    dominant_share: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame: feat (N, D), attn (N,), keys (N, Dk) -> (features (b, D), local source (b,)) sorted."""
    N = feat.shape[0]
    budget = min(budget, N)
    n_dom = min(budget, round_half_up(budget * dominant_share))
    n_ctx = budget - n_dom
    dom = torch.topk(attn, n_dom).indices
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
    order = torch.argsort(src)
    return out[order], src[order]


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
        feats, srcs = [], []
        for f in range(F):  # a loop over frames (budgets may differ by one token)
            x, s = visionzip_frame(tokens.features[f], attn[f], tokens.keys[f], int(budgets[f]), c.dominant_share)
            feats.append(x)
            srcs.append(s + f * N)
        return Reduction(torch.cat(feats), torch.cat(srcs), positions="contiguous",
                         info={"tokens_per_frame": budgets.tolist()})

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
