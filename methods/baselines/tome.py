"""ToMe (Bolya et al., ICLR 2023) in the ViT of LLaVA-OneVision (SigLIP) and Molmo2: the "tome" Method.

Algorithm: ``methods.primitives.token_merging`` (bipartite soft matching on the attention keys
averaged over heads, size-weighted merge, proportional attention), read from the official
facebookresearch/ToMe (``tome/patch/timm.py``: merge between attention and MLP of every block;
``tome/merge.py``). docs/sources.md#tome: STTS compares with a *trained* ToMe at 50 % (claim
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

Molmo2 (HF ``modeling_molmo2.py``; choices made here, stated in the README): the connector reads
several ViT blocks (``adapter_config.vision_feature_layer``, e.g. 24 and 18) and pools 3x3 windows
by attention (query = window mean, keys = the window's patches). Merging runs over every block up
to the deepest connector block, down to ``T = round(retention * 81 pooled)`` tokens per frame.
A shallower connector block's output is carried through the later merges with the same matching
and size weights, so each merged token has one feature per connector block (the size-weighted mean
of what it absorbed at that block). Merged tokens have no 3x3 window, so each is its own one-patch
window: the attention pooling reduces to a per-token map through the connector's weights, and the
LLM gets ``T`` tokens per frame (``T`` ``<im_patch>`` placeholders), in raster order of their anchor
patches. ``r=0`` runs the vanilla tower and 3x3 pooling.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

import torch

from costmodel.nominal import round_half_up
from costmodel.schedule import VisionLoad
from methods.adapters import llava_onevision_encoder, molmo2_tower  # the families' tower helpers
from methods.adapters.vision_prune import tower_layers_run
from methods.base import Method, NominalTokens
from methods.primitives.token_merging import (bipartite_soft_matching, merge_wavg, proportional_bias, r_schedule,
                                              retention_r_schedule, tokens_per_block)
from methods.types import NotApplicable, TowerHost, VideoTokens, check_retention

__all__ = ["ToMeConfig", "ToMe", "MergedVideoTokens", "run_tome_blocks", "run_tome_tower", "tome_block",
           "DEFAULT_RETENTION"]

#: ToMe at 50 %, the operating point of STTS's comparison (docs/sources.md#stts-claims, S6)
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


def _attention(attn, x: torch.Tensor, size: Optional[torch.Tensor], prop_attn: bool):
    """Self-attention of an HF SigLIP (``out_proj``, ``scale``) or Molmo2 (``o_proj``, ``scaling``,
    possibly fewer key/value heads) vision attention module, with ToMe's ``log(size)`` key bias.
    -> (output (B, T, D), keys (B, kv_heads, T, head_dim))."""
    B, T, _ = x.shape
    hd = attn.head_dim
    q, k, v = (p(x).view(B, T, -1, hd).transpose(1, 2) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
    groups = q.shape[1] // k.shape[1]
    kk, vv = (k, v) if groups == 1 else (k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1))
    scale = attn.scale if hasattr(attn, "scale") else attn.scaling
    out_proj = attn.out_proj if hasattr(attn, "out_proj") else attn.o_proj
    bias = proportional_bias(size).to(q.dtype) if prop_attn and size is not None else None
    o = torch.nn.functional.scaled_dot_product_attention(q, kk, vv, attn_mask=bias, scale=scale)
    return out_proj(o.transpose(1, 2).reshape(B, T, -1)), k


def tome_block(layer, h: torch.Tensor, size: Optional[torch.Tensor], r: int, prop_attn: bool = True):
    """One SigLIP or Molmo2 encoder layer with ToMe between attention and MLP: -> (h, size, Matching)."""
    out, k = _attention(layer.self_attn, layer.layer_norm1(h), size, prop_attn)
    h = h + out
    matching = bipartite_soft_matching(k.mean(1), r)          # metric: keys averaged over heads
    h, size = merge_wavg(h, matching, size)
    h = h + layer.mlp(layer.layer_norm2(h))
    return h, size, matching


def run_tome_blocks(blocks, h: torch.Tensor, schedule, collect, prop_attn: bool = True):
    """The first ``len(schedule)`` ViT ``blocks`` over embedded frames ``h`` (F, N, D), merging
    ``schedule[l]`` tokens per frame in block l. ``collect``: the blocks whose outputs are returned.
    An output collected before a later merge goes through that merge too (size-weighted average with
    the sizes entering the merging block), so every collected block describes the same final tokens:
    a merged token's block-l feature is the size-weighted mean of the block-l features of what it
    absorbed. -> ({block: (F, T, D)}, sizes (F, T), anchors (F, T), VisionLoad per block)."""
    if not 1 <= len(schedule) <= len(blocks):
        raise ValueError(f"the schedule has {len(schedule)} blocks; the tower has {len(blocks)}")
    bad = sorted(l for l in collect if not 0 <= l < len(schedule))
    if bad:
        raise ValueError(f"collected block(s) {bad} are not run (allowed: 0..{len(schedule) - 1})")
    F_, N, _ = h.shape
    anchors = torch.arange(N, device=h.device).expand(F_, N)
    size, loads, feats = None, [], {}
    for l, (layer, r) in enumerate(zip(blocks, schedule)):
        loads.append(VisionLoad(F_, int(h.shape[1])))
        if size is None and r == 0:
            h = layer(h, None)                                     # nothing merged yet: HF's own block
        else:
            before = size
            h, size, matching = tome_block(layer, h, size, int(r), prop_attn)
            anchors = anchors[matching.keep].view(F_, -1)
            feats = {b: merge_wavg(f, matching, before)[0] for b, f in feats.items()}
        if l in collect:
            feats[l] = h
    if size is None:
        size = torch.ones((F_, N), dtype=torch.float32, device=h.device)
    return feats, size, anchors, tuple(loads)


def run_tome_tower(tower, pixel_values: torch.Tensor, schedule, prop_attn: bool = True):
    """The first ``len(schedule)`` layers of an HF SigLIP tower over frames (F, 3, S, S), merging
    ``schedule[l]`` tokens per frame in block l. -> (hidden (F, T, D), sizes, anchors, VisionLoads)."""
    if pixel_values.dim() != 4:
        raise ValueError(f"pixel_values must be (F, 3, H, W), got {tuple(pixel_values.shape)}")
    h = tower.embeddings(pixel_values.to(tower.embeddings.patch_embedding.weight.dtype))
    last = len(schedule) - 1
    feats, size, anchors, loads = run_tome_blocks(tower.encoder.layers, h, schedule, [last], prop_attn)
    return feats[last], size, anchors, loads


def _merged_tokens(features, timestamps, newline_policy, sizes, anchors, loads, sched) -> MergedVideoTokens:
    T = features.shape[1]
    ts = None if timestamps is None else torch.as_tensor(timestamps, dtype=torch.float32)
    return MergedVideoTokens(features=features, grid=(1, T), timestamps=ts, newline_policy=newline_policy,
                             sizes=sizes, anchors=anchors, vision_load=loads,
                             info={"tokens_per_frame": T, "r_schedule": list(sched)})


def _siglip_tower(adapter):
    """The adapter's HF SigLIP tower; a clear error on adapters whose tower this method cannot run."""
    tower = getattr(getattr(getattr(adapter, "model", None), "model", None), "vision_tower", None)
    if tower is None or not hasattr(tower, "encoder") or not hasattr(tower, "embeddings"):
        raise ValueError(f"tome needs an adapter with an HF SigLIP vision tower (LLaVA-OneVision) or a Molmo2 "
                         f"adapter, got {type(adapter).__name__}")
    return tower


class ToMe(Method):
    name = "tome"
    description = ("ToMe (token merging) in the ViT, training-free: every ViT block merges r tokens per "
                   "frame by bipartite soft matching on head-averaged keys (size-weighted average, "
                   "proportional attention); merging replaces the spatial pooling (LLaVA-OV's 2x2, "
                   "Molmo2's 3x3 windows) and the LLM gets round(retention x pooled) merged tokens per frame")
    Config = ToMeConfig
    stages: ClassVar[tuple[str, ...]] = ("in_vit",)
    families = ("llava-onevision", "llava-video", "molmo2")  # SigLIP towers it merges inside
    needs = TowerHost
    retention_kind = "optional"  # DEFAULT_RETENTION, or r
    schedule_options = ("retention", "r", "start")

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
        if getattr(adapter, "family", None) == "molmo2":  # the connector reads several blocks: merged tokens carry them
            return self._encode_molmo2(adapter, pixel_values, timestamps)
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
        return _merged_tokens(features, timestamps, adapter.newline_policy, sizes, anchors, loads, sched)

    def _encode_molmo2(self, adapter, pixel_values: torch.Tensor, timestamps=None) -> VideoTokens:
        """Molmo2: merge over the blocks up to the deepest connector block, carry the shallower
        connector blocks' features through the later merges (``run_tome_blocks``), and give every
        merged token its own one-patch pooling window in the connector (``connect_tokens``)."""
        sched = self.block_schedule(adapter.tower_tokens, adapter.vision_layers_run, adapter.tokens_per_frame)
        if sum(sched) == 0:                       # nothing merges: the vanilla tower and 3x3 pooling
            return molmo2_tower.encode_plain(adapter, pixel_values, timestamps)
        h = molmo2_tower.embed(adapter, adapter.patchify(pixel_values))
        feats, sizes, anchors, loads = run_tome_blocks(adapter.tower.layers, h, sched, adapter.feature_blocks,
                                                       self.config.prop_attn)
        features = molmo2_tower.connect_tokens(adapter, feats)
        return _merged_tokens(features, timestamps, adapter.newline_policy, sizes, anchors, loads, sched)

    def nominal_tokens(self, arch, frames: int, budget: str = "global") -> NominalTokens:
        """ViT blocks see the tokens entering them (the MLP after a merge sees r fewer: an upper
        bound); the LLM sees frames x T. ``costmodel.nominal.projector_tokens`` counts LLaVA's
        projector on every patch, as its adapter records (although it runs on the T merged tokens),
        and Molmo2's connector on the frames x T tokens it emits (its pooling attention costed with
        3x3 windows, an upper bound for the one-token windows). ``budget`` does not apply (T is per
        frame)."""
        sched = self.block_schedule(arch.vision.patches_per_frame, arch.vision.layers, arch.tokens_per_frame)
        if sum(sched) == 0:
            full = frames * arch.tokens_per_frame
            return NominalTokens((full,) * arch.llm.layers, full)
        counts = tokens_per_block(arch.vision.patches_per_frame, sched)
        kept = frames * counts[-1]
        return NominalTokens((kept,) * arch.llm.layers, kept,
                             vision=tuple(VisionLoad(frames, n) for n in counts[:-1]),
                             notes=(f"tome r per block {list(sched)}",))
