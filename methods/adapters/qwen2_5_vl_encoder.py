"""Video encoder of Qwen2.5-VL: patchify -> vision tower (window + full attention) -> 2x2 merger,
plus the saliency signals, all in the merged tokens' raster order (frame group, row, column).

Frames are grouped in pairs by the tower's Conv3d temporal patch (``temporal_patch_size`` 2): the
video's "frames" for the methods are these temporal groups (``F // 2``; an odd frame count is padded
by repeating the last frame, as HF's ``Qwen2VLVideoProcessor.patchify`` does). Inside the tower the
patches sit in *window order* (the tower permutes whole 2x2 merge groups into windows,
``get_vision_window_index``); the merger's output is put back in raster order with the reverse
index, and so is every signal here.

Signals, recomputed from the q/k of one block (the HF modules are only called, never patched):

- ``vit_global_query_attn`` (Tango's Qwen2.5-VL saliency). Source: xjtupanda/Tango
  ``VLMEvalKit/vlmeval/vlm/qwen2_vl/prune_algo/tango/qwen2_5vl_tango.py`` (commit 610c264),
  ``Qwen2_5_VLVisionFlashAttention2.forward`` with ``return_attn_weights`` (called for the tower's
  last block, which in the 7B is its last full-attention block 31 = ``fullatt_block_indexes[-1]``):
  q and k after the vision RoPE; per temporal group a global query = the mean of the group's
  queries; the keys are *averaged* over each 2x2 merge group (4 consecutive tokens in window
  order) before the product; logits / sqrt(head_dim), softmax over the group's merged tokens
  (fp32), then the mean over heads; finally ``[reverse_indices]`` puts it in raster order. Here
  everything after the projections runs in fp32 (the official code averages q / k and the
  weights in the model dtype, bf16 there).
- ``vit_attn_received``: the attention each patch receives at the same block (full attention within
  its temporal group; heads and queries averaged), averaged over each 2x2 merge group.
- ``keys``: that block's head-averaged keys (before RoPE, i.e. content only), averaged over each
  2x2 merge group (VisionZip's key metric).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from methods.types import VideoTokens

DEFAULT_SIGNALS = ("vit_global_query_attn", "vit_attn_received")


def check_pixels(pixel_values: torch.Tensor) -> torch.Tensor:
    if pixel_values.dim() == 5:
        if pixel_values.shape[0] != 1:
            raise ValueError(f"batch size 1 only: got a batch of {pixel_values.shape[0]} videos")
        pixel_values = pixel_values[0]
    if pixel_values.dim() != 4 or pixel_values.shape[1] != 3:
        raise ValueError(f"pixel_values must be (F, 3, H, W), got {tuple(pixel_values.shape)}")
    return pixel_values


def patchify(frames: torch.Tensor, patch: int, merge: int, temporal: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(F, 3, H, W) -> (flat patches (T*h*w, 3*temporal*patch*patch), grid_thw (1, 3)) in HF's
    layout: temporal groups, then 2x2 merge blocks in raster order, then the patches of a block;
    each patch flattened channel, time, row, column."""
    F_, C, H, W = frames.shape
    unit = patch * merge
    if H % unit or W % unit:
        raise ValueError(f"frame size {H}x{W} must be a multiple of patch_size * spatial_merge_size = {unit}")
    if pad := -F_ % temporal:
        frames = torch.cat([frames, frames[-1:].expand(pad, -1, -1, -1)])
    T, gh, gw = frames.shape[0] // temporal, H // patch, W // patch
    x = frames.reshape(T, temporal, C, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(T * gh * gw, C * temporal * patch * patch)
    return x, torch.tensor([[T, gh, gw]], device=frames.device)


def group_timestamps(timestamps, frames: int, groups: int) -> Optional[torch.Tensor]:
    """One time per temporal group: the frame times interpolated at ``linspace(0, F-1, groups)``
    (Tango's ``final_timestamps`` in ``vlmeval/vlm/qwen2_vl/model.py``)."""
    if timestamps is None:
        return None
    ts = torch.as_tensor(timestamps, dtype=torch.float64).flatten()
    if ts.numel() != frames:
        raise ValueError(f"timestamps must have one time per frame ({frames}), got {ts.numel()}")
    at = torch.linspace(0, frames - 1, groups, dtype=torch.float64)
    lo = at.floor().long().clamp(max=frames - 1)
    hi = (lo + 1).clamp(max=frames - 1)
    return (ts[lo] + (ts[hi] - ts[lo]) * (at - lo)).float()


def _block_qk(tower, block_input: torch.Tensor, block: int, grid: torch.Tensor, window_index: torch.Tensor):
    """(q, k after RoPE, k before RoPE) of tower block ``block``, each (heads, S, hd) fp32, tokens in
    window order."""
    from transformers.vision_utils import get_vision_position_ids

    blk = tower.blocks[block]
    S = block_input.shape[0]
    heads = blk.attn.num_heads
    qkv = blk.attn.qkv(blk.norm1(block_input)).reshape(S, 3, heads, -1).permute(1, 2, 0, 3).float()
    q, k = qkv[0], qkv[1]
    pos = get_vision_position_ids(grid, tower.spatial_merge_size)
    cos, sin = tower.rotary_pos_emb(block_input, pos)
    cos = tower.permute_input_for_window_attn(cos, window_index, S).float()[None]
    sin = tower.permute_input_for_window_attn(sin, window_index, S).float()[None]
    half = q.shape[-1] // 2
    rot = lambda x: torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return q * cos + rot(q) * sin, k * cos + rot(k) * sin, k


def global_query_attention(q: torch.Tensor, k: torch.Tensor, groups: int, unit: int) -> torch.Tensor:
    """Tango's Qwen2.5-VL saliency in window order, (groups, merged tokens per group): the softmax
    of each group's mean query against its unit-averaged keys, heads averaged."""
    H, S, hd = q.shape
    qg = q.reshape(H, groups, S // groups, hd).mean(2, keepdim=True)             # (H, T, 1, hd)
    kg = k.reshape(H, groups, S // groups // unit, unit, hd).mean(3)               # (H, T, n, hd)
    a = torch.softmax((qg @ kg.transpose(-1, -2)) / hd ** 0.5, dim=-1, dtype=torch.float32)
    return a.mean(2).mean(0)


def received_attention(q: torch.Tensor, k: torch.Tensor, groups: int, unit: int, scale: float) -> torch.Tensor:
    """Attention each token receives under full attention within its temporal group (heads and
    queries averaged), averaged over each merge unit: (groups, merged tokens per group)."""
    H, S, hd = q.shape
    per = S // groups
    out = []
    for t in range(groups):  # one group at a time: an (H, per, per) matrix, not (H, S, S)
        sl = slice(t * per, (t + 1) * per)
        a = torch.softmax((q[:, sl] @ k[:, sl].transpose(-1, -2)) * scale, dim=-1)
        out.append(a.mean(dim=(0, 1)).reshape(per // unit, unit).mean(1))
    return torch.stack(out)


@torch.no_grad()
def encode_video(adapter, pixel_values: torch.Tensor, timestamps=None,
                 signals: Sequence[str] = DEFAULT_SIGNALS, keys: bool = True) -> VideoTokens:
    """(F, 3, S, S) normalised frames -> VideoTokens over the temporal groups (F/2 'frames')."""
    from transformers.vision_utils import get_vision_window_index

    pixel_values = check_pixels(pixel_values).to(device=adapter.device, dtype=adapter.dtype)
    tower = adapter.model.model.visual
    vc = adapter.vision_config
    patches, grid = patchify(pixel_values, vc.patch_size, vc.spatial_merge_size, vc.temporal_patch_size)
    out = tower(patches, grid_thw=grid, output_hidden_states=True)
    T, gh, gw = (int(v) for v in grid[0])
    h, w = gh // vc.spatial_merge_size, gw // vc.spatial_merge_size
    D = out.pooler_output.shape[-1]
    features = out.pooler_output.reshape(T, h * w, D)
    saliency: dict[str, torch.Tensor] = {}
    pooled_keys = None
    if signals or keys:
        unit = vc.spatial_merge_size ** 2
        window_index, _ = get_vision_window_index(grid, vc.spatial_merge_size, vc.window_size, vc.patch_size)
        reverse = torch.argsort(window_index).to(features.device)
        block = adapter.saliency_block
        q, k, k_raw = _block_qk(tower, out.hidden_states[block], block, grid, window_index)
        to_raster = lambda x: x.reshape(T * h * w, *x.shape[2:])[reverse].reshape(T, h * w, *x.shape[2:])
        if "vit_global_query_attn" in signals:
            saliency["vit_global_query_attn"] = to_raster(global_query_attention(q, k, T, unit))
        if "vit_attn_received" in signals:
            saliency["vit_attn_received"] = to_raster(received_attention(q, k, T, unit, tower.blocks[block].attn.scaling))
        if keys:
            km = k_raw.mean(0).reshape(T, h * w, unit, -1).mean(2)                 # (T, n, hd) window order
            pooled_keys = to_raster(km)
    ts = group_timestamps(timestamps, pixel_values.shape[0], T)
    return VideoTokens(features=features, grid=(h, w), timestamps=ts, saliency=saliency, keys=pooled_keys,
                       newline_policy="none")
