"""Method options for one (method, retention) cell: the paper's options and the applied ones.

The papers state inner-LLM layer indices for 28-layer Qwen2-7B (FastV K = 2, HoliTom inner K = 18,
PruneVid selected layer 10, Tango intra K = 18, PDrop boundaries 7/14/21 = 8/16/24 of 32 scaled to
28, DyCoke decode layer 3). On an LLM of L layers they become

    K_L = clip(max(1, round_half_up(K * L / 28)), 1, L - 1)

and both values are recorded (PruneVid's ``selected_layer`` prunes after that layer, so it is
clipped to [0, L - 2]). How a retention r maps to a method's own knobs (written into every
cell so nothing is implicit):

- methods with a ``retention`` option: retention = r (visual tokens entering the LLM);
- fastv: keep = r (fraction of visual tokens kept from layer K on), K = 2 (paper);
- pdrop: lam = r ** (1 / stages), so the last stage keeps r of the visual tokens;
- stts: topk (pruned fraction) = 1 - r; prune_at = 3 in the paper, 0 on a tower of <= 2 layers
  (block prune_at + 1 must exist for the soft-bias block; the tiny tower has 2);
- vanilla: no retention (rtag ``full``).

Dependencies: the standard library, costmodel.nominal and methods.paper_options (light; read while
the workflow parses its rules, and by the GPU entry point).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from costmodel.nominal import round_half_up  # the nominal schedules' rounding
from methods import paper_options as P

PAPER_LAYERS = P.PAPER_LLM_LAYERS
#: option name(s) that are LLM layer indices, per method (values given for 28 layers)
LAYER_OPTIONS: dict[str, tuple[str, ...]] = {
    "fastv": ("k",),
    "pdrop": ("layers",),
    "holitom": ("inner_k",),
    "prunevid": ("selected_layer",),
    "tango": ("intra_k",),
    "dycoke": ("decode_layer",),
}
#: options naming the layer *after* which pruning happens (pruning at index + 1): in [0, L-2]
AFTER_LAYER_OPTIONS = ("selected_layer",)
#: paper defaults (28-layer indices) the harness states explicitly (values: methods.paper_options)
PAPER_DEFAULTS: dict[str, dict[str, Any]] = {
    "fastv": {"k": P.FASTV_K},
    "pdrop": {"layers": [round_half_up(b * PAPER_LAYERS / 32) for b in P.PDROP_BOUNDARIES_OF_32]},
    "holitom": {"inner_k": P.HOLITOM_INNER_K, "inner_r": P.HOLITOM_INNER_R},
    "prunevid": {"selected_layer": P.PRUNEVID_SELECTED_LAYER},
    "tango": {"intra_k": P.TANGO_INTRA_K},
    "dycoke": {"decode_layer": P.DYCOKE_DECODE_LAYER},
    "stts": {"prune_at": P.STTS_PRUNE_AT},
}
NO_RETENTION = ("vanilla",)
#: options a paper states for one setting only, keyed by (method, newline layout of the model):
#: Tango's intra-LLM stage (K = 18, keep 0.5) runs on LLaVA-Video (grid newlines) and nowhere else
#: (papers.md §1.2; xjtupanda/Tango ``pruning_methods/prune_config.py`` prune_k / prune_r and
#: ``intra_llm_pruning/fastv_tango.py``, commit 610c264)
SETTING_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("tango", "grid"): {"intra_llm": True, "intra_keep": P.TANGO_INTRA_KEEP},
}


def scale_layer(k: int, num_layers: int, paper_layers: int = PAPER_LAYERS) -> int:
    """Layer index K of a ``paper_layers``-deep LLM mapped to ``num_layers`` layers, in [1, L-1]."""
    if num_layers < 2:
        raise ValueError(f"num_layers must be >= 2 to prune inside the LLM, got {num_layers}")
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= paper_layers:
        raise ValueError(f"layer index must be an int in [0, {paper_layers}], got {k!r}")
    scaled = max(1, round_half_up(k * num_layers / paper_layers))
    return min(max(scaled, 1), num_layers - 1)


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


def cell_options(method: str, retention: Optional[float], num_layers: int, *,
                 overrides: Optional[Mapping[str, Any]] = None, vision_layers: Optional[int] = None,
                 paper_layers: int = PAPER_LAYERS, newline: Optional[str] = None) -> dict[str, Any]:
    """{"paper": options as the paper states them, "applied": options for this model,
    "scaled": {option: [paper, applied]}, "notes": [...]} for ``method`` at ``retention``.

    ``overrides`` are paper-level options (e.g. {"k": 3} for fastv) applied before scaling.
    ``newline`` (the model's newline layout, e.g. ``adapter.newline_policy``) adds the options the
    paper states for that setting only (``SETTING_DEFAULTS``); overrides still win.
    Raises ValueError for a retention the method does not take (vanilla with r, others without)."""
    if method in NO_RETENTION:
        if retention is not None:
            raise ValueError(f"{method} prunes nothing: its retention must be None (rtag full), got {retention!r}")
    elif retention is None:
        raise ValueError(f"{method} needs a retention in (0, 1]")
    elif not 0 < float(retention) <= 1:
        raise ValueError(f"retention must be in (0, 1], got {retention!r}")
    paper: dict[str, Any] = dict(PAPER_DEFAULTS.get(method, {}))
    paper.update(SETTING_DEFAULTS.get((method, newline), {}))
    paper.update(dict(overrides or {}))
    notes: list[str] = []
    r = None if retention is None else float(retention)
    if method == "fastv":
        paper.setdefault("keep", r)
        notes.append("fastv: keep = retention (visual tokens kept from layer K on)")
    elif method == "pdrop":
        stages = len(paper["layers"])
        paper.setdefault("lam", r ** (1.0 / stages))
        notes.append(f"pdrop: lam = retention^(1/{stages}) so the last stage keeps the retention")
    elif method == "stts":
        paper.setdefault("topk", round(1.0 - r, 6))
        notes.append("stts: topk (pruned fraction) = 1 - retention; scorer untrained unless "
                     "scorer_checkpoint is given (label: stts-untrained-scorer)")
    elif method not in NO_RETENTION:
        paper.setdefault("retention", r)
    applied = dict(paper)
    scaled: dict[str, list] = {}
    for name in LAYER_OPTIONS.get(method, ()):
        if name not in paper or paper[name] is None:
            continue
        v = paper[name]
        if isinstance(v, (list, tuple)):
            new = sorted({scale_layer(int(b), num_layers, paper_layers) for b in v})
            if len(new) < len(v):
                notes.append(f"{method}: boundaries {list(v)} collapse to {new} on {num_layers} layers")
                if name == "layers" and "lam" in paper and r is not None and "lam" not in (overrides or {}):
                    applied["lam"] = r ** (1.0 / len(new))
            applied[name] = new
        else:
            applied[name] = scale_layer(int(v), num_layers, paper_layers)
            if name in AFTER_LAYER_OPTIONS:  # prunes *after* this layer: it must leave a layer behind
                applied[name] = min(applied[name], num_layers - 2)
        scaled[name] = [v, applied[name]]
    if method == "tango":
        applied["llm_layers"] = num_layers
    if method == "stts" and vision_layers is not None and vision_layers <= 2:
        applied["prune_at"] = 0
        scaled["prune_at"] = [paper.get("prune_at", 3), 0]
        notes.append(f"stts: prune_at 0 on a {vision_layers}-layer tower (prune_at + 1 must be a tower block)")
    return {"paper": paper, "applied": applied, "scaled": scaled, "notes": notes,
            "paper_layers": paper_layers, "num_layers": num_layers}


def method_label(method: str, applied: Mapping[str, Any]) -> str:
    """Display label: STTS without a trained scorer is labelled as such."""
    if method == "stts" and not applied.get("scorer_checkpoint"):
        return "stts-untrained-scorer"
    return method
