"""Building blocks of nominal token schedules: kept-token arithmetic, vision-tower loads, newline
counts and the assembly of a TokenSchedule. No method lives here: each Method states its nominal
schedule from these blocks (``methods.base.Method.nominal_tokens``), the runtime records the actual
one, and a test holds recorded == nominal.

Conventions:
- ``retention`` r is the fraction of the F·N video feature tokens kept (pre-LLM budgets keep
  ``round(r·F·N)``, rounding half up; ``budget="per_frame"`` keeps F·ceil(r·N), see ``kept_tokens``).
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
from .schedule import TokenSchedule, VisionLoad

BUDGETS = ("global", "per_frame")


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
    """Tokens the projector sees: LLaVA projects every patch before pooling; Qwen2.5-VL's merger is
    the tower's last module and runs on every merged token (pre-LLM reductions act on its output,
    as ``methods.adapters.qwen2_5_vl`` records); Molmo2's pooling+MLP runs on the pooled tokens
    that survive in-ViT pruning (``pooled_tokens``)."""
    if arch.family == "llava":
        return frames * arch.vision.patches_per_frame
    if arch.family == "qwen2_5_vl":
        return frames * arch.tokens_per_frame
    return pooled_tokens


def newline_tokens(arch: ArchSpec, frames: int, kept: int) -> int:
    if arch.newline == "one_token":
        return 1
    if arch.newline == "grid":
        return min(frames * arch.pooled_grid[0], kept)
    return 0


def assemble(arch: ArchSpec, frames: int, visual: tuple[int, ...], kept: int, *, label: str,
             vision: tuple[VisionLoad, ...] | None = None, text_tokens: int = 0, decode_steps: int = 0,
             notes: tuple[str, ...] = ()) -> TokenSchedule:
    """A nominal TokenSchedule from per-layer visual counts (``kept``: tokens the projector path
    keeps; ``vision`` None: the unpruned tower)."""
    full = frames * arch.tokens_per_frame
    notes = tuple(notes)
    newline = newline_tokens(arch, frames, visual[0])
    if arch.newline == "grid" and visual[0] < full:
        notes = notes + ("grid newlines: upper bound min(F·h, kept)",)
    return TokenSchedule(frames=frames, vision=vision if vision is not None else full_vision(arch, frames),
                         projector_tokens=projector_tokens(arch, frames, kept), llm_visual=visual,
                         llm_newline=newline, text_tokens=text_tokens, decode_steps=decode_steps, label=label,
                         notes=notes)


def packed_vision(arch: ArchSpec, frames: int, kept_patches: int, full_through: int) -> tuple[VisionLoad, ...]:
    """Tower load when patches are dropped after layer ``full_through`` and the survivors are packed
    into ``ceil(kept_patches / patches_per_frame)`` frame-sized sequences (first-fit-decreasing
    lower bound)."""
    n = arch.vision.patches_per_frame
    bins = math.ceil(kept_patches / n)
    return tuple(VisionLoad(frames, n) if l <= full_through else VisionLoad(bins, n)
                 for l in range(arch.vision.layers))


def check_frames(frames) -> int:
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an int >= 1, got {frames!r}")
    return frames


def check_layer(value: Any, layers: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= layers:
        raise ValueError(f"option {name} must be an int layer index in [0, {layers}], got {value!r}")
    return value


def check_fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"option {name} must be a fraction in [0, 1], got {value!r}")
    return float(value)
