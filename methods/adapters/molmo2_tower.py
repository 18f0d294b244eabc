"""Molmo2's ViT and connector run for one video, with STTS's in-ViT pruning (docs/sources.md#stts).

The ViT blocks run in :func:`methods.adapters.vision_prune.run_blocks` (the same loop as the
LLaVA-OV SigLIP tower); what is Molmo2's own is the input (a Linear ``patch_embedding`` over
channels-last 14x14x3 patches plus a learned ``positional_embedding``, HF ``batch_pixels_to_patches``),
that the connector reads several blocks (``adapter_config.vision_feature_layer``, scattered back
to the (F, 729) layout), and the 3x3 attention pooling over ``arange_for_pooling`` windows, which
*are* the STTS groups: a pruned group's window is all -1, so its pooled token is not emitted.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import torch

from methods.stts import group_index
from methods.types import VideoTokens

from .vision_prune import PrunedVideoTokens, TowerRun, pruned_info, run_blocks


def check_grid(adapter) -> None:
    """STTS groups are the connector's windows: equal only when the grid divides by the window."""
    from transformers.models.molmo2.video_processing_molmo2 import arange_for_pooling

    h, w = adapter.tower_grid
    ph, pw = adapter.pooling
    if h % ph or w % pw:
        raise ValueError(f"tower grid {adapter.tower_grid} is not a multiple of the pooling window "
                         f"{adapter.pooling}; STTS groups would not match the connector's windows")
    hf, _, _ = arange_for_pooling(torch.arange(h * w).reshape(h, w), ph, pw)
    if not torch.equal(hf.long(), group_index((h, w), ph)):
        raise AssertionError("STTS group_index differs from the connector's arange_for_pooling")


def patchify(adapter, pixel_values: torch.Tensor) -> torch.Tensor:
    """(F, 3, S, S) -> (F, N, p*p*3) as HF ``batch_pixels_to_patches`` (channels last)."""
    from transformers.models.molmo2.video_processing_molmo2 import batch_pixels_to_patches

    s = adapter.image_size
    if pixel_values.dim() == 5:
        if pixel_values.shape[0] != 1:
            raise ValueError(f"batch size 1 only: got a batch of {pixel_values.shape[0]} videos")
        pixel_values = pixel_values[0]
    if pixel_values.dim() != 4 or pixel_values.shape[1] != 3 or pixel_values.shape[2] != s \
            or pixel_values.shape[3] != s:
        raise ValueError(f"pixel_values must be (F, 3, {s}, {s}), got {tuple(pixel_values.shape)}")
    return batch_pixels_to_patches(pixel_values.permute(0, 2, 3, 1), adapter.patch_size)


def pooling_index(adapter, frames: int) -> torch.Tensor:
    """(F * G, 9) flat patch index of every pooled token (HF ``video_token_pooling``)."""
    per = group_index(adapter.tower_grid, adapter.pooling[0])
    off = (torch.arange(frames) * adapter.tower_tokens)[:, None, None]
    return torch.where(per[None] >= 0, per[None] + off, per[None]).reshape(-1, per.shape[-1])


def embed(adapter, patches: torch.Tensor) -> torch.Tensor:
    """The ViT input: patch embedding plus the learned positional embedding."""
    t = adapter.tower
    h = t.patch_embedding(patches.to(device=adapter.device, dtype=t.patch_embedding.weight.dtype))
    return h + t.positional_embedding[None].to(h)


def run_tower(adapter, pixel_values: torch.Tensor, *, prune_at: Optional[int] = None, topk: float = 0.0,
              keep_groups: Optional[torch.Tensor] = None, **prune) -> TowerRun:
    """The ViT over one video's frames up to the deepest connector block.

    ``prune_at=None``, or ``topk=0`` with no ``keep_groups``: the plain per-frame forward. Otherwise
    the options of :func:`run_blocks` (``scorer``, ``rule``, ``rescale_min``, ``apply_bias``,
    ``keep_prune_hidden``, ``seed``). ``group_keep`` is all True when nothing was selected."""
    h = embed(adapter, patchify(adapter, pixel_values))
    plain = prune_at is None or (float(topk) == 0.0 and keep_groups is None)
    run = run_blocks(adapter.tower.layers, h, adapter.tower_grid, adapter.feature_blocks,
                     prune_at=None if plain else prune_at, topk=topk, keep_groups=keep_groups,
                     group=adapter.pooling[0], **({} if plain else prune))
    if run.group_keep is None:
        ones = torch.ones(h.shape[0], adapter.tokens_per_frame, dtype=torch.bool, device=h.device)
        run = dataclasses.replace(run, group_keep=ones)
    return run


def connect(adapter, run: TowerRun) -> torch.Tensor:
    """The HF connector on the (scattered-back) multi-layer features: (F, G, D_text) pooled tokens,
    zeros where the group was pruned (its window is all -1, so it is not emitted)."""
    cat = torch.cat([run.features[l] for l in adapter.feature_blocks], dim=-1)   # (F, N, n*D)
    F_ = cat.shape[0]
    idx = pooling_index(adapter, F_).to(cat.device)
    keep = run.group_keep.reshape(-1).to(cat.device)
    idx = torch.where(keep[:, None], idx, torch.full_like(idx, -1))
    emitted = adapter.connector(cat, idx).last_hidden_state                      # (kept, D_text)
    out = emitted.new_zeros(F_ * adapter.tokens_per_frame, emitted.shape[-1])
    out[keep] = emitted
    return out.view(F_, adapter.tokens_per_frame, -1)


def connect_tokens(adapter, features: dict) -> torch.Tensor:
    """The HF connector on merged tokens (ToMe): ``features`` {block: (F, T, D)} for every connector
    block. Merged tokens have no 3x3 window, so each is its own one-patch window: the pooling query
    (the window mean) is the token itself and it attends to its one key, so the attention pooling is
    a per-token map through the connector's own weights; -> (F, T, D_text), one LLM token each."""
    cat = torch.cat([features[l] for l in adapter.feature_blocks], dim=-1)        # (F, T, n*D)
    F_, T, _ = cat.shape
    idx = torch.arange(F_ * T, device=cat.device)[:, None]
    return adapter.connector(cat, idx).last_hidden_state.view(F_, T, -1)


def tokens_of(adapter, run: TowerRun, timestamps=None) -> PrunedVideoTokens:
    """The pooled tokens of a tower run (differentiable: training calls this with gradients)."""
    ts = None if timestamps is None else torch.as_tensor(timestamps, dtype=torch.float32)
    keep = run.group_keep
    return PrunedVideoTokens(features=connect(adapter, run), grid=adapter.grid, timestamps=ts,
                             newline_policy="none", keep=keep, vision_load=run.vision_load,
                             info=pruned_info(keep, run.packed))


@torch.no_grad()
def encode_plain(adapter, pixel_values: torch.Tensor, timestamps=None) -> VideoTokens:
    """(F, 3, S, S) frames -> every pooled token (no method in the ViT)."""
    feats = connect(adapter, run_tower(adapter, pixel_values))
    ts = None if timestamps is None else torch.as_tensor(timestamps, dtype=torch.float32)
    return VideoTokens(features=feats, grid=adapter.grid, timestamps=ts, newline_policy="none")


@torch.no_grad()
def encode_pruned(adapter, pixel_values: torch.Tensor, *, prune_at: int, topk: float, scorer=None,
                  rule: str = "scorer", rescale_min: float = math.exp(-2.0), seed: int = 0, timestamps=None,
                  keep_groups=None) -> PrunedVideoTokens:
    """STTS's in-ViT stage on Molmo2 (what the stts methods' ``encode_in_vit`` runs here)."""
    run = run_tower(adapter, pixel_values, prune_at=prune_at, topk=topk, scorer=scorer, rule=rule,
                    rescale_min=rescale_min, seed=seed, keep_groups=keep_groups)
    return tokens_of(adapter, run, timestamps)
