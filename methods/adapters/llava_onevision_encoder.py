"""Video encoder of LLaVA-OneVision / LLaVA-Video: tower -> projector -> pooling, plus saliency.

Features follow HF ``get_video_features``: tower hidden state ``vision_feature_layer`` -> projector
-> pooling (projection before pooling, docs/sources.md#llava-onevision-7b). :func:`encode_video` also returns the
saliency signals, pooled exactly like the features:

- ``vit_attn_received``: the attention each token receives in the tower layer that produced the
  features (heads and queries averaged), from q, k recomputed for that one layer (no eager tower).
- ``map_head_attn``: the SigLIP attention-pooling (MAP) head's probe attention (heads averaged),
  applied after ``post_layernorm``; ``global_features`` is the head's pooled output. The HF LLaVA-OV
  tower has no head (``vision_use_head=False``), so unless the tower has one a separate
  ``SiglipMultiheadAttentionPoolingHead`` is built from the vision config (:func:`build_map_head`):
  with random weights (and for a real checkpoint that lacks the head weights) this signal is
  random, not SigLIP's.
- ``keys``: head-averaged keys of the same layer (VisionZip's key metric), pooled.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as Fn

from methods.types import VideoTokens

DEFAULT_SIGNALS = ("vit_attn_received", "map_head_attn")


def pool_to_grid(x: torch.Tensor, tower_grid: tuple[int, int], grid: tuple[int, int],
                 pool: str) -> torch.Tensor:
    """(F, T, C) tower-grid tokens -> (F, N, C) pooled like the features (``bilinear`` to ``grid``
    as HF ``apply_pooling``, or 2x2 ``average``)."""
    F_, T, C = x.shape
    h, w = tower_grid
    g = x.reshape(F_, h, w, C).permute(0, 3, 1, 2).contiguous()
    if pool == "bilinear":
        g = Fn.interpolate(g, size=list(grid), mode="bilinear")
    else:
        g = Fn.avg_pool2d(g, kernel_size=2, stride=2)
    return g.permute(0, 2, 3, 1).reshape(F_, -1, C)


def feature_layer_index(config, tower) -> int:
    """Index into the tower's hidden states (0 = embeddings) of ``vision_feature_layer``."""
    vfl = config.vision_feature_layer
    if not isinstance(vfl, int):
        raise ValueError(f"only a single vision_feature_layer is supported, got {vfl!r}")
    n = len(tower.encoder.layers)
    return vfl if vfl >= 0 else n + 1 + vfl


def build_map_head(vision_config, seed: int, device, dtype):
    """A SigLIP MAP head with weights drawn from ``seed`` without touching the global RNG stream."""
    from transformers.models.siglip.modeling_siglip import SiglipMultiheadAttentionPoolingHead

    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    head = SiglipMultiheadAttentionPoolingHead(vision_config)
    torch.random.set_rng_state(gen_state)
    return head.to(device=device, dtype=dtype).eval()


def _check_pixels(pixel_values: torch.Tensor) -> torch.Tensor:
    if pixel_values.dim() == 5:
        if pixel_values.shape[0] != 1:
            raise ValueError(f"batch size 1 only: got a batch of {pixel_values.shape[0]} videos")
        pixel_values = pixel_values[0]
    if pixel_values.dim() != 4:
        raise ValueError(f"pixel_values must be (F, 3, H, W), got {tuple(pixel_values.shape)}")
    return pixel_values


def vit_attention_signals(adapter, hidden_states, li: int, drop_first: bool, received: bool,
                          keys: bool, frame_chunk: int):
    """(pooled attention received (F, N) or None, pooled head-averaged keys (F, N, hd) or None)
    of tower layer ``li - 1``, recomputed from its q and k in chunks of ``frame_chunk`` frames."""
    layer = adapter.model.model.vision_tower.encoder.layers[li - 1]
    attn = layer.self_attn
    F_ = hidden_states[li - 1].shape[0]
    got_received, got_keys = [], []
    for s in range(0, F_, frame_chunk):
        x = layer.layer_norm1(hidden_states[li - 1][s:s + frame_chunk])
        B, T, _ = x.shape
        q = attn.q_proj(x).view(B, T, attn.num_heads, attn.head_dim).transpose(1, 2).float()
        k = attn.k_proj(x).view(B, T, attn.num_heads, attn.head_dim).transpose(1, 2).float()
        if received:
            a = torch.softmax((q @ k.transpose(-1, -2)) * attn.scale, dim=-1)  # (B, H, T, T)
            got_received.append(a.mean(dim=(1, 2)))                              # (B, T)
        got_keys.append(k.mean(dim=1))                                             # (B, T, hd)
    pooled_received = pooled_keys = None
    if received:
        r = torch.cat(got_received)
        r = r[:, 1:] if drop_first else r
        pooled_received = adapter.pool_like_features(r[..., None])[..., 0].float()
    if keys:
        kk = torch.cat(got_keys)
        kk = kk[:, 1:] if drop_first else kk
        pooled_keys = adapter.pool_like_features(kk).float()
    return pooled_received, pooled_keys


def map_head_signals(adapter, feat: torch.Tensor):
    """(pooled MAP-head probe attention (F, N), per-frame pooled output (F, D)) of tower features."""
    tower = adapter.model.model.vision_tower
    head = adapter.map_head()
    x = tower.post_layernorm(feat)
    probe = head.probe.repeat(feat.shape[0], 1, 1)
    pooled, w = head.attention(probe, x, x, need_weights=True, average_attn_weights=True)
    pooled = pooled + head.mlp(head.layernorm(pooled))
    return adapter.pool_like_features(w[:, 0, :, None].float())[..., 0], pooled[:, 0].float()


@torch.no_grad()
def encode_video(adapter, pixel_values: torch.Tensor, timestamps=None,
                 signals: Sequence[str] = DEFAULT_SIGNALS, keys: bool = True,
                 frame_chunk: int = 8) -> VideoTokens:
    """(F, 3, S, S) normalised frames -> VideoTokens of the plain tower (no in-ViT method)."""
    pixel_values = _check_pixels(pixel_values)
    mm = adapter.model.model
    pixel_values = pixel_values.to(device=adapter.device, dtype=adapter.dtype)
    hs = mm.vision_tower(pixel_values, output_hidden_states=True, return_dict=True).hidden_states
    li = adapter.feature_layer_index()
    feat = hs[li]
    drop_first = adapter.config.vision_feature_select_strategy == "default"
    if drop_first:
        feat = feat[:, 1:]
    features = adapter.pool_like_features(mm.multi_modal_projector(feat))
    saliency: dict[str, torch.Tensor] = {}
    pooled_keys: Optional[torch.Tensor] = None
    if li >= 1 and ("vit_attn_received" in signals or keys):
        received, pooled_keys = vit_attention_signals(adapter, hs, li, drop_first,
                                                      "vit_attn_received" in signals, keys, frame_chunk)
        if received is not None:
            saliency["vit_attn_received"] = received
    global_features = None
    if "map_head_attn" in signals:
        saliency["map_head_attn"], global_features = map_head_signals(adapter, feat)
    ts = None if timestamps is None else torch.as_tensor(timestamps, dtype=torch.float32)
    return VideoTokens(features=features, grid=adapter.grid, timestamps=ts, saliency=saliency,
                       global_features=global_features, keys=pooled_keys,
                       newline_policy=adapter.newline_policy)
