"""TokenSchedule: how many tokens each layer of a video LLM processes for one request.

One schedule describes one request (batch 1): the vision tower's per-layer load, the tokens the
projector sees, the tokens entering every LLM layer during prefill and the number of decode steps.
Methods state a *nominal* schedule for an architecture; the runtime records the *actual* one; the
cost model turns either into FLOPs, bytes and time.

Conventions (fixed here so that every producer and consumer agrees):
- ``llm_visual[l]`` counts the video *feature* tokens entering LLM layer ``l`` during prefill.
  Newline separator tokens are counted apart in ``llm_newline[l]`` because the papers' FLOPs
  convention counts video feature tokens only (HoliTom's 40.8 T uses n = 32 x 196, no newline).
  Inner-LLM pruning in this project never removes newline tokens, so ``llm_newline`` is constant
  for nominal schedules; it is still stored per layer so a recorded schedule can say otherwise.
- ``text_tokens`` is every other prompt token (system prompt, question, template); constant over
  layers.
- The KV cache of layer ``l`` after prefill holds exactly the tokens that layer ``l`` processed;
  decode step ``i`` (0-based) attends over ``kv_lengths[l] + i + 1`` keys.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable


@dataclass(frozen=True)
class VisionLoad:
    """Work of one vision-tower layer: ``sequences`` independent attention sequences of
    ``tokens`` tokens each (frames, packed bins, or windows)."""

    sequences: int
    tokens: int

    def __post_init__(self) -> None:
        for name in ("sequences", "tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"VisionLoad.{name} must be a non-negative int, got {value!r}")

    @property
    def total(self) -> int:
        return self.sequences * self.tokens


@dataclass(frozen=True)
class TokenSchedule:
    frames: int
    vision: tuple[VisionLoad, ...]
    projector_tokens: int
    llm_visual: tuple[int, ...]
    llm_newline: tuple[int, ...] = ()
    text_tokens: int = 0
    decode_steps: int = 0
    label: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"TokenSchedule.frames must be an int >= 1, got {self.frames!r}")
        object.__setattr__(self, "vision", tuple(
            v if isinstance(v, VisionLoad) else VisionLoad(*v) for v in self.vision))
        object.__setattr__(self, "llm_visual", tuple(int(n) for n in self.llm_visual))
        newline = self.llm_newline
        if isinstance(newline, int):
            newline = (newline,) * len(self.llm_visual)
        elif len(newline) == 0:
            newline = (0,) * len(self.llm_visual)
        object.__setattr__(self, "llm_newline", tuple(int(n) for n in newline))
        object.__setattr__(self, "notes", tuple(self.notes))
        if len(self.llm_newline) != len(self.llm_visual):
            raise ValueError(
                f"llm_newline has {len(self.llm_newline)} layers but llm_visual has "
                f"{len(self.llm_visual)}")
        for name in ("projector_tokens", "text_tokens", "decode_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"TokenSchedule.{name} must be a non-negative int, got {value!r}")
        for name in ("llm_visual", "llm_newline"):
            bad = [n for n in getattr(self, name) if n < 0]
            if bad:
                raise ValueError(f"TokenSchedule.{name} has negative counts: {bad[:3]}")

    # ---- derived views -------------------------------------------------------------------
    @property
    def llm_layers(self) -> int:
        return len(self.llm_visual)

    @property
    def llm_prefill(self) -> tuple[int, ...]:
        """Total tokens (visual + newline + text) entering each LLM layer during prefill."""
        return tuple(v + n + self.text_tokens for v, n in zip(self.llm_visual, self.llm_newline))

    @property
    def kv_lengths(self) -> tuple[int, ...]:
        """KV-cache length of each layer right after prefill."""
        return self.llm_prefill

    def kv_at_step(self, step: int) -> tuple[int, ...]:
        """Keys each layer attends over during decode step ``step`` (0-based), new token included."""
        if step < 0:
            raise ValueError(f"decode step must be >= 0, got {step}")
        return tuple(n + step + 1 for n in self.kv_lengths)

    def visual_ratio(self, reference: "TokenSchedule") -> float:
        """Layer-averaged fraction of the reference's visual tokens (SparseVLM/VisionZip metric)."""
        if reference.llm_layers != self.llm_layers:
            raise ValueError("schedules have different LLM depths")
        ref = sum(reference.llm_visual)
        return sum(self.llm_visual) / ref if ref else 1.0

    def with_decode(self, steps: int) -> "TokenSchedule":
        return replace_fields(self, decode_steps=steps)

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["vision"] = [[v.sequences, v.tokens] for v in self.vision]
        d["llm_visual"] = list(self.llm_visual)
        d["llm_newline"] = list(self.llm_newline)
        d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TokenSchedule":
        allowed = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - allowed
        if unknown:
            raise ValueError(f"unknown TokenSchedule keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        d = dict(d)
        d["vision"] = tuple(VisionLoad(int(s), int(t)) for s, t in d.get("vision", ()))
        d["llm_visual"] = tuple(d["llm_visual"])
        d["llm_newline"] = tuple(d.get("llm_newline", ()))
        d["notes"] = tuple(d.get("notes", ()))
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def replace_fields(schedule: TokenSchedule, **changes: Any) -> TokenSchedule:
    from dataclasses import replace

    return replace(schedule, **changes)


def uniform_vision(frames: int, tokens_per_frame: int, layers: int) -> tuple[VisionLoad, ...]:
    """Vision load of an unpruned per-frame tower: every layer sees every frame in full."""
    return tuple(VisionLoad(frames, tokens_per_frame) for _ in range(layers))


def staged(counts: Iterable[tuple[int, int]], layers: int) -> tuple[int, ...]:
    """Expand ``[(start_layer, tokens), ...]`` into a per-layer tuple of length ``layers``.

    ``staged([(0, 6272), (2, 1254)], 28)`` is 6272 for layers 0-1 and 1254 for layers 2-27.
    """
    counts = sorted(counts)
    if not counts or counts[0][0] != 0:
        raise ValueError("the first stage must start at layer 0")
    out = []
    for i, (start, n) in enumerate(counts):
        end = counts[i + 1][0] if i + 1 < len(counts) else layers
        if not 0 <= start < end <= layers:
            raise ValueError(f"stage starts must be increasing and inside [0, {layers}): {counts}")
        out.extend([int(n)] * (end - start))
    return tuple(out)
