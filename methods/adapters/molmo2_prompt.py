"""Molmo2's prompt around a video (transformers ``Molmo2Processor.get_video_string``).

Per frame ``"{t:.1f} "`` text, ``<frame_start>``, one ``<im_patch>`` per pooled token that reaches
the LLM, ``<frame_end>``; frames joined by a space; the chat turn
``<|im_start|>user\\n{video}{question}<|im_end|>\\n<|im_start|>assistant\\n``. The pooled features
are *added* to the ``<im_patch>`` embeddings. Every image special token has ``mm_token_type_ids ==
1`` (they attend to each other bidirectionally in the prefill; kept in ``info``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from methods.runtime import TEXT, VISUAL
from methods.types import Reduction, VideoTokens

from .base import PromptInputs
from .text import ByteTokenizer, encode_text


def video_ids(adapter, kept_per_frame: Sequence[int], times: Sequence[float]) -> tuple[list[int], list[int]]:
    """The video string as ids with ``kept_per_frame[f]`` patch placeholders in frame f;
    returns (ids, mm_token_type_ids)."""
    c = adapter.config
    ids: list[int] = []
    types: list[int] = []
    for f, (k, t) in enumerate(zip(kept_per_frame, times)):
        txt = encode_text(adapter.tokenizer, (" " if f > 0 else "") + f"{float(t):.1f} ")
        frame = [c.frame_start_token_id] + [c.image_patch_id] * int(k) + [c.frame_end_token_id]
        ids += txt + frame
        types += [0] * len(txt) + [1] * len(frame)
    return ids, types


def kept_tokens(tokens: VideoTokens, reduction: Optional[Reduction]) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat source index in frame order, features) of the pooled tokens that reach the LLM: a
    reduction's, the kept ones of an in-ViT method (``tokens.keep``), or all."""
    F_, G, D = tokens.features.shape
    if reduction is not None:
        src, feats = reduction.source.cpu(), reduction.features
        order = torch.argsort(src, stable=True)          # placeholders sit inside their frame
        return src[order], feats[order.to(feats.device)]
    keep = getattr(tokens, "keep", None)
    if keep is None:
        keep = torch.ones(F_, G, dtype=torch.bool)
    src = torch.nonzero(keep.reshape(-1).cpu()).squeeze(1)
    return src, tokens.features.reshape(-1, D)[src.to(tokens.features.device)]


def build_inputs(adapter, question: str, tokens: VideoTokens, reduction: Optional[Reduction] = None) -> PromptInputs:
    """The chat prompt with the video's kept pooled tokens added at their placeholders."""
    F_, G, _ = tokens.features.shape
    src, feats = kept_tokens(tokens, reduction)
    per_frame = torch.bincount(src // G, minlength=F_).tolist()
    tok = adapter.tokenizer
    bos = getattr(tok, "bos_token_id", None) or getattr(tok, "eos_token_id", None)
    pre = [bos] if not isinstance(tok, ByteTokenizer) and bos is not None else []
    pre += encode_text(tok, "<|im_start|>user\n")
    vid, vtypes = video_ids(adapter, per_frame, tokens.times().tolist())
    post = encode_text(tok, f"{question}<|im_end|>\n<|im_start|>assistant\n")
    dev = adapter.device
    ids = torch.tensor(pre + vid + post, device=dev)[None]
    types = torch.tensor([0] * len(pre) + vtypes + [0] * len(post), device=dev)[None]
    slot = ids[0] == adapter.config.image_patch_id
    if int(slot.sum()) != feats.shape[0]:
        raise AssertionError(f"{int(slot.sum())} placeholders for {feats.shape[0]} pooled tokens")
    embeds = adapter.embed_text(ids).clone()
    embeds[0, slot] = embeds[0, slot] + feats.to(device=dev, dtype=embeds.dtype)
    kinds = torch.full((ids.shape[1],), TEXT, device=dev)
    kinds[slot] = VISUAL
    keep = getattr(tokens, "keep", None)
    # tokens the connector emitted (before any pre-LLM reduction): what its attention pooling and MLP ran on
    emitted = F_ * G if keep is None else int(keep.sum())
    info = {"visual": int(slot.sum()), "kept_per_frame": per_frame, "mm_token_type_ids": types,
            "connector_tokens": emitted}
    if getattr(tokens, "vision_load", None) is not None:
        info["vision_load"] = tuple(tokens.vision_load)
    return PromptInputs(embeds, torch.arange(ids.shape[1], device=dev), kinds, ids, frames=F_,
                        tower_tokens=adapter.tower_tokens, info=info)
