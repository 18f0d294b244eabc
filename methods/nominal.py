"""Nominal token schedules by method name, for callers that name a method (the ``python -m
costmodel`` command line, the analytic tier's tables, replicate scripts).

``nominal_schedule(arch, "holitom", retention=0.1, inner_k=18)`` builds the Method the way every tier
does, ``Method.from_setting`` on a :class:`methods.setting.PaperSetting` at ``arch``'s own depth
(e.g. FastV's ``keep`` and STTS's ``topk`` from the retention), and asks it for its schedule
(``Method.nominal_tokens``, from its own config). ``priced=True`` is the setting as the papers'
tables price it (the analytic tier: PruneVid's pre-LLM stages only, no retention mapped onto
PDrop's lam). A variant name (``tango-intra``) adds the options it fixes.
"""
from __future__ import annotations

from typing import Any

from costmodel.nominal import check_frames
from costmodel.schedule import TokenSchedule

from methods.registry import UNPRUNED, method_class, nominal_names, resolve
from methods.setting import PaperSetting

__all__ = ["UNPRUNED", "nominal_method", "nominal_schedule", "nominal_names"]


def nominal_method(arch, method: str, retention: float | None = None, *, newline: str | None = None,
                   priced: bool = False, **options: Any):
    """The Method instance ``method`` (a name of ``nominal_names()``) names on ``arch`` (an ArchSpec),
    with kept fraction ``retention`` and ``options`` (paper-level: layer indices for ``arch``);
    ``newline``: the model's layout when the options a paper states for it apply (planning);
    ``priced``: the setting as the papers' tables price it (the analytic tier)."""
    if method not in nominal_names():
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(nominal_names())}")
    name, fixed = resolve(method)
    setting = PaperSetting.for_arch(arch, retention, {**fixed, **options}, newline=newline, priced=priced)
    return method_class(name).from_setting(setting).build()


def nominal_schedule(arch, method: str, *, frames: int | None = None, retention: float | None = None,
                     text_tokens: int = 0, decode_steps: int = 0, budget: str = "global", priced: bool = False,
                     **options: Any) -> TokenSchedule:
    """The nominal TokenSchedule of ``method`` (a name of ``nominal_names()``) on ``arch`` (an ArchSpec);
    ``budget``: the pre-LLM rounding of methods with a whole-token budget (``global``: round(r·F·N);
    ``per_frame``: F·ceil(r·N)), ignored by the others; ``priced``: see ``nominal_method``."""
    m = nominal_method(arch, method, retention, priced=priced, **options)
    frames = check_frames(arch.default_frames if frames is None else frames)
    label = f"{arch.name}/{method}/F={frames}" + (f"/r={retention:g}" if retention is not None else "")
    return m.nominal_schedule(arch, frames, text_tokens, decode_steps, budget=budget, label=label)
