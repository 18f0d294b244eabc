"""Prompt builder of Qwen2.5-VL: chat text, the video span, and the 3-D M-RoPE position ids.

Layout (Qwen2.5-VL chat template, as in Tango's ``vlmeval/vlm/qwen2_vl/model.py``)::

    <|im_start|>system\\n...<|im_end|>\\n<|im_start|>user\\n<|vision_start|>[video]<|vision_end|>{question}<|im_end|>\\n<|im_start|>assistant\\n

Positions are computed for the full (unpruned) prompt and every token that enters the LLM keeps the
column of its source (Tango's Qwen code: ``position_ids[:, :, keep_indexs]``): text before the video
counts 0..P-1 on all three axes; video token (t, row, col) gets (P + floor(t * interval), P + row,
P + col) with ``interval = tokens_per_second * second_per_grid``; the text after the video resumes
at max(video positions) + 1 on all three axes. This is the rule of the released Qwen2.5-VL code (HF
transformers 4.49, which Tango modifies) and of HF ``get_rope_index`` up to v5.2. The installed HF
(5.x) instead resumes the text at P + max(h, w), which differs whenever the temporal positions run
past the spatial ones (huggingface/transformers issue 45381); where the two agree the keep-all
prompt equals HF's own forward (tested). The ``positions`` field of a Reduction (a 1-D notion) is
not used here: every kept or merged token sits at its source's (anchor's) 3-D position.
"""
from __future__ import annotations

from typing import Optional

import torch

from methods.runtime import TEXT, VISUAL
from methods.types import Reduction, VideoTokens

from .base import PromptInputs, host_to_device, visual_inputs
from .text import SYSTEM, encode_text

VIDEO_TYPE = 2  # HF mm_token_type_ids: text 0, image 1, video 2


def prompt_parts(question: str) -> tuple[str, str]:
    """(text before <|vision_start|>, text after <|vision_end|>) of the one-turn chat."""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n",
            f"{question}<|im_end|>\n<|im_start|>assistant\n")


def mrope_positions(before: int, grid: tuple[int, int, int], after: int, interval: float) -> torch.Tensor:
    """(3, before + T*h*w + after) position ids of the full prompt (see the module docstring)."""
    T, h, w = grid
    text0 = torch.arange(before).expand(3, -1)
    t = (torch.arange(T, dtype=torch.float64) * interval).long()
    vis = torch.stack([t[:, None, None].expand(T, h, w), torch.arange(h)[None, :, None].expand(T, h, w),
                       torch.arange(w)[None, None, :].expand(T, h, w)]).reshape(3, -1) + before
    start = int(vis.max()) + 1 if vis.numel() else before
    text1 = torch.arange(after).expand(3, -1) + start
    return torch.cat([text0, vis, text1], dim=1)


def second_per_grid(timestamps: Optional[torch.Tensor], temporal_patch: int) -> float:
    """Seconds per temporal group as HF's processor gives it (``second_per_grid_ts`` =
    temporal_patch / fps): frames assumed uniformly spaced, F = temporal_patch * T, their span read
    from the group times (which run from the first to the last frame's time, ``group_timestamps``);
    1.0 (HF's default) without times."""
    if timestamps is None or timestamps.numel() < 2:
        return 1.0
    span = float(timestamps[-1] - timestamps[0])
    frame_step = span / (temporal_patch * timestamps.numel() - 1)
    return temporal_patch * frame_step if frame_step > 0 else 1.0


@torch.no_grad()
def build_inputs(adapter, question: str, tokens: VideoTokens, reduction: Optional[Reduction] = None,
                 duration: Optional[float] = None) -> PromptInputs:
    """Chat prompt with the video (or its reduction) spliced in; (3, L) M-RoPE position ids."""
    if tokens.newline_policy != "none":
        raise ValueError(f"Qwen2.5-VL VideoTokens have newline policy 'none', got {tokens.newline_policy!r}")
    cfg = adapter.config
    before, after = prompt_parts(question)
    pre_ids = encode_text(adapter.tokenizer, before) + [cfg.vision_start_token_id]
    post_ids = [cfg.vision_end_token_id] + encode_text(adapter.tokenizer, after)
    dev = adapter.device
    feats, src = visual_inputs(tokens, reduction)
    F_, N, _ = tokens.features.shape
    h, w = tokens.grid
    P, M, S = len(pre_ids), feats.shape[0], len(post_ids)
    spg = second_per_grid(tokens.timestamps, adapter.vision_config.temporal_patch_size)
    interval = adapter.vision_config.tokens_per_second * spg
    full = mrope_positions(P, (F_, h, w), S, interval)
    src = src.to(dev)
    cols = torch.cat([torch.arange(P, device=dev), P + src, P + F_ * N + torch.arange(S, device=dev)])
    emb = torch.cat([adapter.embed_text(host_to_device(pre_ids, dev)), feats.to(dev, adapter.dtype),
                     adapter.embed_text(host_to_device(post_ids, dev))])[None]
    kinds = torch.cat([torch.full((P,), TEXT, device=dev), torch.full((M,), VISUAL, device=dev),
                       torch.full((S,), TEXT, device=dev)])
    input_ids = None
    if reduction is None:
        input_ids = host_to_device(pre_ids + [cfg.video_token_id] * M + post_ids, dev)[None]
    info = {"visual": M, "newline": 0, "text": P + S, "unpruned_span": F_ * N, "video_grid_thw": (F_, h, w),
            "second_per_grid": spg, "mrope_interval": interval}
    full = host_to_device(full, dev)
    return PromptInputs(emb, full[:, cols], kinds, input_ids, frames=F_,
                        tower_tokens=adapter.tower_tokens, info=info)
