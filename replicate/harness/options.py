"""Cell options and path tags of the harnesses.

``cell_setting(adapter, method, retention, options)`` is a cell's options on a model adapter: the
Method's own ``from_setting`` (``methods.setting``) on a PaperSetting with the adapter's depths and
newline layout, the paper's layer indices (28-layer notation) scaled to the model, both recorded.
``rtag`` / ``parse_rtag`` / ``number_tag`` name retentions in paths, losslessly.

Dependencies: the standard library and ``methods.setting`` / ``methods.registry`` (light; read while
the workflow parses its rules, and by the GPU entry point); the Method class is imported only when
a cell's options are derived.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional


def cell_setting(adapter, method: str, retention: Optional[float], options: Optional[Mapping[str, Any]] = None,
                 **setting: Any):
    """The SettingOptions of one (method, retention) cell on ``adapter`` (its LLM and tower depths
    and newline layout; ``options`` at the paper's level; ``setting``: more PaperSetting fields).
    ValueError for a retention the method does not take."""
    from methods.registry import method_class
    from methods.setting import PaperSetting

    return method_class(method).from_setting(PaperSetting.for_adapter(adapter, retention, options, **setting))


def rtag(retention: Optional[float]) -> str:
    """Path tag of a retention: ``full`` for None, else ``r`` + the shortest decimal that reads back
    as the same float, padded to two decimals (r0.10, r0.25, r0.125, r0.101). Lossless: 0.125 is not
    r0.12 and 0.101 / 0.104 are two cells. NaN, inf and non-numbers are refused."""
    if retention is None:
        return "full"
    return "r" + number_tag(retention, "retention")


def number_tag(value: Any, name: str = "value", min_decimals: int = 2) -> str:
    """Canonical, lossless text of a finite number: ``repr``'s shortest round-trip digits written
    positionally (no exponent), at least ``min_decimals`` decimals. float(number_tag(x)) == x."""
    import math
    from decimal import Decimal

    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ValueError(f"{name} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    text = format(Decimal(repr(x)), "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(min_decimals, "0")
    return f"{whole}.{frac}" if frac else whole


def parse_rtag(tag: str) -> Optional[float]:
    """Inverse of :func:`rtag`; a tag that is not canonical (r0.1 for r0.10) is refused so one
    retention never has two paths."""
    if tag == "full":
        return None
    import math

    try:
        value = float(tag[1:]) if tag.startswith("r") else None
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or rtag(value) != tag:
        hint = f" (this retention's tag is {rtag(value)!r})" if value is not None and math.isfinite(value) else ""
        raise ValueError(f"bad retention tag {tag!r}; expected 'full' or the canonical r<fraction> "
                         f"like r0.10, r0.125{hint}")
    return value
