"""The Method base class.

A :class:`Method` has a typed frozen config (``Config``: the one home of its options and
defaults), its stages as data (``stages``: ``in_vit`` / ``pre_llm`` / ``inner_llm``) with their
code -- ``encode_in_vit`` (the pruned tower forward), ``reduce`` (pre-LLM: VideoTokens ->
Reduction) and ``inner_plan`` (inside the LLM at layer K: keep fraction, scoring, merge) -- and its
nominal TokenSchedule: ``nominal_tokens`` states how many tokens each stage keeps when the method
runs as its paper specifies, from its own config and ``costmodel.nominal``'s blocks (kept-token
arithmetic, staged schedules, vision loads); ``nominal_schedule`` assembles the TokenSchedule.
Sources: papers.md §1 (HoliTom, Tango, STTS) and §4 (baselines).

Attaching a method to a model instance: :func:`methods.attach.apply_method`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple, Optional

from costmodel.nominal import assemble, check_frames, kept_tokens
from costmodel.schedule import TokenSchedule, VisionLoad
from methods.runtime import InnerPlan
from methods.types import Reduction, VideoTokens


#: Stages a method can act in: ``in_vit`` (inside the vision tower: ``encode_in_vit``),
#: ``pre_llm`` (VideoTokens -> Reduction: ``reduce``), ``inner_llm`` (``inner_plan`` at layer K).
STAGES = ("in_vit", "pre_llm", "inner_llm")


class NominalTokens(NamedTuple):
    """What a method keeps, nominally: per-layer LLM visual tokens, the tokens on the projector path
    (``kept``), the vision-tower load (None: the unpruned tower) and notes on what is not modelled."""
    visual: tuple[int, ...]
    kept: int
    vision: Optional[tuple[VisionLoad, ...]] = None
    notes: tuple[str, ...] = ()


class Method:
    """Base class of every registered method. Subclasses set ``Config`` (a frozen dataclass)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type]
    #: where the method acts, as data (a subset of STAGES, in request order)
    stages: ClassVar[tuple[str, ...]] = ()
    #: the nominal schedule keeps a pre-LLM budget of whole tokens from ``retention``
    #: (``costmodel.nominal.kept_tokens``), so a budget rounding (``global``/``per_frame``) applies
    pre_llm_budget: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        unknown = sorted(set(cls.stages) - set(STAGES))
        if unknown:
            raise TypeError(f"{cls.__name__}.stages has unknown stage(s) {unknown}; allowed: {list(STAGES)}")
        if ("pre_llm" in cls.stages) != (cls.reduce is not Method.reduce):
            raise TypeError(f"{cls.__name__}: declare 'pre_llm' in stages exactly when reduce() is defined")

    def __init__(self, config: Any = None, **options: Any):
        if config is None:
            config = self.make_config(**options)
        elif options:
            raise ValueError(f"{self.name}: give either a config or options, not both")
        elif not isinstance(config, self.Config):
            raise ValueError(f"{self.name}: config must be a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config

    # ---- config ---------------------------------------------------------------------------
    @classmethod
    def options(cls) -> dict[str, dict[str, Any]]:
        """Option name -> {"type", "default", "required"} from the config dataclass."""
        out = {}
        for f in dataclasses.fields(cls.Config):
            if not f.init:
                continue
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            default = None if required else (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            out[f.name] = {"type": f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type)),
                           "default": default, "required": required}
        return out

    @classmethod
    def make_config(cls, **options: Any):
        allowed = cls.options()
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for method {cls.name!r}; allowed: {sorted(allowed) or 'none'}")
        missing = sorted(k for k, v in allowed.items() if v["required"] and k not in options)
        if missing:
            raise ValueError(f"method {cls.name!r} needs option(s) {missing}")
        return cls.Config(**options)

    # ---- stages ---------------------------------------------------------------------------
    @property
    def has_pre_llm(self) -> bool:
        return "pre_llm" in self.stages

    @property
    def runs_in_vit(self) -> bool:
        """True when the method replaces the adapter's tower forward (``encode_in_vit``)."""
        return "in_vit" in self.stages

    def reduce(self, tokens: VideoTokens) -> Reduction:  # pragma: no cover - overridden
        raise NotImplementedError(f"{self.name} has no pre-LLM stage")

    def inner_plan(self, num_layers: int) -> Optional[InnerPlan]:
        """The inner-LLM plan for an LLM of ``num_layers`` layers, or None."""
        return None

    # ---- cost -----------------------------------------------------------------------------
    @classmethod
    def for_retention(cls, retention: Optional[float] = None, **options: Any) -> "Method":
        """An instance whose kept fraction is ``retention`` (the config's ``retention``; subclasses
        whose option has another name or sense map it), other options as given."""
        if retention is None:
            return cls(**options)
        if "retention" not in cls.options():
            raise ValueError(f"{cls.name} takes no retention; its options: {sorted(cls.options()) or 'none'}")
        if "retention" in options:
            raise ValueError(f"{cls.name}: give retention once (argument or option), not both")
        return cls(retention=retention, **options)

    def nominal_tokens(self, arch, frames: int, budget: str = "global") -> NominalTokens:
        """Nominal token counts on ``arch`` (an ArchSpec) at ``frames`` frames; ``budget``: the
        pre-LLM rounding (``costmodel.nominal.kept_tokens``) where ``pre_llm_budget``."""
        raise NotImplementedError(f"{self.name} has no nominal schedule")

    def nominal_label(self, arch, frames: int) -> str:
        retention = getattr(self.config, "retention", None)
        return f"{arch.name}/{self.name}/F={frames}" + (f"/r={retention:g}" if retention is not None else "")

    def nominal_schedule(self, arch, frames: Optional[int] = None, text_tokens: int = 0, decode_steps: int = 0,
                         *, budget: str = "global", label: Optional[str] = None) -> TokenSchedule:
        """Nominal TokenSchedule on ``arch`` (an ArchSpec, an architecture name, or an adapter);
        ``frames`` None: the architecture's default."""
        spec = resolve_arch(arch)
        frames = check_frames(spec.default_frames if frames is None else frames)
        t = self.nominal_tokens(spec, frames, budget)
        return assemble(spec, frames, t.visual, t.kept, label=label or self.nominal_label(spec, frames),
                        vision=t.vision, text_tokens=text_tokens, decode_steps=decode_steps, notes=t.notes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


def resolve_arch(arch):
    """ArchSpec from an ArchSpec, a costmodel architecture name, or an adapter (``arch_spec()``)."""
    if isinstance(arch, str):
        from costmodel.arch import load_arch

        return load_arch(arch)
    if hasattr(arch, "arch_spec"):
        return arch.arch_spec()
    return arch


def pre_llm_tokens(arch, frames: int, retention: float, budget: str = "global") -> NominalTokens:
    """A pre-LLM method's nominal counts: ``kept_tokens(retention)`` in every LLM layer."""
    kept = kept_tokens(float(retention), frames, arch.tokens_per_frame, budget)
    return NominalTokens((kept,) * arch.llm.layers, kept)
