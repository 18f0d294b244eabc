"""The contracts between methods, adapters and the pipeline, stated once.

- ``VideoTokens`` in, ``Reduction`` out: the two data types every pre-LLM method speaks;
- ``PromptInputs``: one prompt ready for the LLM (what an adapter's ``build_inputs`` returns);
- ``FAMILIES`` and the protocols of what a method needs from the adapter it is attached to
  (``MethodHost`` for every method, ``TowerHost`` for the in-ViT ones), checked when a method is
  attached (``Method.attach``).

Flat indices: token ``n`` of frame ``f`` has flat index ``f * N + n`` where ``N = h * w`` and ``n =
row * w + col``. A Reduction names, for every output token, the flat index it came from (for a
merged token: its anchor), so position ids can be original or contiguous and the newline layout
can be rebuilt.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Protocol, runtime_checkable

import torch

NewlinePolicy = Literal["one_token", "grid", "none"]
PositionMode = Literal["contiguous", "original"]

#: Names of the saliency signals an adapter can provide, each (F, N), pooled like the features.
SALIENCY_SIGNALS = {
    "vit_attn_received": "mean attention each token receives in the last vision-tower layer "
                         "(heads and queries averaged); HoliTom, VisionZip",
    "map_head_attn": "attention of the SigLIP attention-pooling (MAP) head probe over tokens "
                     "(heads averaged); Tango, FastVID",
    "vit_global_query_attn": "Qwen2.5-VL: attention of each temporal group's mean query over its "
                             "2x2-merged keys at the tower's last full-attention block (heads "
                             "averaged); Tango on Qwen2.5-VL",
}


#: The model families a method can declare (``Method.families``): LLaVA-OneVision and LLaVA-Video
#: (one adapter, two token layouts: ``methods.adapters.llava_onevision``), Qwen2.5-VL, Molmo2.
FAMILIES = ("llava-onevision", "llava-video", "qwen2.5-vl", "molmo2")


@runtime_checkable
class MethodHost(Protocol):
    """What every method needs from the adapter it is attached to: the family it runs (checked
    against ``Method.families``), the LLM depth (an inner plan is validated against it) and the
    slot the attached method sits in. Pre-LLM methods read only the ``VideoTokens`` the pipeline
    hands them; inner-LLM methods give an ``InnerPlan`` the adapter's prefill runs."""

    family: str
    num_layers: int
    method: Any


@runtime_checkable
class TowerHost(MethodHost, Protocol):
    """What an in-ViT method (STTS, ToMe) needs besides: it runs the adapter's vision tower itself,
    so it reads the tower's config and geometry (patch grid, tokens per frame in the tower, pooled
    grid, newline layout) and where its tensors live."""

    vision_config: Any
    tower_grid: Any
    tower_tokens: int
    grid: Any
    newline_policy: str
    device: Any
    dtype: Any


def protocol_members(protocol: type) -> list[str]:
    """The member names of a Protocol class and its protocol bases (named in attach errors)."""
    names: set[str] = set()
    for base in protocol.__mro__:
        if base in (object, Protocol) or not getattr(base, "_is_protocol", False):
            continue
        names |= {n for n in getattr(base, "__annotations__", {}) if not n.startswith("_")}
        names |= {n for n, v in vars(base).items() if not n.startswith("_") and (callable(v) or isinstance(v, property))}
    return sorted(names)


class NotApplicable(ValueError):
    """A method's own rule says it cannot run this setting (e.g. DyCoke below ~25 % retention):
    the harness writes ``status: not-applicable`` with this message. Any other error fails the job."""

@dataclass
class VideoTokens:
    """Visual tokens of one video after projection and pooling, plus the signals methods use."""

    features: torch.Tensor                     # (F, N, D) projected, pooled features
    grid: tuple[int, int]                      # (h, w) with h * w == N
    timestamps: Optional[torch.Tensor] = None  # (F,) seconds; None -> 0..F-1
    saliency: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (F, N)
    global_features: Optional[torch.Tensor] = None  # (F, Dg) per-frame global feature
    keys: Optional[torch.Tensor] = None        # (F, N, Dk) pooled attention keys (VisionZip)
    newline_policy: NewlinePolicy = "one_token"

    def __post_init__(self) -> None:
        if self.features.dim() != 3:
            raise ValueError(f"VideoTokens.features must be (F, N, D), got shape {tuple(self.features.shape)}")
        F, N, _ = self.features.shape
        h, w = self.grid
        if h * w != N:
            raise ValueError(f"grid {self.grid} has {h * w} cells but features have N={N} tokens per frame")
        for name, s in self.saliency.items():
            if name not in SALIENCY_SIGNALS:
                raise ValueError(f"unknown saliency signal {name!r}; allowed: {sorted(SALIENCY_SIGNALS)}")
            if tuple(s.shape) != (F, N):
                raise ValueError(f"saliency[{name!r}] must be (F, N)=({F}, {N}), got {tuple(s.shape)}")
        if self.timestamps is not None and tuple(self.timestamps.shape) != (F,):
            raise ValueError(f"timestamps must be (F,)=({F},), got {tuple(self.timestamps.shape)}")

    @property
    def frames(self) -> int:
        return self.features.shape[0]

    @property
    def tokens_per_frame(self) -> int:
        return self.features.shape[1]

    @property
    def num_tokens(self) -> int:
        return self.features.shape[0] * self.features.shape[1]

    def times(self) -> torch.Tensor:
        if self.timestamps is not None:
            return self.timestamps.to(torch.float32)
        return torch.arange(self.frames, dtype=torch.float32, device=self.features.device)

    def require(self, signal: str) -> torch.Tensor:
        if signal not in self.saliency:
            raise KeyError(
                f"this method needs saliency signal {signal!r} but the adapter provided "
                f"{sorted(self.saliency) or 'none'}")
        return self.saliency[signal]


@dataclass
class PromptInputs:
    """One prompt ready for the LLM (batch 1)."""

    inputs_embeds: torch.Tensor          # (1, L, D)
    position_ids: torch.Tensor           # (L,), or (3, L) M-RoPE ids (Qwen2.5-VL)
    kinds: torch.Tensor                  # (L,) TEXT / VISUAL / NEWLINE
    input_ids: Optional[torch.Tensor]    # (1, L) HF-compatible ids (unpruned prompts only)
    frames: int
    tower_tokens: int                    # tokens per frame inside the vision tower
    info: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.inputs_embeds.shape[1])


@dataclass
class Reduction:
    """Output of a pre-LLM method: tokens in sequence order and where each came from."""

    features: torch.Tensor   # (M, D) kept / merged features, in the order they enter the LLM
    source: torch.Tensor     # (M,) long: flat index (f * N + n) of each token's origin / anchor
    positions: PositionMode = "contiguous"
    info: dict = field(default_factory=dict)  # method diagnostics (segments, ratios, ...)

    def __post_init__(self) -> None:
        if self.features.dim() != 2:
            raise ValueError(f"Reduction.features must be (M, D), got {tuple(self.features.shape)}")
        if self.source.shape != (self.features.shape[0],):
            raise ValueError(
                f"Reduction.source must be ({self.features.shape[0]},), got {tuple(self.source.shape)}")
        if self.positions not in ("contiguous", "original"):
            raise ValueError(f"positions must be 'contiguous' or 'original', got {self.positions!r}")

    @property
    def num_tokens(self) -> int:
        return self.features.shape[0]


def check_retention(retention: float, name: str = "retention") -> float:
    """Validate a kept fraction: must lie in (0, 1]."""
    try:
        value = float(retention)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1], got {retention!r}") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {retention!r}")
    return value
