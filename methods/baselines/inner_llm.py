"""Baselines with no pre-LLM stage: vanilla, FastV and PyramidDrop (papers.md §4)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from costmodel.nominal import check_layer, round_half_up  # the nominal schedules' rounding
from costmodel.schedule import staged

from methods.base import Method, NominalTokens
from methods.paper_options import FASTV_K, PDROP_BOUNDARIES_OF_32, PDROP_LAMBDA
from methods.runtime import MODES, SCORINGS, InnerPlan, InnerStage
from methods.types import check_retention


def pdrop_boundaries(num_layers: int, layers=None) -> tuple[int, ...]:
    """PyramidDrop's stage boundaries: ``layers``, else (8, 16, 24)/32 of the depth."""
    if layers:
        return tuple(layers)
    return tuple(round_half_up(b * num_layers / 32) for b in PDROP_BOUNDARIES_OF_32)


def _check_choice(value, allowed, name):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _check_layer(k, name="k"):
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{name} must be an int layer index >= 1 (and <= num_layers - 1), got {k!r}")


@dataclass(frozen=True)
class VanillaConfig:
    pass


class Vanilla(Method):
    name = "vanilla"
    description = "no reduction (the unmodified model)"
    Config = VanillaConfig
    stages = ()

    @classmethod
    def for_retention(cls, retention=None, **options):
        if retention not in (None, 1.0):
            raise ValueError(f"vanilla keeps every token; retention must be None or 1, got {retention!r}")
        return cls(**options)

    def nominal_tokens(self, arch, frames, budget="global"):
        full = frames * arch.tokens_per_frame
        return NominalTokens((full,) * arch.llm.layers, full)


@dataclass(frozen=True)
class FastVConfig:
    """FastV: before layer ``k`` keep ``keep`` of the visual tokens ranked by layer k-1's attention.
    ``scoring``: 'last' (last token's head-averaged row; HoliTom/Tango variant) or 'mean' (all query
    rows; the FastV paper). ``mode='mask'`` masks instead of removing (oracle, no speed-up)."""

    k: int = FASTV_K
    keep: float = 0.5
    scoring: Literal["last", "mean"] = "last"
    mode: Literal["inplace", "mask"] = "inplace"

    def __post_init__(self):
        _check_layer(self.k)
        check_retention(self.keep, "keep")
        _check_choice(self.scoring, SCORINGS, "scoring")
        _check_choice(self.mode, MODES, "mode")


class FastV(Method):
    name = "fastv"
    description = "FastV: drop low-attention visual tokens after layer K (inside the LLM)"
    Config = FastVConfig
    stages = ("inner_llm",)

    def inner_plan(self, num_layers):
        c = self.config
        return InnerPlan((InnerStage(c.k, float(c.keep)),), scoring=c.scoring, mode=c.mode).validate(num_layers)

    @classmethod
    def for_retention(cls, retention=None, **options):
        """FastV's kept fraction after layer k is its option ``keep``."""
        if retention is not None and "keep" in options:
            raise ValueError("fastv: give either retention or option keep (the same kept fraction)")
        return cls(**options) if retention is None else cls(keep=retention, **options)

    def nominal_label(self, arch, frames):
        return f"{arch.name}/{self.name}/F={frames}/r={self.config.keep:g}"

    def nominal_tokens(self, arch, frames, budget="global"):
        """Full for layers < k, round_half_up(keep * F * N) from layer k on (papers.md §4)."""
        L, full = arch.llm.layers, frames * arch.tokens_per_frame
        k = check_layer(self.config.k, L, "k")
        visual = staged([(0, full), (k, round_half_up(full * self.config.keep))], L) if k < L else (full,) * L
        return NominalTokens(visual, full)


@dataclass(frozen=True)
class PDropConfig:
    """PyramidDrop: 4 stages; at each boundary keep ``lam`` of the remaining visual tokens, ranked by
    the last instruction token's attention. ``layers`` None -> (8, 16, 24)/32 of the depth."""

    lam: float = PDROP_LAMBDA
    layers: Optional[tuple[int, ...]] = None
    scoring: Literal["last", "mean"] = "last"
    mode: Literal["inplace", "mask"] = "inplace"

    def __post_init__(self):
        check_retention(self.lam, "lam")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))
            for b in self.layers:
                _check_layer(b, "layers")
        _check_choice(self.scoring, SCORINGS, "scoring")
        _check_choice(self.mode, MODES, "mode")


class PDrop(Method):
    name = "pdrop"
    description = "PyramidDrop: keep lam of the visual tokens at each of 3 stage boundaries"
    Config = PDropConfig
    stages = ("inner_llm",)

    def boundaries(self, num_layers: int) -> tuple[int, ...]:
        return pdrop_boundaries(num_layers, self.config.layers)

    def inner_plan(self, num_layers):
        bounds = self.boundaries(num_layers)
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"pdrop layers must be strictly increasing, got {bounds} for {num_layers} layers")
        lam = float(self.config.lam)
        stages = tuple(InnerStage(b, lam ** (i + 1)) for i, b in enumerate(bounds))
        return InnerPlan(stages, scoring=self.config.scoring, mode=self.config.mode).validate(num_layers)

    @classmethod
    def for_retention(cls, retention=None, **options):
        if retention is not None:
            raise ValueError("pdrop takes no retention; set options lam= and layers=")
        return cls(**options)

    def nominal_tokens(self, arch, frames, budget="global"):
        """4 stages, each keeping lam of the previous one's visual tokens (papers.md §4)."""
        L, full = arch.llm.layers, frames * arch.tokens_per_frame
        lam = float(self.config.lam)
        bounds = tuple(check_layer(b, L, "layers") for b in self.boundaries(L))
        if list(bounds) != sorted(set(bounds)) or bounds[0] == 0:
            raise ValueError(f"pdrop layers must be strictly increasing and > 0, got {bounds}")
        visual = staged([(0, full)] + [(b, round_half_up(full * lam ** (i + 1))) for i, b in enumerate(bounds)], L)
        return NominalTokens(visual, full, notes=(f"pdrop stage boundaries {bounds}, lam={lam}",))
