"""Nominal token schedules by method name: a thin lookup through ``methods.registry`` for callers
that name a method (the ``python -m costmodel`` command line, the analytic tier, replicate scripts).

``nominal_schedule(arch, "holitom", retention=0.1, inner_k=18)`` is
``get_method("holitom", retention=0.1, inner_k=18).nominal_schedule(arch, ...)``: each Method states
its schedule (``Method.nominal_tokens``) from its own config, so the options and their defaults are
the Method's (``methods/paper_options.py`` for the papers' values). ``retention`` is the kept
fraction, mapped by ``Method.for_retention`` (FastV: ``keep``; STTS: ``1 - topk``).
"""
from __future__ import annotations

from typing import Any

from costmodel.nominal import check_frames, check_retention_value
from costmodel.schedule import TokenSchedule

from methods.base import Method
from methods.baselines.inner_llm import Vanilla
from methods.registry import METHODS, method_class

#: the method that prunes nothing (the command line's default)
UNPRUNED = Vanilla.name

#: names the papers' tables give a configuration of a registered method: name -> (method, options)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "tango-intra": ("tango", {"intra_llm": True}),  # Tango with its intra-LLM stage (LLaVA-Video)
}


def _has_nominal(cls: type[Method]) -> bool:
    return cls.nominal_tokens is not Method.nominal_tokens or cls.nominal_schedule is not Method.nominal_schedule


#: every name ``nominal_schedule`` accepts
NOMINAL_METHODS: tuple[str, ...] = tuple(c.name for c in METHODS if _has_nominal(c)) + tuple(VARIANTS)


def nominal_method(method: str, retention: float | None = None, **options: Any) -> Method:
    """The Method instance ``method`` names, with kept fraction ``retention`` and ``options``."""
    if method not in NOMINAL_METHODS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(NOMINAL_METHODS)}")
    name, fixed = VARIANTS.get(method, (method, {}))
    if retention is not None:
        retention = check_retention_value(retention)
    return method_class(name).for_retention(retention, **fixed, **options)


def nominal_schedule(arch, method: str, *, frames: int | None = None, retention: float | None = None,
                     text_tokens: int = 0, decode_steps: int = 0, budget: str = "global",
                     **options: Any) -> TokenSchedule:
    """The nominal TokenSchedule of ``method`` (a name of NOMINAL_METHODS) on ``arch`` (an ArchSpec);
    ``budget``: the pre-LLM rounding of methods with a whole-token budget (``global``: round(r·F·N);
    ``per_frame``: F·ceil(r·N)), ignored by the others."""
    m = nominal_method(method, retention, **options)
    frames = check_frames(arch.default_frames if frames is None else frames)
    label = f"{arch.name}/{method}/F={frames}" + (f"/r={retention:g}" if retention is not None else "")
    return m.nominal_schedule(arch, frames, text_tokens, decode_steps, budget=budget, label=label)
