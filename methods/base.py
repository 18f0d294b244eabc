"""The Method base class.

A :class:`Method` has a typed frozen config (``Config``: the one home of its options and
defaults), its stages as data (``stages``: ``in_vit`` / ``pre_llm`` / ``inner_llm``) with their
code -- ``encode_in_vit`` (the pruned tower forward), ``reduce`` (pre-LLM: VideoTokens ->
Reduction) and ``inner_plan`` (inside the LLM at layer K: keep fraction, scoring, merge) -- and its
nominal TokenSchedule (``methods.nominal``, built from ``costmodel.nominal``'s blocks).

Attaching a method to a model instance: :func:`methods.attach.apply_method`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Optional

from costmodel.schedule import TokenSchedule
from methods.runtime import InnerPlan
from methods.types import Reduction, VideoTokens


#: Stages a method can act in: ``in_vit`` (inside the vision tower: ``encode_in_vit``),
#: ``pre_llm`` (VideoTokens -> Reduction: ``reduce``), ``inner_llm`` (``inner_plan`` at layer K).
STAGES = ("in_vit", "pre_llm", "inner_llm")


class Method:
    """Base class of every registered method. Subclasses set ``Config`` (a frozen dataclass)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type]
    #: where the method acts, as data (a subset of STAGES, in request order)
    stages: ClassVar[tuple[str, ...]] = ()

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
    def nominal_name_and_options(self) -> Optional[tuple[str, dict]]:
        """(``methods.nominal`` recipe name, kwargs incl. retention) or None if there is no recipe."""
        return None

    def nominal_schedule(self, arch, frames: int, text_tokens: int = 0, decode_steps: int = 0) -> TokenSchedule:
        """Nominal TokenSchedule on ``arch`` (an ArchSpec, an architecture name, or an adapter)."""
        from methods.nominal import nominal_schedule

        spec = resolve_arch(arch)
        named = self.nominal_name_and_options()
        if named is None:
            raise NotImplementedError(f"{self.name} has no nominal schedule")
        method, kwargs = named
        return nominal_schedule(spec, method, frames=frames, text_tokens=text_tokens,
                                decode_steps=decode_steps, **kwargs)

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
