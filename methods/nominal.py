"""Nominal token schedules of the registered methods, by name, in the analytic tier's vocabulary.

``nominal_schedule(arch, "holitom", retention=0.1, k=18, r=0.5)``: how many tokens each layer sees
when a method runs as its paper specifies it, built from the cost model's blocks
(``costmodel.nominal``: kept-token arithmetic, staged schedules, vision loads). The Methods'
own ``nominal_schedule`` (``methods.base.Method``) delegates here with their configured options,
so the analytic tier, the tables and the runtime share one definition. Sources: papers.md §1
(HoliTom, Tango, STTS) and §4 (baselines).

Option names here are the papers' (``k``: layer K; ``r``: fraction merged or dropped; ``p``: Tango's
intra-LLM keep; ``lam``/``layers``: PyramidDrop; ``topk``/``prune_at``: STTS); ``retention`` is
the kept fraction (FastV: after layer K; STTS: ``1 - topk``).
"""
from __future__ import annotations

from typing import Any, Callable

from costmodel.arch import ArchSpec
from costmodel.nominal import (assemble, check_fraction, check_frames, check_layer, check_retention_value,
                               kept_tokens, packed_vision, round_half_up)
from costmodel.schedule import TokenSchedule, staged

from methods.baselines.inner_llm import pdrop_boundaries
from methods.paper_options import (FASTV_K, HOLITOM_INNER_K, HOLITOM_INNER_R, PDROP_LAMBDA, STTS_PRUNE_AT,
                                   TANGO_INTRA_K, TANGO_INTRA_KEEP)

NOMINAL_METHODS: dict[str, str] = {
    "vanilla": "no reduction: F·N visual tokens in every LLM layer",
    "visionzip": "pre-LLM, keeps round(r·F·N) tokens",
    "prunevid": "pre-LLM, keeps round(r·F·N) tokens",
    "fastvid": "pre-LLM, keeps round(r·F·N) tokens",
    "dycoke": "pre-LLM, keeps round(r·F·N) tokens (nominal: its decode-time KV pruning is not modelled)",
    "holitom-wo-m": "HoliTom without inner merging: pre-LLM, keeps round(r·F·N) tokens",
    "tango": "pre-LLM, keeps round(r·F·N) tokens",
    "random": "pre-LLM random selection, keeps round(r·F·N) tokens",
    "uniform-pool": "pre-LLM uniform spatial pooling, keeps round(r·F·N) tokens",
    "fastv": "inside the LLM: full for layers < k (default 2), keeps `retention` (default 1 - r, r=0.5 "
             "dropped) after; HoliTom's 9.3 T row is k=2, retention=0.2",
    "pdrop": "PyramidDrop: 4 stages, each keeps lam (0.5) of the previous; boundaries `layers` default "
             "(8, 16, 24)/32 of the depth",
    "holitom": "pre-LLM round(r·F·N), then inner merging at layer k=18 removes r_inner=0.5 of them",
    "tango-intra": "Tango with intra-LLM pruning (LLaVA-Video): r_pre = L·r/(k+(L-k)·p), k=18, p=0.5",
    "stts": "STTS: ViT pruning after block prune_at+1 (prune_at=3), topk=0.5 of 3x3 groups pruned "
            "(first frame kept), later ViT blocks on ceil(kept/729) packed bins; LLM sees the kept groups",
}

PRE_LLM = ("visionzip", "prunevid", "fastvid", "dycoke", "holitom-wo-m", "tango", "random", "uniform-pool")
OPTIONS: dict[str, dict[str, Any]] = {
    "vanilla": {},
    **{m: {"budget": "global"} for m in PRE_LLM},
    "fastv": {"k": FASTV_K, "r": 0.5},
    "pdrop": {"lam": PDROP_LAMBDA, "layers": None},
    "holitom": {"k": HOLITOM_INNER_K, "r": HOLITOM_INNER_R, "budget": "global"},
    "tango-intra": {"k": TANGO_INTRA_K, "p": TANGO_INTRA_KEEP, "budget": "global"},
    "stts": {"prune_at": STTS_PRUNE_AT, "topk": None},
}

#: recipe(arch, frames, retention, opts, given) -> (per-layer visual counts, kept, vision or None, notes)
Recipe = Callable[[ArchSpec, int, Any, dict, dict], tuple]


def method_options(method: str) -> dict[str, Any]:
    """The options ``nominal_schedule`` accepts for ``method``, with their defaults."""
    if method not in OPTIONS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(NOMINAL_METHODS)}")
    return dict(OPTIONS[method])


def _need(retention: float | None, method: str) -> float:
    if retention is None:
        raise ValueError(f"method {method!r} needs retention in (0, 1]")
    return retention


def _vanilla(arch, frames, retention, opts, given):
    if retention not in (None, 1.0):
        raise ValueError(f"vanilla keeps every token; retention must be None or 1, got {retention!r}")
    full = frames * arch.tokens_per_frame
    return (full,) * arch.llm.layers, full, None, ()


def _pre_llm(name: str) -> Recipe:
    def recipe(arch, frames, retention, opts, given):
        kept = kept_tokens(_need(retention, name), frames, arch.tokens_per_frame, opts["budget"])
        return (kept,) * arch.llm.layers, kept, None, ()
    return recipe


def _fastv(arch, frames, retention, opts, given):
    L, full = arch.llm.layers, frames * arch.tokens_per_frame
    k = check_layer(opts["k"], L, "k")
    if retention is not None and "r" in given:
        raise ValueError("fastv: give either retention (kept fraction) or option r (dropped fraction)")
    keep = retention if retention is not None else 1.0 - check_fraction(opts["r"], "r")
    visual = staged([(0, full), (k, round_half_up(full * keep))], L) if k < L else (full,) * L
    return visual, full, None, ()


def _pdrop(arch, frames, retention, opts, given):
    if retention is not None:
        raise ValueError("pdrop takes no retention; set options lam= and layers=")
    L, full = arch.llm.layers, frames * arch.tokens_per_frame
    lam = check_fraction(opts["lam"], "lam")
    bounds = tuple(check_layer(b, L, "layers") for b in pdrop_boundaries(L, opts["layers"]))
    if list(bounds) != sorted(set(bounds)) or bounds[0] == 0:
        raise ValueError(f"pdrop layers must be strictly increasing and > 0, got {bounds}")
    visual = staged([(0, full)] + [(b, round_half_up(full * lam ** (i + 1))) for i, b in enumerate(bounds)], L)
    return visual, full, None, (f"pdrop stage boundaries {bounds}, lam={lam}",)


def _holitom(arch, frames, retention, opts, given):
    L = arch.llm.layers
    k = check_layer(opts["k"], L, "k")
    kept = kept_tokens(_need(retention, "holitom"), frames, arch.tokens_per_frame, opts["budget"])
    inner = round_half_up(kept * (1.0 - check_fraction(opts["r"], "r")))
    return (staged([(0, kept), (k, inner)], L) if k < L else (kept,) * L), kept, None, ()


def _tango_intra(arch, frames, retention, opts, given):
    L = arch.llm.layers
    r = _need(retention, "tango-intra")
    k = check_layer(opts["k"], L, "k")
    p = check_fraction(opts["p"], "p")
    r_pre = min(1.0, L * r / (k + (L - k) * p))
    kept = kept_tokens(r_pre, frames, arch.tokens_per_frame, opts["budget"])
    visual = staged([(0, kept), (k, round_half_up(kept * p))], L) if k < L else (kept,) * L
    # the released stage ranks features + grid newlines and rounds half to even (methods.tango,
    # behaviour C); the feature count here is the paper convention's (no newlines), rounded half up
    return visual, kept, None, (f"tango-intra r_pre={r_pre:.4f}",
                                "intra stage: feature tokens, half up (released code: whole visual "
                                "span incl. newlines, Python round)")


def _stts(arch, frames, retention, opts, given):
    """ViT load and LLM tokens of STTS (papers.md §1.3): groups of g patches per pooled token."""
    if retention is not None and given.get("topk") is not None:
        raise ValueError("stts: give either retention (= 1 - topk) or option topk")
    topk = opts["topk"] if opts["topk"] is not None else (0.5 if retention is None else 1.0 - retention)
    if not 0 <= topk < 1:
        raise ValueError(f"stts topk (pruned fraction) must be in [0, 1), got {topk!r}")
    prune_at = check_layer(opts["prune_at"], arch.vision.layers - 1, "prune_at")
    n, per_frame = arch.vision.patches_per_frame, arch.tokens_per_frame
    group = n // per_frame
    pruned = min(round_half_up(per_frame * topk * frames), per_frame * (frames - 1))  # first frame kept
    vision = packed_vision(arch, frames, n * frames - group * pruned, prune_at + 1)
    kept = per_frame * frames - pruned
    return ((kept,) * arch.llm.layers, kept, vision,
            ("STTS ViT bins: first-fit-decreasing lower bound ceil(kept/729); refill of "
             "single-frame bins is not modelled",))


RECIPES: dict[str, Recipe] = {"vanilla": _vanilla, **{m: _pre_llm(m) for m in PRE_LLM}, "fastv": _fastv,
                              "pdrop": _pdrop, "holitom": _holitom, "tango-intra": _tango_intra, "stts": _stts}


def nominal_schedule(arch: ArchSpec, method: str, *, frames: int | None = None,
                     retention: float | None = None, text_tokens: int = 0, decode_steps: int = 0,
                     **options: Any) -> TokenSchedule:
    """The nominal TokenSchedule of ``method`` on ``arch`` (see NOMINAL_METHODS)."""
    if method not in NOMINAL_METHODS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(NOMINAL_METHODS)}")
    allowed = OPTIONS[method]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for method {method!r}; allowed: "
                         f"{sorted(allowed) or 'none'}")
    frames = check_frames(arch.default_frames if frames is None else frames)
    if retention is not None:
        retention = check_retention_value(retention)
    visual, kept, vision, notes = RECIPES[method](arch, frames, retention, {**allowed, **options}, options)
    label = f"{arch.name}/{method}/F={frames}" + (f"/r={retention:g}" if retention is not None else "")
    return assemble(arch, frames, visual, kept, label=label, vision=vision, text_tokens=text_tokens,
                    decode_steps=decode_steps, notes=notes)
