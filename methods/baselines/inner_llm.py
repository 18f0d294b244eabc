"""Baselines with no pre-LLM stage: vanilla, FastV and PyramidDrop (docs/sources.md#fastv, #pdrop).

``fidelity="released"`` (default) computes what the official code computes; ``"project"`` is this
project's earlier reading (kept to measure the difference). Official code read (issue 24):

- **FastV**: pkunlp-icler/FastV at d165972, ``src/FastV/llava-hf/transformers/src/transformers/
  models/llama/modeling_llama.py`` (last changed at e5faf2a). Before layer K the last token's
  head-averaged attention row of layer K-1 ranks the image tokens; the kept count is Python's
  ``round(n * (1 - R))`` -- ties to even, so at n = 6273, keep 0.5 it keeps 3136 where rounding half
  up keeps 3137 (``project``); kept tokens keep their original position ids (both fidelities).
- **PyramidDrop**: Cooperx521/PyramidDrop at 6444f30, ``llava/model/modeling_llama_pdrop.py``
  (``pdrop_forward`` / ``pdrop_rank_drop``, last changed at 16a233f). After the last layer of a
  stage, the image tokens are ranked by the attention of the last instruction token computed with
  the query/key projections of the *first layer of the next stage* on that layer's input (its
  input layernorm, then RoPE at the current position ids), softmax over the causal row, averaged
  over heads; ``int(N * ratio)`` of the N image tokens that entered the LLM stay (ratio
  lam, lam^2, lam^3 for the eval scripts' ``[0.5, 0.25, 0.125]`` at layers 8/16/24), and every
  surviving token is renumbered 0..L'-1, decode continuing from L' (the decode branch subtracts the
  dropped count). ``project`` ranks with layer K-1's attention (as FastV), keeps the original
  position ids and rounds half up. The rank rule does not change a stage's token count, so FLOPs
  are the same under both (the rounding can move a count by one: lam = 0.4 on 6272 tokens keeps
  2508, not 2509). Not reproduced: the released code casts the softmax to the model dtype before
  averaging the heads (ties in bf16 only), and it has no M-RoPE model; on Qwen2.5-VL's (3, L) ids
  ``renumber`` leaves the ids as they are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Optional

from costmodel.nominal import check_layer, round_half_up  # the nominal schedules' rounding
from costmodel.schedule import staged

from methods.base import Method, NominalTokens
from methods.paper_options import FASTV_K, PDROP_BOUNDARIES_OF_32, PDROP_LAMBDA
from methods.runtime import MODES, SCORINGS, InnerPlan, InnerStage, inner_keep_count
from methods.setting import PaperSetting, SettingOptions
from methods.types import BASELINE_FIDELITIES, check_fidelity, check_retention

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

    def plan_rules(self) -> dict:
        """The InnerPlan fields the fidelity sets (rounding; PDrop also rank_layer, positions)."""
        return {}

    def inner_plan(self, num_layers):
        stages = tuple(InnerStage(layer, keep) for layer, keep in self.keep_stages(num_layers))
        return InnerPlan(stages, scoring=self.config.scoring, mode=self.config.mode,
                         **self.plan_rules()).validate(num_layers)

    def nominal_tokens(self, arch, frames, budget="global"):
        """Full before the first stage, keep * F * N from each stage's layer on, rounded as the
        runtime rounds it (``plan_rules``; a stage at the last layer's index or beyond prunes
        nothing); docs/sources.md#fastv."""
        L, full = arch.llm.layers, frames * arch.tokens_per_frame
        stages = [(check_layer(layer, L, self.layer_option), keep) for layer, keep in self.keep_stages(L)]
        rounding = self.plan_rules().get("rounding", "half_up")
        counts = [(layer, inner_keep_count(full, keep, rounding)) for layer, keep in stages if layer < L]
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
    rows; the FastV paper). ``mode='mask'`` masks instead of removing (oracle, no speed-up).
    ``fidelity``: 'released' keeps Python's round(n * keep) tokens (ties to even, as the official
    code), 'project' rounds half up (module docstring)."""

    k: int = FASTV_K
    keep: float = 0.5
    scoring: Literal["last", "mean"] = "last"
    mode: Literal["inplace", "mask"] = "inplace"
    fidelity: Literal["released", "project"] = "released"

    def __post_init__(self):
        _check_layer(self.k)
        check_retention(self.keep, "keep")
        _check_ranking(self)
        check_fidelity(self.fidelity, BASELINE_FIDELITIES, "fastv fidelity")


class FastV(AttentionPruning):
    name = "fastv"
    description = "FastV: drop low-attention visual tokens after layer K (inside the LLM)"
    Config = FastVConfig
    retention_kind = "optional"  # keep has a default
    notation = {"k": "k"}
    schedule_options = ("k", "keep")

    def keep_stages(self, num_layers):
        return ((self.config.k, float(self.config.keep)),)

    def plan_rules(self):
        return {"rounding": "half_even" if self.config.fidelity == "released" else "half_up"}

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
    the last instruction token's attention. ``layers`` None -> (8, 16, 24)/32 of the depth.
    ``fidelity``: 'released' ranks with the first layer of the new stage, renumbers the position
    ids after each drop and keeps int(N * lam^i) (the official code); 'project' ranks with the last
    layer of the ending stage, keeps the original ids and rounds half up (module docstring)."""

    lam: float = PDROP_LAMBDA
    layers: Optional[tuple[int, ...]] = None
    scoring: Literal["last", "mean"] = "last"
    mode: Literal["inplace", "mask"] = "inplace"
    fidelity: Literal["released", "project"] = "released"

    def __post_init__(self):
        check_retention(self.lam, "lam")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))
            for b in self.layers:
                _check_layer(b, "layers")
        _check_ranking(self)
        check_fidelity(self.fidelity, BASELINE_FIDELITIES, "pdrop fidelity")


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

    def plan_rules(self):
        if self.config.fidelity == "released":
            return {"rounding": "floor", "rank_layer": "next", "positions": "renumber"}
        return {"rounding": "half_up", "rank_layer": "previous", "positions": "original"}

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
        return (f"pdrop stage boundaries {bounds}, lam={float(self.config.lam)}, fidelity={self.config.fidelity}",)
