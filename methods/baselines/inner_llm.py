"""Baselines with no pre-LLM stage: vanilla, FastV and PyramidDrop (papers.md §4)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from costmodel.nominal import round_half_up  # the nominal schedules' rounding

from methods.base import Method
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

    def nominal_name_and_options(self):
        return "vanilla", {}


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

    def nominal_name_and_options(self):
        return "fastv", {"retention": float(self.config.keep), "k": self.config.k}


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

    def nominal_name_and_options(self):
        return "pdrop", {"lam": float(self.config.lam), "layers": self.config.layers}
