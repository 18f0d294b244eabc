"""A paper's setting of a method, and the options a Method derives from it (``Method.from_setting``).

A :class:`PaperSetting` says what a paper states (the kept fraction ``retention``, explicit
options at the paper's level, layer indices in the notation of a ``paper_layers``-deep LLM) and
what the method will run on (an LLM of ``llm_layers`` layers, a vision tower of ``vision_layers``
blocks, the model's newline layout and pooled grid). Every tier builds one and asks the Method:
the analytic tier, the cpu and gpu harnesses, the paper tier's shards, its cost estimate and
planning, the tables. What the Method answers, a :class:`SettingOptions`, carries the options as
the paper states them, the options applied to this model, the layer indices it scaled and notes,
the record every cell writes.

Layer scaling: an index K of a ``paper_layers``-deep LLM on an LLM of L layers is

    K_L = clip(max(1, round_half_up(K * L / paper_layers)), 1, L - 1)

Light: the standard library, ``costmodel.nominal`` and ``methods.paper_options`` (no torch), so the
workflow can build settings while it parses its rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from costmodel.nominal import round_half_up
from methods.paper_options import PAPER_LLM_LAYERS

__all__ = ["PaperSetting", "SettingOptions", "scale_layer", "PAPER_LLM_LAYERS"]


def scale_layer(k: int, num_layers: int, paper_layers: int = PAPER_LLM_LAYERS) -> int:
    """Layer index K of a ``paper_layers``-deep LLM mapped to ``num_layers`` layers, in [1, L-1]."""
    if num_layers < 2:
        raise ValueError(f"num_layers must be >= 2 to prune inside the LLM, got {num_layers}")
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= paper_layers:
        raise ValueError(f"layer index must be an int in [0, {paper_layers}], got {k!r}")
    scaled = max(1, round_half_up(k * num_layers / paper_layers))
    return min(max(scaled, 1), num_layers - 1)


@dataclass(frozen=True)
class PaperSetting:
    """One setting of a method: what the paper states and the model it will run on.

    ``options``: explicit options at the paper's level (layer indices as the paper states them),
    they win over the method's defaults. ``llm_layers`` / ``vision_layers``: depths of the model it
    runs on (``vision_layers`` None: a full-size tower). ``paper_layers``: the depth the paper's
    layer indices refer to (the papers state K for 28-layer Qwen2-7B; a paper-tier cell states them
    for its own architecture). ``newline``: the model's newline layout (``one_token`` / ``grid`` /
    ``none``), which adds the options a paper states for that setting only (Tango's intra-LLM stage
    on LLaVA-Video); None leaves them out (the analytic tier names such variants itself).
    ``grid``: the pooled grid (h, w), which resolves grid-specific defaults (Tango's sink lists).
    ``priced``: the setting of a paper's number as the papers' comparison tables price it (the
    analytic tier: FLOPs rows, latency predictions, planning): a method counts only what those tables
    count and maps no retention the papers leave unpublished (see each ``from_setting``).
    """

    retention: Optional[float] = None
    options: Mapping[str, Any] = field(default_factory=dict)
    llm_layers: int = PAPER_LLM_LAYERS
    paper_layers: int = PAPER_LLM_LAYERS
    vision_layers: Optional[int] = None
    newline: Optional[str] = None
    grid: Optional[tuple[int, int]] = None
    priced: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", dict(self.options or {}))
        if self.grid is not None:
            object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        if self.retention is not None:
            r = float(self.retention)
            if not 0 < r <= 1:
                raise ValueError(f"retention must be in (0, 1], got {self.retention!r}")
            object.__setattr__(self, "retention", r)

    @classmethod
    def for_arch(cls, arch, retention: Optional[float] = None, options: Optional[Mapping[str, Any]] = None,
                 **kw: Any) -> "PaperSetting":
        """The setting on a costmodel ArchSpec at its own depth (layer indices stated for it)."""
        return cls(retention, dict(options or {}), llm_layers=arch.llm.layers, paper_layers=arch.llm.layers,
                   vision_layers=arch.vision.layers, **kw)

    @classmethod
    def for_adapter(cls, adapter, retention: Optional[float] = None, options: Optional[Mapping[str, Any]] = None,
                    **kw: Any) -> "PaperSetting":
        """The setting on a model adapter (its depths and newline layout)."""
        return cls(retention, dict(options or {}), llm_layers=adapter.num_layers,
                   vision_layers=getattr(adapter, "vision_layers", None),
                   newline=getattr(adapter, "newline_policy", None), **kw)

    # ---- what Methods use in from_setting ---------------------------------------------------
    def kept_fraction(self, method: str, kind: str = "required") -> Optional[float]:
        """The retention, checked against what ``method`` takes (``Method.retention_kind``):
        ``none`` (prunes nothing), ``optional`` or ``required``."""
        if kind == "none" and self.retention is not None:
            raise ValueError(f"{method} prunes nothing: its retention must be None (rtag full), got {self.retention!r}")
        if kind == "required" and self.retention is None:
            raise ValueError(f"{method} needs a retention in (0, 1]")
        return self.retention

    def set_kept(self, method: str, paper: dict, name: str, value: Any) -> None:
        """``paper[name] = value`` (the option that holds the kept fraction, from the retention),
        unless the setting's options state it too: then the two must agree."""
        if name in paper and paper[name] != value:
            raise ValueError(f"{method}: give either retention or option {name} (the same kept fraction), got "
                             f"retention {self.retention!r} and {name}={paper[name]!r}")
        paper[name] = value

    def derive(self, cls: type, paper: Mapping[str, Any], *, layers: tuple[str, ...] = (),
               notes: tuple[str, ...] = ()) -> "SettingOptions":
        """``paper`` (options as the paper states them) applied to this model: every option named in
        ``layers`` (an LLM layer index, or a list of them) scaled from ``paper_layers`` to
        ``llm_layers`` (kept as stated at the paper's own depth); a scaled list is sorted, and indices
        that collapse are merged and noted."""
        method = cls.name
        applied, scaled, notes = dict(paper), {}, list(notes)
        for name in layers:
            value = paper.get(name)
            if value is None:
                continue
            new = self._scaled(name, value)
            if isinstance(value, (list, tuple)) and len(new) < len(value):
                notes.append(f"{method}: boundaries {list(value)} collapse to {new} on {self.llm_layers} layers")
            applied[name] = new
            scaled[name] = [value, new]
        return SettingOptions(cls, dict(paper), applied, scaled, notes, self.paper_layers, self.llm_layers)

    def _scaled(self, name: str, value: Any):
        """One layer option on this model: each index checked against the paper's depth, kept as
        stated at that depth (the Config checks the rest), else scaled (a list sorted, merged)."""
        values = [_layer_index(name, v, self.paper_layers)
                  for v in (value if isinstance(value, (list, tuple)) else [value])]
        if self.llm_layers == self.paper_layers:
            return values if isinstance(value, (list, tuple)) else values[0]
        new = [scale_layer(v, self.llm_layers, self.paper_layers) for v in values]
        return sorted(set(new)) if isinstance(value, (list, tuple)) else new[0]


def _layer_index(name: str, v: Any, paper_layers: int) -> int:
    """A layer index as an int in [0, paper_layers] (an integral float or string is read as one)."""
    try:
        k = int(v) if not isinstance(v, bool) and float(v) == int(float(v)) else None
    except (TypeError, ValueError):
        k = None
    if k is None or not 0 <= k <= paper_layers:
        raise ValueError(f"option {name} must be an int layer index in [0, {paper_layers}] (the paper's "
                         f"{paper_layers}-layer notation), got {v!r}")
    return k


@dataclass
class SettingOptions:
    """What a Method makes of a PaperSetting: ``paper`` (options as the paper states them),
    ``applied`` (the options of the Method that runs on this model), ``scaled`` ({option: [paper,
    applied]} for the layer indices it scaled) and ``notes``. ``record()`` is what a cell writes."""

    cls: type
    paper: dict
    applied: dict
    scaled: dict
    notes: list
    paper_layers: int
    num_layers: int

    @property
    def method(self) -> str:
        return self.cls.name

    @property
    def label(self) -> str:
        """The name results show (``Method.label``: e.g. STTS without a trained scorer says so)."""
        return self.cls.label(self.applied)

    def record(self) -> dict[str, Any]:
        return {"paper": self.paper, "applied": self.applied, "scaled": self.scaled, "notes": self.notes,
                "paper_layers": self.paper_layers, "num_layers": self.num_layers}

    def build(self):
        """The Method instance with the applied options (ValueError for options its Config refuses)."""
        return self.cls(**self.applied)
