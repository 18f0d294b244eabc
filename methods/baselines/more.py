"""Registered wrappers of two more pre-LLM baselines: DyCoke (methods.dycoke) and PruneVid
(methods.prunevid). Algorithms and the facts behind them are documented in those modules."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from methods.base import Method, resolve_arch
from methods.dycoke import DyCokeConfig, dycoke_reduce
from methods.prunevid import PruneVidConfig, prunevid_reduce
from methods.registry import register_method
from methods.runtime import MODES, InnerPlan, InnerStage
from methods.types import Reduction, VideoTokens, check_retention


@dataclass(frozen=True)
class DecodeKVPolicy:
    """DyCoke stage (b) as declared (not applied): before layer ``layer`` at every decode step,
    keep the top ``1 - prune`` of the image KV entries by layer ``layer - 1``'s attention of the
    current token, re-selected when the cosine to the previous step's attention < ``sim_threshold``
    (pure rules: methods.dycoke.dycoke_decode_keep / dycoke_decode_refresh)."""

    layer: int
    prune: float
    sim_threshold: float
    applied: bool = False


@register_method("dycoke")
class DyCoke(Method):
    description = ("DyCoke: temporal token merging in 4-frame windows before the LLM (budget from "
                   "retention); its decode-time dynamic KV pruning is declared but NOT applied "
                   "(the runtime's decode loop has no hook for it)")
    Config = DyCokeConfig
    stages = ("pre_llm",)

    def reduce(self, tokens: VideoTokens) -> Reduction:
        return dycoke_reduce(tokens, self.config)

    def decode_policy(self) -> DecodeKVPolicy:
        """Stage (b) as the official code defines it; ``applied`` is False: llm_decode_step offers
        no per-step KV re-selection, so generation attends to the whole (TTM-reduced) cache."""
        c = self.config
        return DecodeKVPolicy(c.decode_layer, float(c.decode_prune), float(c.decode_sim_threshold))

    def nominal_name_and_options(self):
        # The pre-LLM counts agree exactly (round_half_up(r*F*N)); costmodel's "dycoke" does not
        # model stage (b) either, and neither does the runtime.
        return "dycoke", {"retention": float(self.config.retention)}


_PRE_FIELDS = [f.name for f in dataclasses.fields(PruneVidConfig)]


def _prunevid_post_init(self) -> None:
    PruneVidConfig(**{n: getattr(self, n) for n in _PRE_FIELDS})  # validates the pre-LLM part
    if self.selected_layer is not None and (isinstance(self.selected_layer, bool)
                                            or not isinstance(self.selected_layer, int)
                                            or self.selected_layer < 0):
        raise ValueError(f"selected_layer must be None (no inner-LLM stage) or an int layer index >= 0, "
                         f"got {self.selected_layer!r}")
    check_retention(self.alpha, "alpha")
    if self.mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")


PruneVidFullConfig = dataclasses.make_dataclass(
    "PruneVidFullConfig",
    [(f.name, f.type, f) for f in dataclasses.fields(PruneVidConfig)]
    + [("selected_layer", "Optional[int]", dataclasses.field(default=10)),
       ("alpha", "float", dataclasses.field(default=0.4)),
       ("mode", "str", dataclasses.field(default="inplace"))],
    frozen=True, namespace={"__post_init__": _prunevid_post_init,
                            "__doc__": "PruneVidConfig plus stage 4: after LLM layer selected_layer "
                                       "(0-indexed; eval.sh 10) keep the top alpha (eval.sh 0.4) of the "
                                       "video tokens by that layer's attention from the last prompt "
                                       "token; selected_layer=None turns stage 4 off."})


@register_method("prunevid")
class PruneVid(Method):
    description = ("PruneVid: DPC-KNN temporal segments, static-token averaging, DPC-KNN spatial "
                   "merging before the LLM (budget from retention); keeps alpha of the video tokens "
                   "after layer selected_layer by last-token attention")
    Config = PruneVidFullConfig
    stages = ("pre_llm", "inner_llm")

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

    def nominal_name_and_options(self):
        """costmodel's "prunevid" is the pre-LLM count only, so it matches only without stage 4 and
        in retention mode; otherwise None (nominal_schedule below composes stage 4 itself)."""
        c = self.config
        if c.retention is None or c.selected_layer is not None:
            return None
        return "prunevid", {"retention": float(c.retention)}

    def nominal_schedule(self, arch, frames, text_tokens=0, decode_steps=0):
        c = self.config
        if c.retention is None:
            raise NotImplementedError(
                "prunevid with cluster_ratio (official fixed ratio) keeps a content-dependent number of "
                "tokens and has no nominal schedule; use retention=")
        if c.selected_layer is None:
            return super().nominal_schedule(arch, frames, text_tokens, decode_steps)
        from costmodel.nominal import nominal_schedule
        from costmodel.schedule import replace_fields

        spec = resolve_arch(arch)
        base = nominal_schedule(spec, "prunevid", frames=frames, retention=float(c.retention),
                                text_tokens=text_tokens, decode_steps=decode_steps)
        L = len(base.llm_visual)
        visual = self.inner_plan(L).nominal_visual(base.llm_visual[0], L)
        return replace_fields(base, llm_visual=visual,
                              label=f"{base.label}/alpha={c.alpha:g}@K={c.selected_layer + 1}",
                              notes=base.notes + (f"prunevid stage 4: keep {c.alpha:g} of the video tokens "
                                                  f"from layer {c.selected_layer + 1}",))
