"""Nominal token schedules: how many tokens each layer sees when a method runs as specified.

Every method (paper method or baseline) states its nominal schedule for an architecture here; the
runtime records the actual one and a test holds recorded == nominal. Sources: papers.md §1 (HoliTom,
Tango, STTS) and §4 (baselines).

Conventions:
- ``retention`` r is the fraction of the F·N video feature tokens kept (pre-LLM methods keep
  ``round(r·F·N)``, rounding half up; option ``budget="per_frame"`` keeps F·ceil(r·N), which is what
  the HoliTom FLOPs columns imply, see ``kept_tokens``). For FastV it is the fraction kept after
  layer K; for STTS it is ``1 − topk``.
- Newline tokens go in ``llm_newline``: ``one_token`` (LLaVA-OV) = 1; ``grid`` (LLaVA-Video) = one per
  pooled row, F·h at full; after pruning a row keeps its newline only if it keeps >= 1 token, which
  depends on the kept pattern, so the nominal schedule uses the upper bound ``min(F·h, kept)``;
  ``none`` (Qwen2.5-VL, Molmo2) = 0.
- Vision-tower load: LLaVA/Molmo2 run every frame as one 729-token sequence; Qwen2.5-VL runs
  64-token windows except in its full-attention blocks (one sequence per temporal step).
"""
from __future__ import annotations

import math
from typing import Any

from .arch import ArchSpec
from .schedule import TokenSchedule, VisionLoad, staged

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

_PRE_LLM = ("visionzip", "prunevid", "fastvid", "dycoke", "holitom-wo-m", "tango", "random", "uniform-pool")
_OPTIONS: dict[str, dict[str, Any]] = {
    "vanilla": {},
    **{m: {"budget": "global"} for m in _PRE_LLM},
    "fastv": {"k": 2, "r": 0.5},
    "pdrop": {"lam": 0.5, "layers": None},
    "holitom": {"k": 18, "r": 0.5, "budget": "global"},
    "tango-intra": {"k": 18, "p": 0.5, "budget": "global"},
    "stts": {"prune_at": 3, "topk": None},
}


BUDGETS = ("global", "per_frame")


def method_options(method: str) -> dict[str, Any]:
    """The options ``nominal_schedule`` accepts for ``method``, with their defaults."""
    if method not in _OPTIONS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(NOMINAL_METHODS)}")
    return dict(_OPTIONS[method])


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def kept_tokens(r: float, frames: int, per_frame: int, budget: str = "global") -> int:
    """Pre-LLM budget: ``global`` = round(r·F·N) (the project's nominal convention);
    ``per_frame`` = F·ceil(r·N), what HoliTom's per-frame ``ceil(L·r)`` budgets give and what its
    FLOPs columns imply (e.g. 20 % of 32x196: 32·40 = 1280 tokens -> 7.04 T, printed 7.0, whereas
    round(0.2·6272) = 1254 -> 6.89 T)."""
    if budget == "global":
        return max(1, round_half_up(r * frames * per_frame))
    if budget == "per_frame":
        return frames * max(1, math.ceil(round(r * per_frame, 9)))
    raise ValueError(f"unknown budget {budget!r}; allowed: {BUDGETS}")


def check_retention_value(retention: float) -> float:
    if isinstance(retention, bool) or not isinstance(retention, (int, float)) or not 0 < retention <= 1:
        raise ValueError(f"retention must be in (0, 1], got {retention!r}")
    return float(retention)


def full_vision(arch: ArchSpec, frames: int) -> tuple[VisionLoad, ...]:
    """Vision-tower load with nothing pruned."""
    v = arch.vision
    patches = v.patches_per_frame
    if not v.window_tokens:
        return tuple(VisionLoad(frames, patches) for _ in range(v.layers))
    side = int(math.isqrt(v.window_tokens))
    gh, gw = v.grid
    windows = math.ceil(gh / side) * math.ceil(gw / side)
    return tuple(VisionLoad(frames, patches) if l in v.full_attention_layers
                 else VisionLoad(frames * windows, v.window_tokens) for l in range(v.layers))


def projector_tokens(arch: ArchSpec, frames: int, pooled_tokens: int) -> int:
    """Tokens the projector sees: LLaVA projects every patch before pooling; Qwen2.5-VL's merger and
    Molmo2's pooling+MLP run on the pooled tokens."""
    if arch.family == "llava":
        return frames * arch.vision.patches_per_frame
    return pooled_tokens


def newline_tokens(arch: ArchSpec, frames: int, kept: int) -> int:
    if arch.newline == "one_token":
        return 1
    if arch.newline == "grid":
        return min(frames * arch.pooled_grid[0], kept)
    return 0


def nominal_schedule(arch: ArchSpec, method: str, *, frames: int | None = None,
                     retention: float | None = None, text_tokens: int = 0, decode_steps: int = 0,
                     **options: Any) -> TokenSchedule:
    """The nominal TokenSchedule of ``method`` on ``arch`` (see NOMINAL_METHODS)."""
    if method not in NOMINAL_METHODS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(NOMINAL_METHODS)}")
    allowed = _OPTIONS[method]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for method {method!r}; allowed: "
                         f"{sorted(allowed) or 'none'}")
    opts = {**allowed, **options}
    frames = arch.default_frames if frames is None else frames
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an int >= 1, got {frames!r}")
    if retention is not None:
        retention = check_retention_value(retention)
    full = frames * arch.tokens_per_frame
    L = arch.llm.layers
    vision = full_vision(arch, frames)
    label = f"{arch.name}/{method}/F={frames}" + (f"/r={retention:g}" if retention is not None else "")
    notes: list[str] = []

    if method == "vanilla":
        if retention not in (None, 1.0):
            raise ValueError(f"vanilla keeps every token; retention must be None or 1, got {retention!r}")
        visual = (full,) * L
        kept = full
    elif method in _PRE_LLM:
        kept = kept_tokens(_need(retention, method), frames, arch.tokens_per_frame, opts["budget"])
        visual = (kept,) * L
    elif method == "fastv":
        k = _layer(opts["k"], L, "k")
        if retention is not None and "r" in options:
            raise ValueError("fastv: give either retention (kept fraction) or option r (dropped fraction)")
        keep = retention if retention is not None else 1.0 - _fraction(opts["r"], "r")
        kept = full
        visual = staged([(0, full), (k, round_half_up(full * keep))], L) if k < L else (full,) * L
    elif method == "pdrop":
        if retention is not None:
            raise ValueError("pdrop takes no retention; set options lam= and layers=")
        lam = _fraction(opts["lam"], "lam")
        bounds = opts["layers"] or tuple(round_half_up(b * L / 32) for b in (8, 16, 24))
        bounds = tuple(_layer(b, L, "layers") for b in bounds)
        if list(bounds) != sorted(set(bounds)) or bounds[0] == 0:
            raise ValueError(f"pdrop layers must be strictly increasing and > 0, got {bounds}")
        kept = full
        visual = staged([(0, full)] + [(b, round_half_up(full * lam ** (i + 1)))
                                       for i, b in enumerate(bounds)], L)
        notes.append(f"pdrop stage boundaries {bounds}, lam={lam}")
    elif method == "holitom":
        k = _layer(opts["k"], L, "k")
        kept = kept_tokens(_need(retention, method), frames, arch.tokens_per_frame, opts["budget"])
        inner = round_half_up(kept * (1.0 - _fraction(opts["r"], "r")))
        visual = staged([(0, kept), (k, inner)], L) if k < L else (kept,) * L
    elif method == "tango-intra":
        r = _need(retention, method)
        k = _layer(opts["k"], L, "k")
        p = _fraction(opts["p"], "p")
        r_pre = min(1.0, L * r / (k + (L - k) * p))
        kept = kept_tokens(r_pre, frames, arch.tokens_per_frame, opts["budget"])
        visual = staged([(0, kept), (k, round_half_up(kept * p))], L) if k < L else (kept,) * L
        notes.append(f"tango-intra r_pre={r_pre:.4f}")
    elif method == "stts":
        if retention is not None and options.get("topk") is not None:
            raise ValueError("stts: give either retention (= 1 - topk) or option topk")
        topk = opts["topk"] if opts["topk"] is not None else (0.5 if retention is None else 1.0 - retention)
        if not 0 <= topk < 1:
            raise ValueError(f"stts topk (pruned fraction) must be in [0, 1), got {topk!r}")
        vision, kept = _stts(arch, frames, topk, _layer(opts["prune_at"], arch.vision.layers - 1, "prune_at"))
        visual = (kept,) * L
        notes.append("STTS ViT bins: first-fit-decreasing lower bound ceil(kept/729); refill of "
                     "single-frame bins is not modelled")
    else:  # pragma: no cover - NOMINAL_METHODS and this chain are kept in sync by the tests
        raise AssertionError(method)

    newline = newline_tokens(arch, frames, visual[0])
    if arch.newline == "grid" and visual[0] < full:
        notes.append("grid newlines: upper bound min(F·h, kept)")
    return TokenSchedule(frames=frames, vision=vision, projector_tokens=projector_tokens(arch, frames, kept),
                         llm_visual=visual, llm_newline=newline, text_tokens=text_tokens,
                         decode_steps=decode_steps, label=label, notes=tuple(notes))


def _stts(arch: ArchSpec, frames: int, topk: float, prune_at: int) -> tuple[tuple[VisionLoad, ...], int]:
    """ViT load and LLM tokens of STTS (papers.md §1.3): groups of g patches per pooled token."""
    n = arch.vision.patches_per_frame
    per_frame = arch.tokens_per_frame
    group = n // per_frame
    pruned = min(round_half_up(per_frame * topk * frames), per_frame * (frames - 1))  # first frame kept
    kept_patches = n * frames - group * pruned
    bins = math.ceil(kept_patches / n)
    vision = tuple(VisionLoad(frames, n) if l <= prune_at + 1 else VisionLoad(bins, n)
                   for l in range(arch.vision.layers))
    return vision, per_frame * frames - pruned


def _need(retention: float | None, method: str) -> float:
    if retention is None:
        raise ValueError(f"method {method!r} needs retention in (0, 1]")
    return retention


def _layer(value: Any, layers: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= layers:
        raise ValueError(f"option {name} must be an int layer index in [0, {layers}], got {value!r}")
    return value


def _fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"option {name} must be a fraction in [0, 1], got {value!r}")
    return float(value)

