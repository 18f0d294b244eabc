"""ToMe (Bolya et al., ICLR 2023) in the SigLIP tower of LLaVA-OneVision: the "tome" Method.

Algorithm: ``methods.primitives.token_merging`` (bipartite soft matching on the attention keys
averaged over heads, size-weighted merge, proportional attention), read from the official
facebookresearch/ToMe (``tome/patch/timm.py``: merge between attention and MLP of every block;
``tome/merge.py``). papers.md §4: STTS compares with a *trained* ToMe at 50 % (claim
``stts-vs-tome-50``); what runs here is ToMe training-free on the model's own weights, with
proportional attention on (the official advice for off-the-shelf models).

How the tower runs: the HF modules (embeddings, each encoder layer's norms, q/k/v/out projections
and MLP) are called in our own loop, never patched. Blocks before the first merge are HF's own
layer calls; from the first merging block on, a block is layer_norm1 -> attention (with the
``log(size)`` key bias once tokens have merged) -> residual -> merge ``r`` tokens -> layer_norm2
-> MLP -> residual. Every frame is its own sequence (SigLIP encodes images), so merging is per
frame and every frame keeps the same number of tokens.

LLM side (a choice made here, stated in the README): merged tokens have no grid position, so
LLaVA-OV's spatial pooling (bilinear 27x27 -> 14x14), which needs the grid, cannot run on them.
ToMe's merging takes the pooling's place: the tower merges each frame's ``N`` patches down to
exactly ``T`` tokens, the (token-wise) projector maps them, and the LLM receives ``T`` tokens per
frame in raster order of the patch each one sits at (its B token). ``retention`` is relative to
the vanilla LLM visual tokens: ``T = round(retention * pooled tokens per frame)`` (50 % of 196 =
98 from 729 patches over 26 blocks, r ~ 24 per block); ``r`` instead merges a constant ``r`` per
block (ToMe's own parameter) and ``T`` is what remains. A schedule that merges nothing (``r=0``)
runs the vanilla tower and pooling, identical to no method.

Molmo2 is not supported: its tower path lives in ``methods/adapters/molmo2.py`` (which this method
does not edit); on a Molmo2 adapter ``encode_in_vit`` raises naming this.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

import torch

from costmodel.nominal import round_half_up
from costmodel.schedule import VisionLoad
from methods.adapters import llava_onevision_encoder
from methods.adapters.vision_prune import tower_layers_run
from methods.base import Method, NominalTokens
from methods.primitives.token_merging import (bipartite_soft_matching, merge_wavg, proportional_bias, r_schedule,
                                              retention_r_schedule, tokens_per_block)
from methods.types import NotApplicable, VideoTokens, check_retention

__all__ = ["ToMeConfig", "ToMe", "MergedVideoTokens", "run_tome_tower", "tome_block", "DEFAULT_RETENTION"]

#: ToMe at 50 %, the operating point of STTS's comparison (papers.md §2 S6)
DEFAULT_RETENTION = 0.5


@dataclass(frozen=True)
class ToMeConfig:
    """``retention``: LLM visual tokens kept, relative to the vanilla pooled tokens per frame (the
    tower merges down to round(retention * pooled)); ``r``: instead, a constant number merged per
    block (each capped at half of the block's tokens). Give at most one; neither = retention 0.5.
    ``start``: first merging block. ``prop_attn``: proportional attention (log size on the keys)."""

    retention: Optional[float] = None
    r: Optional[int] = None
    start: int = 0
    prop_attn: bool = True

    def __post_init__(self) -> None:
        if self.retention is not None and self.r is not None:
            raise ValueError(f"tome: give either retention or r, not both (got retention={self.retention!r}, "
                             f"r={self.r!r})")
        if self.retention is not None:
            check_retention(self.retention)
        if self.r is not None and (isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 0):
            raise ValueError(f"tome r (tokens merged per block) must be an int >= 0, got {self.r!r}")
        if isinstance(self.start, bool) or not isinstance(self.start, int) or self.start < 0:
            raise ValueError(f"tome start (first merging block) must be an int >= 0, got {self.start!r}")
        if not isinstance(self.prop_attn, bool):
            raise ValueError(f"tome prop_attn must be a bool, got {self.prop_attn!r}")


@dataclass
class MergedVideoTokens(VideoTokens):
    """VideoTokens of the merged tower: ``features`` (F, T, D) with grid (1, T); ``sizes`` (F, T)
    patches behind each token; ``anchors`` (F, T) the patch index each token sits at."""

    sizes: Optional[torch.Tensor] = None
    anchors: Optional[torch.Tensor] = None
    vision_load: Optional[tuple[VisionLoad, ...]] = None
    info: dict = field(default_factory=dict)


def tome_block(layer, h: torch.Tensor, size: Optional[torch.Tensor], r: int, prop_attn: bool = True):
    """One SigLIP encoder layer with ToMe between attention and MLP: -> (h, size, keep (B, T))."""
    attn = layer.self_attn
    x = layer.layer_norm1(h)
    B, T, D = x.shape

    def heads(t):
        return t.view(B, T, attn.num_heads, attn.head_dim).transpose(1, 2)

    q, k, v = heads(attn.q_proj(x)), heads(attn.k_proj(x)), heads(attn.v_proj(x))
    bias = proportional_bias(size).to(q.dtype) if prop_attn and size is not None else None
    o = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=attn.scale)
    h = h + attn.out_proj(o.transpose(1, 2).reshape(B, T, D))
    matching = bipartite_soft_matching(k.mean(1), r)          # metric: keys averaged over heads
    h, size = merge_wavg(h, matching, size)
    h = h + layer.mlp(layer.layer_norm2(h))
    return h, size, matching.keep


def run_tome_tower(tower, pixel_values: torch.Tensor, schedule, prop_attn: bool = True):
    """The first ``len(schedule)`` layers of an HF SigLIP tower over frames (F, 3, S, S), merging
    ``schedule[l]`` tokens per frame in block l. -> (hidden (F, T, D), sizes, anchors, VisionLoads)."""
    if pixel_values.dim() != 4:
        raise ValueError(f"pixel_values must be (F, 3, H, W), got {tuple(pixel_values.shape)}")
    if not 1 <= len(schedule) <= len(tower.encoder.layers):
        raise ValueError(f"the schedule has {len(schedule)} blocks; the tower has {len(tower.encoder.layers)}")
    h = tower.embeddings(pixel_values.to(tower.embeddings.patch_embedding.weight.dtype))
    F_, N, _ = h.shape
    anchors = torch.arange(N, device=h.device).expand(F_, N)
    size, loads = None, []
    for layer, r in zip(tower.encoder.layers, schedule):
        loads.append(VisionLoad(F_, int(h.shape[1])))
        if size is None and r == 0:
            h = layer(h, None)                                     # nothing merged yet: HF's own block
            continue
        h, size, keep = tome_block(layer, h, size, int(r), prop_attn)
        anchors = anchors[keep].view(F_, -1)
    if size is None:
        size = torch.ones((F_, N), dtype=torch.float32, device=h.device)
    return h, size, anchors, tuple(loads)


class ToMe(Method):
    name = "tome"
    description = ("ToMe (token merging) in the ViT, training-free: every SigLIP block merges r tokens per "
                   "frame by bipartite soft matching on head-averaged keys (size-weighted average, "
                   "proportional attention); merging replaces LLaVA-OV's spatial pooling and the LLM "
                   "gets round(retention x pooled) merged tokens per frame (LLaVA-OV only; not Molmo2)")
    Config = ToMeConfig
    stages: ClassVar[tuple[str, ...]] = ("in_vit",)

    def block_schedule(self, patches: int, blocks: int, pooled: int) -> tuple[int, ...]:
        """Per-block r for a tower of ``blocks`` blocks over ``patches`` patches per frame."""
        c = self.config
        if c.start >= blocks:
            raise ValueError(f"tome start={c.start} but the tower runs {blocks} blocks (allowed: 0..{blocks - 1})")
        if c.r is not None:
            return r_schedule(patches, blocks, c.r, c.start)
        retention = DEFAULT_RETENTION if c.retention is None else c.retention
        target = min(patches, max(1, round_half_up(retention * pooled)))
        fewest = tokens_per_block(patches, r_schedule(patches, blocks, patches, c.start))[-1]
        if target < fewest:  # ToMe's own cap: a block merges at most half of its tokens
            raise NotApplicable(f"tome cannot reach {target} tokens per frame (retention {retention:g} of {pooled} "
                                f"pooled): merging at most half of the tokens per block, blocks {c.start}.."
                                f"{blocks - 1} keep at least {fewest} of {patches} patches")
        return retention_r_schedule(patches, target, blocks, c.start)

    def encode_in_vit(self, adapter, pixel_values: torch.Tensor, timestamps=None) -> VideoTokens:
        """Adapter hook: the merging tower forward for one video (F, 3, S, S)."""
        tower = _siglip_tower(adapter)
        layers = tower_layers_run(adapter)
        patches = adapter.tower_tokens
        sched = self.block_schedule(patches, layers, adapter.grid[0] * adapter.grid[1])
        if sum(sched) == 0:                       # nothing merges: the vanilla tower and pooling
            return llava_onevision_encoder.encode_video(adapter, pixel_values, timestamps)
        if adapter.config.vision_feature_select_strategy != "full":
            raise ValueError(f"tome needs vision_feature_select_strategy 'full' (no token is dropped after the "
                             f"tower), got {adapter.config.vision_feature_select_strategy!r}")
        px = pixel_values.to(device=adapter.device, dtype=adapter.dtype)
        hidden, sizes, anchors, loads = run_tome_tower(tower, px, sched, self.config.prop_attn)
        features = adapter.model.model.multi_modal_projector(hidden)
        T = features.shape[1]
        ts = None if timestamps is None else torch.as_tensor(timestamps, dtype=torch.float32)
        return MergedVideoTokens(features=features, grid=(1, T), timestamps=ts,
                                 newline_policy=adapter.newline_policy, sizes=sizes, anchors=anchors,
                                 vision_load=loads, info={"tokens_per_frame": T, "r_schedule": list(sched)})

    def nominal_tokens(self, arch, frames: int, budget: str = "global") -> NominalTokens:
        """ViT blocks see the tokens entering them (the MLP after a merge sees r fewer: an upper
        bound); the LLM sees frames x T. The projector is counted on every patch, as the adapter's
        recorded schedule does, although it runs on the T merged tokens. ``budget`` does not apply
        (T is per frame)."""
        sched = self.block_schedule(arch.vision.patches_per_frame, arch.vision.layers, arch.tokens_per_frame)
        if sum(sched) == 0:
            full = frames * arch.tokens_per_frame
            return NominalTokens((full,) * arch.llm.layers, full)
        counts = tokens_per_block(arch.vision.patches_per_frame, sched)
        kept = frames * counts[-1]
        return NominalTokens((kept,) * arch.llm.layers, kept,
                             vision=tuple(VisionLoad(frames, n) for n in counts[:-1]),
                             notes=(f"tome r per block {list(sched)}",))


def _siglip_tower(adapter):
    """The adapter's HF SigLIP tower; a clear error on adapters whose tower this method cannot run."""
    if hasattr(adapter, "encode_video_pruned"):
        raise ValueError("tome runs in the SigLIP tower of LLaVA-OneVision only; Molmo2's tower path "
                         "(methods/adapters/molmo2.py) has no ToMe support")
    tower = getattr(getattr(getattr(adapter, "model", None), "model", None), "vision_tower", None)
    if tower is None or not hasattr(tower, "encoder") or not hasattr(tower, "embeddings"):
        raise ValueError(f"tome needs an adapter with an HF SigLIP vision tower (LLaVA-OneVision), got "
                         f"{type(adapter).__name__}")
    return tower
