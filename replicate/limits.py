"""Limits a setting must respect before anything is computed: finite numbers, context length.

``check_finite`` walks a nested value and names the first NaN/inf; ``context_length`` reads an
architecture's LLM context (``text_config.max_position_embeddings`` of the shipped HF config) and
``check_frames_fit`` refuses a frame count whose visual tokens alone exceed it (the cost model
would otherwise price a prompt the model cannot hold: 100000 frames of LLaVA-OV-7B = 19.6 M tokens).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional


class LimitError(ValueError):
    """A value outside what the model or the format can hold; the message names the key."""


def check_finite(value: Any, where: str) -> None:
    """Raise LimitError naming the first NaN/inf inside ``value`` (dicts, lists, numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise LimitError(f"{where}: {value!r} is not a finite number (NaN and inf are not allowed)")
    if isinstance(value, Mapping):
        for k, v in value.items():
            check_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_finite(v, f"{where}[{i}]")


def context_length(arch: Any) -> Optional[int]:
    """LLM context length of ``arch``: a costmodel architecture name or an HF config dict.
    None when the config does not state one (Molmo2's shipped config)."""
    if isinstance(arch, str):
        from costmodel.arch import load_config

        arch = load_config(arch)
    if not isinstance(arch, Mapping):
        return None
    value = arch.get("text_config", {}).get("max_position_embeddings", arch.get("max_position_embeddings"))
    return int(value) if value else None


def visual_tokens(arch_name: str, frames: int) -> int:
    """Visual tokens of ``frames`` unpruned frames (tokens_per_frame * frames, newlines excluded:
    a lower bound of the prompt)."""
    from costmodel.arch import load_arch

    return int(load_arch(arch_name).tokens_per_frame) * int(frames)


def check_frames_fit(arch_name: str, frames: int, where: str, *, tokens_per_frame: Optional[int] = None,
                     context: Optional[int] = None) -> None:
    """LimitError if ``frames`` unpruned frames of ``arch_name`` exceed its context length."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise LimitError(f"{where}: frames must be an int >= 1, got {frames!r}")
    ctx = context if context is not None else context_length(arch_name)
    if ctx is None:
        return
    tokens = tokens_per_frame * frames if tokens_per_frame is not None else visual_tokens(arch_name, frames)
    if tokens > ctx:
        max_frames = ctx // (tokens // frames)
        raise LimitError(f"{where}: {frames} frames of {arch_name} are {tokens} visual tokens, more than its "
                         f"context length {ctx} (max_position_embeddings); at most {max_frames} frames fit")
