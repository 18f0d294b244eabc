"""Typed plan for pruning inside the LLM (FastV, PDrop, HoliTom Stage III, Tango intra-LLM).

A plan is a list of stages. Stage ``(layer=K, keep=p)`` means: just before decoder layer ``K``
(0-indexed) the visual *feature* tokens still alive are scored with layer ``K-1``'s attention and
the best ``round_half_up(n0 * p)`` of them are kept, ``n0`` being the visual tokens that entered
the LLM; the rest are dropped or merged into the kept ones. Newline
tokens and text are never pruned inside the LLM (project convention, costmodel/schedule.py).

Two plan options reproduce a released implementation that counts differently (Tango's LLaVA-Video
intra-LLM stage, xjtupanda/Tango ``intra_llm_pruning/fastv_tango.py``, commit 610c264):
``span="visual"`` ranks the whole visual span, grid newline tokens included (so newlines can be
pruned and ``n0`` counts them), and ``rounding="half_even"`` is Python's ``round`` (ties to even).

Two more reproduce PyramidDrop's released code (Cooperx521/PyramidDrop
``llava/model/modeling_llama_pdrop.py``, ``pdrop_rank_drop``): ``rank_layer="next"`` scores with the
query/key projections of layer ``K`` itself (the first layer of the new stage) on that layer's input,
after its input layernorm and RoPE, instead of layer ``K-1``'s; ``positions="renumber"`` gives the
tokens that survive a stage the position ids 0..L'-1 (decode continues from L'), instead of keeping
their original ids. ``rounding="floor"`` is its ``int(n * ratio)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Scoring = Literal["last", "mean"]
Span = Literal["features", "visual"]
Rounding = Literal["half_up", "half_even"]
MergeKind = Literal["drop", "mean", "blend", "running-pairwise"]
Mode = Literal["inplace", "mask"]
RankLayer = Literal["previous", "next"]
PositionRule = Literal["original", "renumber"]

SCORINGS = ("last", "mean")
MERGES = ("drop", "mean", "blend", "running-pairwise")
MODES = ("inplace", "mask")
SPANS = ("features", "visual")
ROUNDINGS = ("half_up", "half_even", "floor")
RANK_LAYERS = ("previous", "next")
POSITION_RULES = ("original", "renumber")

#: absorbs the float error of a computed fraction (0.7 ** 2 = 0.48999999999999994) under "floor",
#: which a released ratio list written as literals (0.49) does not have
FLOOR_EPS = 1e-9


def inner_keep_count(n: int, keep: float, rounding: str = "half_up") -> int:
    """Visual tokens kept at a stage: ``round_half_up(n * keep)`` where ``n`` is the number of visual
    tokens that entered layer 0 (so PDrop's stages are lam, lam^2, lam^3 of the entering
    count). Same rounding as costmodel.nominal, so recorded and nominal schedules agree.
    ``rounding="half_even"``: Python's ``round(n * keep)`` as released code computes it (FastV,
    Tango); ``"floor"``: ``int(n * keep)`` (PyramidDrop), see ``FLOOR_EPS``."""
    if rounding == "half_up":
        return int(math.floor(n * keep + 0.5))
    if rounding == "half_even":
        return int(round(n * keep))
    if rounding == "floor":
        return int(math.floor(n * keep + FLOOR_EPS))
    raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")


@dataclass(frozen=True)
class InnerStage:
    layer: int      # K: pruning happens right before decoder layer K; scores come from layer K-1
    keep: float     # fraction of the visual feature tokens *entering layer 0* still alive after this stage

    def __post_init__(self) -> None:
        if not isinstance(self.layer, int) or isinstance(self.layer, bool):
            raise ValueError(f"InnerStage.layer must be an int, got {self.layer!r}")
        if not 0.0 < float(self.keep) <= 1.0:
            raise ValueError(f"InnerStage.keep must be in (0, 1], got {self.keep!r}")


@dataclass(frozen=True)
class InnerPlan:
    stages: tuple[InnerStage, ...]
    scoring: Scoring = "last"            # query rows: the last prompt token, or the mean of all rows
    merge: MergeKind = "drop"            # what happens to the tokens that are not kept
    blend_weight: float = 0.6            # Tango intra-LLM: new = w * kept + (1 - w) * cluster mean
    mode: Mode = "inplace"               # inplace: tokens removed; mask: kept in the sequence but masked
    span: Span = "features"              # ranked tokens: visual features, or the whole span with newlines
    rounding: Rounding = "half_up"       # keep count: round half up, Python's round (ties to even), or int()
    rank_layer: RankLayer = "previous"   # scores from layer K-1 on its input (FastV), or layer K (PDrop)
    positions: PositionRule = "original" # survivors keep their position ids, or are renumbered 0..L'-1
    score_chunk: int = 512               # query rows per chunk when scoring="mean"
    stages_sorted: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        stages = tuple(s if isinstance(s, InnerStage) else InnerStage(*s) for s in self.stages)
        object.__setattr__(self, "stages", tuple(sorted(stages, key=lambda s: s.layer)))
        if len({s.layer for s in stages}) != len(stages):
            raise ValueError(f"InnerPlan stages must have distinct layers, got {[s.layer for s in stages]}")
        keeps = [float(s.keep) for s in self.stages]
        if keeps != sorted(keeps, reverse=True):
            raise ValueError(f"stage keep fractions (of the entering tokens) must not increase, got {keeps}")
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        if self.merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {self.merge!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.span not in SPANS:
            raise ValueError(f"span must be one of {SPANS}, got {self.span!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {self.rounding!r}")
        if self.rank_layer not in RANK_LAYERS:
            raise ValueError(f"rank_layer must be one of {RANK_LAYERS}, got {self.rank_layer!r}")
        if self.positions not in POSITION_RULES:
            raise ValueError(f"positions must be one of {POSITION_RULES}, got {self.positions!r}")
        if not 0.0 <= self.blend_weight <= 1.0:
            raise ValueError(f"blend_weight must be in [0, 1], got {self.blend_weight!r}")

    def validate(self, num_layers: int) -> "InnerPlan":
        for s in self.stages:
            if not 1 <= s.layer <= num_layers - 1:
                raise ValueError(
                    f"inner-LLM pruning layer K={s.layer} is outside the allowed range "
                    f"[1, {num_layers - 1}] for an LLM with {num_layers} layers")
        return self

    def nominal_visual(self, visual: int, num_layers: int) -> tuple[int, ...]:
        """Per-layer visual count this plan produces from ``visual`` tokens at layer 0 (with
        ``span="visual"``: the whole span, newlines included)."""
        self.validate(num_layers)
        out, n, it = [], visual, iter(self.stages)
        stage = next(it, None)
        for layer in range(num_layers):
            while stage is not None and stage.layer == layer:
                n = min(n, inner_keep_count(visual, stage.keep, self.rounding))
                stage = next(it, None)
            out.append(n)
        return tuple(out)
