"""The Method base class.

A :class:`Method` has a typed frozen config (``Config``: the one home of its options and
defaults), its stages as data (``stages``: ``in_vit`` / ``pre_llm`` / ``inner_llm``) with their
code -- ``encode_in_vit`` (the pruned tower forward), ``reduce`` (pre-LLM: VideoTokens ->
Reduction) and ``inner_plan`` (inside the LLM at layer K: keep fraction, scoring, merge) -- and its
nominal TokenSchedule: ``nominal_tokens`` states how many tokens each stage keeps when the method
runs as its paper specifies, from its own config and ``costmodel.nominal``'s blocks (kept-token
arithmetic, staged schedules, vision loads); ``nominal_schedule`` assembles the TokenSchedule.

A Method also owns how a paper's setting becomes its options (``from_setting``: one function per
method, used by every tier) and which model families it runs on (``families``, with what it needs
from the adapter as a protocol, ``needs``), checked when it is attached (``attach``). Its light
metadata (names, options, families, notation) is listed without importing it: ``methods.registry``.
Sources: docs/sources.md#holitom, #tango, #stts and #baselines.

Attaching a method to a model instance: :func:`methods.attach.apply_method`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping, NamedTuple, Optional

from costmodel.nominal import assemble, check_frames, kept_tokens
from costmodel.schedule import TokenSchedule, VisionLoad
from methods.runtime import InnerPlan
from methods.setting import PaperSetting, SettingOptions
from methods.types import FAMILIES, MethodHost, Reduction, VideoTokens, protocol_members

#: What a method does with a retention (``Method.retention_kind``): ``required`` (its kept
#: fraction), ``optional`` (PDrop: its own schedule stands without one), ``none`` (prunes nothing).
RETENTION_KINDS = ("required", "optional", "none")


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
    #: the model families it runs on (``methods.types.FAMILIES``), checked by ``attach``
    families: ClassVar[tuple[str, ...]] = FAMILIES
    #: what it needs from the adapter, as a protocol (``methods.types``), checked by ``attach``
    needs: ClassVar[type] = MethodHost
    #: what it does with a setting's retention (RETENTION_KINDS)
    retention_kind: ClassVar[str] = "required"
    #: the papers' symbols in claim settings (``k``, ``r``, ``tau``) -> this method's option names
    notation: ClassVar[Mapping[str, str]] = {}
    #: the options ``nominal_tokens`` reads (the analytic tier keys its rows by these only)
    schedule_options: ClassVar[tuple[str, ...]] = ("retention",)
    #: other names of a configuration of this method (the analytic tables'): name ->
    #: {"options": the options it fixes, "notation": its symbols -> option names}
    variants: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        unknown = sorted(set(cls.stages) - set(STAGES))
        if unknown:
            raise TypeError(f"{cls.__name__}.stages has unknown stage(s) {unknown}; allowed: {list(STAGES)}")
        if ("pre_llm" in cls.stages) != (cls.reduce is not Method.reduce):
            raise TypeError(f"{cls.__name__}: declare 'pre_llm' in stages exactly when reduce() is defined")
        bad = sorted(set(cls.families) - set(FAMILIES))
        if bad or cls.retention_kind not in RETENTION_KINDS:
            raise TypeError(f"{cls.__name__}: families {bad} not in {list(FAMILIES)} or retention_kind "
                            f"{cls.retention_kind!r} not in {list(RETENTION_KINDS)}")

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

    # ---- a paper's setting -> options ---------------------------------------------------------
    @classmethod
    def from_setting(cls, setting: PaperSetting) -> SettingOptions:
        """This method's options for ``setting``: the paper's (explicit options over the method's
        stated defaults), and those applied to the model it runs on, with the record cells write.
        Here: the kept fraction is the option ``retention``; subclasses state their own mapping.
        ValueError for a retention the method does not take."""
        paper = dict(setting.options)
        r = setting.kept_fraction(cls.name, cls.retention_kind)
        if r is not None:
            setting.set_kept(cls.name, paper, "retention", r)
        return setting.derive(cls, paper)

    @classmethod
    def label(cls, applied: Mapping[str, Any]) -> str:
        """The name results show for a cell with the ``applied`` options."""
        return cls.name

    # ---- attaching ----------------------------------------------------------------------------
    @classmethod
    def check_host(cls, adapter) -> None:
        """ValueError unless ``adapter`` is of a family this method runs on and offers what it needs
        (``needs``); the message names the supported families or the missing members."""
        family = getattr(adapter, "family", None)
        if family not in cls.families:
            raise ValueError(f"method {cls.name!r} does not run on {family!r} models ({type(adapter).__name__}); "
                             f"supported families: {', '.join(cls.families)}")
        if not isinstance(adapter, cls.needs):
            missing = [m for m in protocol_members(cls.needs) if not hasattr(adapter, m)]
            raise ValueError(f"method {cls.name!r} needs an adapter with {cls.needs.__name__} "
                             f"(missing: {', '.join(missing)}); got {type(adapter).__name__}")

    def attach(self, adapter) -> "MethodHandle":
        """Attach to ``adapter`` for a request or a ``with`` block (undoable: ``remove()``), after
        checking the family, what the method needs and its inner plan against the LLM's depth."""
        self.check_host(adapter)
        plan = self.inner_plan(adapter.num_layers)
        if plan is not None:
            plan.validate(adapter.num_layers)
        return MethodHandle(adapter, self)

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


class MethodHandle:
    """Returned by :meth:`Method.attach` (and ``apply_method``); ``remove()`` (or leaving the
    ``with`` block) restores the method that was attached before."""

    def __init__(self, adapter, method: Method):
        self.adapter = adapter
        self.method = method
        self._previous = adapter.method
        self._attached = True
        adapter.method = method

    def remove(self) -> None:
        if self._attached:
            if self.adapter.method is not self.method:
                raise RuntimeError("methods must be removed in reverse order of attachment")
            self.adapter.method = self._previous
            self._attached = False

    def __enter__(self) -> "MethodHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


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
