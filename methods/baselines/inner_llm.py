"""Baselines with no pre-LLM stage: vanilla, FastV and PyramidDrop (docs/sources.md#fastv, #pdrop)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Optional

from costmodel.nominal import check_layer, round_half_up  # the nominal schedules' rounding
from costmodel.schedule import staged

from methods.base import Method, NominalTokens
from methods.paper_options import FASTV_K, PDROP_BOUNDARIES_OF_32, PDROP_LAMBDA
from methods.runtime import MODES, SCORINGS, InnerPlan, InnerStage
from methods.setting import PaperSetting, SettingOptions
from methods.types import check_retention

#: where the inner-LLM baselines run: every family whose adapter runs inner plans (not Molmo2)
INNER_LLM_FAMILIES = ("llava-onevision", "llava-video", "qwen2.5-vl")


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


def _check_ranking(config) -> None:
    """The ranking options FastV and PyramidDrop share: ``scoring`` and ``mode``."""
    _check_choice(config.scoring, SCORINGS, "scoring")
    _check_choice(config.mode, MODES, "mode")


class AttentionPruning(Method):
    """What FastV and PyramidDrop share: from each stage's layer on, keep a fraction of the visual
    tokens ranked by the previous layer's attention (``keep_stages``), run by ``methods.runtime``
    and counted by the nominal schedule alike. Subclasses state their stages."""

    stages = ("inner_llm",)
    families = INNER_LLM_FAMILIES
    #: the config option that holds the stages' layers (named in errors)
    layer_option: ClassVar[str] = "k"

    def keep_stages(self, num_layers: int) -> tuple[tuple[int, float], ...]:
        """(layer, fraction of the visual tokens kept from that layer on), layers increasing."""
        raise NotImplementedError

    def inner_plan(self, num_layers):
        stages = tuple(InnerStage(layer, keep) for layer, keep in self.keep_stages(num_layers))
        return InnerPlan(stages, scoring=self.config.scoring, mode=self.config.mode).validate(num_layers)

    def nominal_tokens(self, arch, frames, budget="global"):
        """Full before the first stage, round_half_up(keep * F * N) from each stage's layer on (a
        stage at the last layer's index or beyond prunes nothing); docs/sources.md#fastv."""
        L, full = arch.llm.layers, frames * arch.tokens_per_frame
        stages = [(check_layer(layer, L, self.layer_option), keep) for layer, keep in self.keep_stages(L)]
        counts = [(layer, round_half_up(full * keep)) for layer, keep in stages if layer < L]
        return NominalTokens(staged([(0, full), *counts], L), full, notes=self.nominal_notes(L))

    def nominal_notes(self, num_layers: int) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class VanillaConfig:
    pass


class Vanilla(Method):
    name = "vanilla"
    description = "no reduction (the unmodified model)"
    Config = VanillaConfig
    stages = ()
    retention_kind = "none"
    schedule_options = ()

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
        _check_ranking(self)


class FastV(AttentionPruning):
    name = "fastv"
    description = "FastV: drop low-attention visual tokens after layer K (inside the LLM)"
    Config = FastVConfig
    retention_kind = "optional"  # keep has a default
    notation = {"k": "k"}
    schedule_options = ("k", "keep")

    def keep_stages(self, num_layers):
        return ((self.config.k, float(self.config.keep)),)

    @classmethod
    def from_setting(cls, setting: PaperSetting) -> SettingOptions:
        """K = 2 in the papers' comparisons (28-layer notation, scaled); ``keep`` = the retention
        (the fraction of the visual tokens kept from layer K on), else its default."""
        paper = {"k": FASTV_K, **setting.options}
        r = setting.kept_fraction(cls.name, cls.retention_kind)
        if r is None:
            return setting.derive(cls, paper, layers=("k",))
        setting.set_kept(cls.name, paper, "keep", r)
        return setting.derive(cls, paper, layers=("k",),
                              notes=("fastv: keep = retention (visual tokens kept from layer K on)",))

    def nominal_label(self, arch, frames):
        return f"{arch.name}/{self.name}/F={frames}/r={self.config.keep:g}"


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
        _check_ranking(self)


class PDrop(AttentionPruning):
    name = "pdrop"
    description = "PyramidDrop: keep lam of the visual tokens at each of 3 stage boundaries"
    Config = PDropConfig
    layer_option = "layers"
    retention_kind = "optional"
    schedule_options = ("lam", "layers")

    def boundaries(self, num_layers: int) -> tuple[int, ...]:
        return pdrop_boundaries(num_layers, self.config.layers)

    def keep_stages(self, num_layers):
        """Stage i keeps lam^(i+1) of the visual tokens from boundary i on."""
        bounds = self.boundaries(num_layers)
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"pdrop layers must be strictly increasing, got {bounds} for {num_layers} layers")
        if bounds[0] == 0:
            raise ValueError(f"pdrop layers must be > 0 (layer 0 sees every token), got {bounds}")
        lam = float(self.config.lam)
        return tuple((b, lam ** (i + 1)) for i, b in enumerate(bounds))

    @classmethod
    def from_setting(cls, setting: PaperSetting) -> SettingOptions:
        """Boundaries 8/16/24 of 32 at the paper model's depth (scaled); a retention r sets
        lam = r^(1/stages) so the last stage keeps r, re-derived when boundaries collapse on a
        shallow LLM. Without one, r is what the default schedule keeps at its last stage
        (0.5^stages: the papers' PDrop rows state no retention). The papers publish no retention of
        PDrop's, so a priced setting takes none and keeps the default lam."""
        paper = {"layers": list(pdrop_boundaries(setting.paper_layers)), **setting.options}
        r = setting.kept_fraction(cls.name, cls.retention_kind)
        if r is None and not setting.priced and "lam" not in setting.options and paper["layers"] is not None:
            r = PDROP_LAMBDA ** len(paper["layers"])
        notes = []
        if r is not None:
            if setting.priced:  # only a stated retention reaches here in a priced setting
                raise ValueError("pdrop takes no retention in a priced setting (the papers do not publish how "
                                 "one maps to PDrop's stages); set options lam= and layers=")
            stages = len(paper["layers"])
            paper.setdefault("lam", r ** (1.0 / stages))
            notes.append(f"pdrop: lam = retention^(1/{stages}) so the last stage keeps the retention")
        out = setting.derive(cls, paper, layers=("layers",), notes=notes)
        stages = len(out.applied["layers"])
        if stages < len(paper["layers"]) and r is not None and "lam" not in setting.options:
            out.applied["lam"] = r ** (1.0 / stages)
        return out

    def nominal_notes(self, num_layers):
        bounds = tuple(b for b, _ in self.keep_stages(num_layers))
        return (f"pdrop stage boundaries {bounds}, lam={float(self.config.lam)}",)
