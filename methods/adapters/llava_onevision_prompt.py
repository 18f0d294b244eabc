"""Prompt builder of LLaVA-OneVision / LLaVA-Video: chat text, the visual span's layout, embeddings.

The visual span is the video's tokens (or a Reduction of them) with newline tokens laid out per
the setting's policy: ``one_token`` (one ``image_newline`` after the whole video, LLaVA-OV) or
``grid`` (one after every pooled row that keeps a token, LLaVA-Video). Positions are contiguous
unless the reduction asks for ``original`` ones (each token at its source's unpruned position).
"""
from __future__ import annotations

from typing import Optional

import torch

from methods.runtime import NEWLINE, TEXT, VISUAL
from methods.types import Reduction, VideoTokens

from .base import PromptInputs, host_to_device, visual_inputs
from .text import VIDEO_MARK, encode_text, qwen_chat, time_instruction


def prompt_text(question: str, tokens: VideoTokens, time_prompt: bool,
                duration: Optional[float] = None) -> str:
    """The chat text with ``<video>`` where the visual span goes (LLaVA-Video adds its time prompt)."""
    user = f"{VIDEO_MARK}\n{question}"
    if time_prompt:
        times = tokens.times().tolist()
        if duration is None:
            duration = float(times[-1]) if times else 0.0
        user = f"{VIDEO_MARK}{time_instruction(times, duration)}\n{question}"
    return qwen_chat(user)


def visual_layout(tokens: VideoTokens, reduction: Optional[Reduction], newline: torch.Tensor,
                  policy: str):
    """Visual span: (embeddings, kinds, offsets inside the *unpruned* span, unpruned span length), every
    tensor on the features' device."""
    F_, N, _ = tokens.features.shape
    h, w = tokens.grid
    dev = tokens.features.device
    feats, src = visual_inputs(tokens, reduction)
    newline = newline.to(device=dev, dtype=feats.dtype)
    visual = torch.full((feats.shape[0],), VISUAL, device=dev)
    if policy == "one_token":
        offsets = torch.cat([src, torch.full((1,), F_ * N, device=dev, dtype=src.dtype)])
        emb = torch.cat([feats, newline[None]])
        return emb, torch.cat([visual, torch.full((1,), NEWLINE, device=dev)]), offsets, F_ * N + 1
    if policy == "grid":
        f, n = src // N, src % N
        row, col = n // w, n % w
        tok_off = f * h * (w + 1) + row * (w + 1) + col
        rows = torch.unique(f * h + row)          # (frame, row) pairs with >= 1 token, sorted
        nl_off = (rows // h) * h * (w + 1) + (rows % h) * (w + 1) + w
        offsets = torch.cat([tok_off, nl_off])
        emb = torch.cat([feats, newline[None].expand(rows.numel(), -1)])
        kinds = torch.cat([visual, torch.full((rows.numel(),), NEWLINE, device=dev)])
        order = torch.argsort(offsets, stable=True)
        return emb[order], kinds[order], offsets[order], F_ * h * (w + 1)
    return feats, visual, src, F_ * N


@torch.no_grad()
def build_inputs(adapter, question: str, tokens: VideoTokens, reduction: Optional[Reduction] = None,
                 duration: Optional[float] = None) -> PromptInputs:
    """Chat prompt with the video (or its reduction) spliced in, newlines laid out per policy."""
    if tokens.newline_policy != adapter.newline_policy:
        raise ValueError(f"VideoTokens newline policy {tokens.newline_policy!r} does not match the "
                         f"adapter setting {adapter.setting!r} ({adapter.newline_policy!r})")
    text = prompt_text(question, tokens, adapter.time_prompt, duration)
    before, after = text.split(VIDEO_MARK)
    pre_ids = encode_text(adapter.tokenizer, before)
    post_ids = encode_text(adapter.tokenizer, after)
    dev = adapter.device
    vis, vkinds, offsets, span = visual_layout(tokens, reduction, adapter.model.model.image_newline,
                                               adapter.newline_policy)
    vis, vkinds, offsets = vis.to(device=dev, dtype=adapter.dtype), vkinds.to(dev), offsets.to(dev)
    pre = adapter.embed_text(host_to_device(pre_ids, dev, torch.long))
    post = adapter.embed_text(host_to_device(post_ids, dev, torch.long))
    embeds = torch.cat([pre, vis, post])[None]
    P, M, S = len(pre_ids), vis.shape[0], len(post_ids)
    kinds = torch.cat([torch.full((P,), TEXT, device=dev), vkinds, torch.full((S,), TEXT, device=dev)])
    if reduction is not None and reduction.positions == "original":
        pos = torch.cat([torch.arange(P, device=dev), P + offsets, P + span + torch.arange(S, device=dev)])
    else:
        pos = torch.arange(P + M + S, device=dev)
    input_ids = None
    if reduction is None:
        input_ids = host_to_device(pre_ids + [adapter.config.video_token_id] * M + post_ids, dev)[None]
    F_, N = tokens.features.shape[:2]
    n_visual = reduction.features.shape[0] if reduction is not None else F_ * N   # host shapes: no sync
    info = {"visual": n_visual, "newline": M - n_visual, "text": P + S, "unpruned_span": span}
    if getattr(tokens, "vision_load", None) is not None:  # in-ViT pruning: the tower load it ran
        info["vision_load"] = tuple(tokens.vision_load)
    return PromptInputs(embeds, pos, kinds, input_ids, frames=tokens.frames,
                        tower_tokens=adapter.tower_tokens, info=info)
