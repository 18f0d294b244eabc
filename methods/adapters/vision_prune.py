"""In-ViT token pruning on the HF LLaVA-OV SigLIP tower (STTS's mechanism, docs/sources.md#stts).

We run the tower's own modules (embeddings, encoder layers, projector) in our own loop so that a
pruning hook can sit between blocks; the HF module objects are never patched or modified:

- blocks ``0..prune_at`` run on every frame as usual;
- after block ``prune_at`` the STTS scorer scores every group of ``group x group`` patches
  (``methods.stts.TemporalTokenScorer``) and ``select_groups`` picks the video-global keep set;
- block ``prune_at + 1`` runs on every frame with the soft additive key bias log(rescaled score)
  (differentiable: the LM loss reaches the scorer through it);
- after block ``prune_at + 1`` the kept patches are hard-pruned and packed first-fit-decreasing
  into ``N``-slot bins (``rearrange_tokens``); later blocks run on the bins with a block-diagonal
  mask, so a token only attends to tokens of its own frame;
- the feature-layer output is scattered back to the (F, N) layout (zeros where not active), then
  projected and pooled like HF ``get_video_features``.

Pooled-token mapping (LLaVA-OV, decided here; Molmo2 uses 3x3 attention pooling instead): the
scorer groups are the 2 x 2 cells of the pooling stride on the tower grid padded to even size
(27x27 -> 28x28 -> 14 x 14 = 196 groups), so group (i, j) <-> pooled token (i, j) one to one and the
LLM receives exactly the kept groups (as STTS's ``valid_mask`` rule). The bilinear 27 -> 14
interpolation of HF ``apply_pooling`` does not align exactly with these cells (for i >= 7 pooled row
i reads tower rows 2i-1 and 2i, the group holds 2i and 2i+1), so a kept pooled token is computed by
*normalised* bilinear pooling over surviving patches only: pool(proj * keep) / pool(keep). A token
whose whole bilinear footprint survived gets exactly HF's value; the footprint of a kept token
always contains patch row/col 2i of its own group, so the denominator is > 0. On even grids (the
tiny 4x4 tower) and with average pooling the footprint equals the group and nothing is renormalised.
The setting must have pooled grid == group grid (true for bilinear ``ceil(h/2)``; false for the
llava-video setting on 27x27, where average pooling gives 13x13 but there are 14x14 groups).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch

from costmodel.schedule import VisionLoad
from methods.stts import (Packed, TemporalTokenScorer, attention_bias, groups_to_patch_mask,
                          rearrange_tokens, select_by_rule, select_groups, unpack)
from methods.types import VideoTokens

__all__ = ["TowerRun", "PrunedVideoTokens", "run_blocks", "run_tower", "tower_layers_run", "pool_kept",
           "encode_video_pruned", "check_pooling_groups", "check_prune_at", "pruned_info"]


@dataclass
class TowerRun:
    """One video through the (possibly pruned) tower, up to the feature layer.

    hidden       (F, N, D) feature-layer hidden states in the original layout; zeros at patches the
                 later blocks did not process (pruned and not refilled)
    patch_keep   (F, N) bool, the selection (what the LLM side uses; pre-refill)
    group_keep   (F, G) bool or None when no selection ran
    scores       (F, G) scorer output (with grad when the scorer has grad) or None
    bias         (F, N) additive key bias used in block prune_at+1, or None
    prune_hidden (F, N, D) hidden states after block prune_at (novelty targets), or None
    vision_load  VisionLoad of every layer run (bins x capacity after block prune_at+1)
    packed       the packing, when one ran
    features     {block: (F, N, D)} every collected block's output in the original layout
                 (``hidden`` is the deepest; Molmo2's connector reads several blocks)
    """

    hidden: torch.Tensor
    patch_keep: torch.Tensor
    group_keep: Optional[torch.Tensor]
    scores: Optional[torch.Tensor]
    bias: Optional[torch.Tensor]
    prune_hidden: Optional[torch.Tensor]
    vision_load: tuple[VisionLoad, ...]
    packed: Optional[Packed] = None
    features: dict = field(default_factory=dict)


@dataclass
class PrunedVideoTokens(VideoTokens):
    """VideoTokens from the pruned tower. ``features`` is the full (F, N, D) pooled grid (pruned
    tokens' rows are zero); ``keep`` (F, N) bool says which pooled tokens reach the LLM."""

    keep: Optional[torch.Tensor] = None
    vision_load: Optional[tuple[VisionLoad, ...]] = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.keep is None or tuple(self.keep.shape) != tuple(self.features.shape[:2]) \
                or self.keep.dtype != torch.bool:
            raise ValueError(f"PrunedVideoTokens.keep must be bool {tuple(self.features.shape[:2])}, got "
                             f"{None if self.keep is None else (self.keep.dtype, tuple(self.keep.shape))}")


def tower_layers_run(adapter) -> int:
    """Number of encoder layers needed for the adapter's feature layer."""
    li = adapter.feature_layer_index()
    if li < 1:
        raise ValueError(f"vision_feature_layer selects the embeddings (index {li}); in-ViT pruning needs "
                         f"at least one encoder layer")
    return li


def _additive(mask: torch.Tensor, dtype) -> torch.Tensor:
    """bool (B, C, C) True = may attend -> additive (B, 1, C, C) mask that eager and sdpa both accept."""
    out = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    out.masked_fill_(~mask, torch.finfo(dtype).min)
    return out[:, None]


def check_prune_at(prune_at, layers: int, rule: str) -> None:
    """``prune_at`` must leave the blocks its rule needs: the bias block prune_at+1 for the learned
    scorer, block prune_at itself for the non-learned rules (they pack right after it)."""
    last = layers - 2 if rule == "scorer" else layers - 1
    if isinstance(prune_at, bool) or not isinstance(prune_at, int) or not 0 <= prune_at <= last:
        what = "the bias block prune_at+1 must exist" if rule == "scorer" else "block prune_at must run"
        raise ValueError(f"prune_at must be an int in [0, {last}] for a tower running {layers} layers with "
                         f"rule {rule!r} ({what}), got {prune_at!r}")


def run_blocks(blocks, h: torch.Tensor, grid: tuple[int, int], collect, *, prune_at: Optional[int] = None,
               scorer: Optional[TemporalTokenScorer] = None, topk: float = 0.0, group: int = 2,
               rescale_min: float = math.exp(-2.0), keep_groups: Optional[torch.Tensor] = None,
               apply_bias: bool = True, keep_prune_hidden: bool = False, rule: str = "scorer",
               seed: int = 0) -> TowerRun:
    """Run the ViT ``blocks`` (each called as ``block(hidden, additive_mask)``, as SigLIP's and
    Molmo2's encoder layers are) over embedded frames ``h`` (F, N, D) on a ``grid`` of patches.

    ``prune_at=None``: plain per-frame forward. Otherwise the scorer (if given) scores after block
    ``prune_at``; the keep set is ``keep_groups`` if given, else ``select_groups(scores, topk)``;
    block ``prune_at+1`` gets the bias (if a scorer and ``apply_bias``); later blocks run packed.
    Keeping everything skips the packing (no saving). ``rule`` random / heuristic / easy (STTS's
    non-learned rules): the keep set comes from ``h`` (``select_by_rule``) and packing starts right
    after block prune_at. ``collect``: the blocks whose outputs are returned in ``features``,
    scattered back to the (F, N) layout; ``hidden`` is the deepest of them."""
    layers = max(collect) + 1
    if prune_at is not None:
        check_prune_at(prune_at, layers, rule)
        if scorer is None and keep_groups is None and rule == "scorer":
            raise ValueError("pruning needs a scorer or an explicit keep_groups mask")
        if rule != "scorer" and keep_groups is None:
            keep_groups = select_by_rule(h, grid, topk, rule, group=group, seed=seed)
    pack_at = None if prune_at is None else (prune_at + 1 if rule == "scorer" else prune_at)
    F_, N, _ = h.shape
    loads: list[VisionLoad] = []
    feats: dict[int, torch.Tensor] = {}
    scores = bias = prune_hidden = packed = packed_h = mask = None
    patch_keep = torch.ones(F_, N, dtype=torch.bool, device=h.device)
    for l in range(layers):
        if packed_h is not None:
            packed_h = blocks[l](packed_h, mask)
            loads.append(VisionLoad(packed.num_bins, packed.hidden.shape[1]))
            if l in collect:
                feats[l] = unpack(packed_h, packed)
            continue
        attn_mask = None
        if prune_at is not None and l == prune_at + 1 and bias is not None:
            attn_mask = bias.to(h.dtype)[:, None, None, :]        # key bias, over heads and queries
        h = blocks[l](h, attn_mask)
        loads.append(VisionLoad(F_, N))
        if l in collect:
            feats[l] = h
        if prune_at is None:
            continue
        if l == prune_at:
            if keep_prune_hidden:
                prune_hidden = h
            if scorer is not None:
                scores = scorer(h, grid)
                if apply_bias:
                    bias = attention_bias(scores, grid, rescale_min, group)
            if keep_groups is None:
                keep_groups = select_groups(scores, topk)
            patch_keep = groups_to_patch_mask(keep_groups.to(h.device), grid, group)
        if l == pack_at and not bool(patch_keep.all()):
            packed = rearrange_tokens(h, patch_keep)
            packed_h = packed.hidden
            mask = _additive(packed.attn_mask, h.dtype)
    return TowerRun(hidden=feats[layers - 1], patch_keep=patch_keep, group_keep=keep_groups, scores=scores,
                    bias=bias, prune_hidden=prune_hidden, vision_load=tuple(loads), packed=packed, features=feats)


def run_tower(tower, pixel_values: torch.Tensor, layers: int, *, group: int = 2, **prune) -> TowerRun:
    """Run ``layers`` encoder layers of an HF SigLIP tower over one video's frames (F, 3, S, S), with
    the pruning options of :func:`run_blocks` (``prune_at``, ``scorer``, ``topk``, ``keep_groups``, ...)."""
    if pixel_values.dim() != 4:
        raise ValueError(f"pixel_values must be (F, 3, H, W), got {tuple(pixel_values.shape)}")
    n_layers = len(tower.encoder.layers)
    if not 1 <= layers <= n_layers:
        raise ValueError(f"layers must be in [1, {n_layers}], got {layers}")
    cfg = tower.config
    side = cfg.image_size // cfg.patch_size
    h = tower.embeddings(pixel_values.to(tower.embeddings.patch_embedding.weight.dtype))
    return run_blocks(tower.encoder.layers, h, (side, side), [layers - 1], group=group, **prune)


def check_pooling_groups(adapter, group: int) -> tuple[int, int]:
    """The group grid, checked to coincide with the adapter's pooled grid (one group per pooled token)."""
    if adapter.config.vision_feature_select_strategy != "full":
        raise ValueError(f"in-ViT pruning needs vision_feature_select_strategy 'full', got "
                         f"{adapter.config.vision_feature_select_strategy!r}")
    h, w = adapter.tower_grid
    ggrid = (-(-h // group), -(-w // group))
    if ggrid != tuple(adapter.grid):
        raise ValueError(f"group={group} gives a {ggrid} group grid on the {adapter.tower_grid} tower grid but "
                         f"setting {adapter.setting!r} pools to {adapter.grid}; they must coincide (use "
                         f"group=2 with the llava-onevision bilinear setting)")
    return ggrid


def pool_kept(adapter, hidden: torch.Tensor, patch_keep: torch.Tensor) -> torch.Tensor:
    """Projector, then normalised pooling over surviving patches: pool(proj*m) / pool(m).

    Where a pooled token's footprint is fully kept the division is skipped, so keeping every patch
    gives exactly HF's ``apply_pooling(multi_modal_projector(.))``. Tokens with no surviving patch
    in their footprint come out as zeros (they are not emitted)."""
    proj = adapter.model.model.multi_modal_projector(hidden)
    if bool(patch_keep.all()):
        return adapter.pool_like_features(proj)
    m = patch_keep.to(proj.dtype)[..., None]
    num = adapter.pool_like_features(proj * m)
    den = adapter.pool_like_features(m)
    den = torch.where(den > 1.0 - 1e-6, torch.ones_like(den), den)
    safe = torch.where(den > 0, den, torch.ones_like(den))   # no 0/0 (and no NaN gradients)
    return torch.where(den > 0, num / safe, torch.zeros_like(num))


def encode_video_pruned(adapter, pixel_values: torch.Tensor, *, prune_at: Optional[int],
                        scorer: Optional[TemporalTokenScorer], topk: float, group: int = 2,
                        rescale_min: float = math.exp(-2.0), timestamps=None,
                        keep_groups: Optional[torch.Tensor] = None, rule: str = "scorer",
                        seed: int = 0) -> PrunedVideoTokens:
    """The adapter's ``encode_video`` with in-ViT pruning: PrunedVideoTokens (features, keep mask,
    the per-layer VisionLoad). ``prune_at=None`` runs the plain tower (keep all)."""
    check_pooling_groups(adapter, group)
    layers = tower_layers_run(adapter)
    run = run_tower(adapter.model.model.vision_tower, pixel_values.to(device=adapter.device, dtype=adapter.dtype),
                    layers, prune_at=prune_at, scorer=scorer, topk=topk, group=group,
                    rescale_min=rescale_min, keep_groups=keep_groups, rule=rule, seed=seed)
    features = pool_kept(adapter, run.hidden, run.patch_keep)
    keep = (run.group_keep.to(features.device) if run.group_keep is not None
            else torch.ones(features.shape[:2], dtype=torch.bool, device=features.device))
    features = torch.where(keep[..., None], features, torch.zeros_like(features))  # not emitted -> 0
    ts = None if timestamps is None else torch.as_tensor(timestamps, dtype=torch.float32)
    return PrunedVideoTokens(features=features, grid=adapter.grid, timestamps=ts,
                             newline_policy=adapter.newline_policy, keep=keep,
                             vision_load=run.vision_load, info=pruned_info(keep, run.packed))


def pruned_info(keep: torch.Tensor, packed: Optional[Packed]) -> dict:
    """What the pruning kept (F, G) and how the later blocks were packed (bins, refilled patches)."""
    return {"kept_pooled": int(keep.sum()), "pooled": int(keep.numel()), "kept_per_frame": keep.sum(1).tolist(),
            "bins": packed.num_bins if packed is not None else int(keep.shape[0]),
            "refilled_patches": int(packed.refill_mask.sum()) if packed is not None else 0}
