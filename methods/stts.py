"""STTS (Unified Spatio-Temporal Token Scoring): the pure, model-free pieces.

What is here (docs/sources.md#stts): the learned group scorer, its two training signals (the temporal
novelty auxiliary loss and the soft attention bias through which the LM loss reaches the scorer),
the video-global group selection, and the first-fit-decreasing packing of kept tokens into
729-slot "virtual frames" with a block-diagonal attention mask. The ViT wiring (which block runs
the scorer, the bias, the packing) belongs to the adapter.

Fidelity (issue 24). The official code read is tidalove/molmo2fish at 95e0c4c (the public fork that
carries the STTS files), ``olmo/nn/temporal_image_vit.py`` (last changed at 08b964e):
``forward_with_scorer``, ``prune_with_scorer`` and ``rearrange_tokens``. ``fidelity="released"``
(default) computes what it computes; ``"project"`` is this project's earlier reading, kept to
measure the difference:

- the attention bias min-max rescales the scores over the last axis of the (T, 27, 27) patch grid
  (each patch row holds its group row's 9 scores three times): **per group row**, with
  ``(s - min) / (max - min + 1e-6)`` (``project``: per frame, ``/ max(max - min, 1e-6)``);
- the pruned count is ``int(81 * topk * T)`` computed in float32 (777 groups for 30 % at 32 frames;
  ``project``: Python ``round``, 778); 81 is the grid's group count here, equal at 27 x 27;
- packing: when **exactly one** frame keeps no group, the released first-fit-decreasing gives it a
  bin of its own, refilled whole (its tokens still do not reach the LLM): one more packed frame
  (``project``: the empty frame occupies no bin). Two or more empty frames occupy no bin either way.

Kept against the released code: at most ``G * (T - 1)`` groups are pruned (the released code would
prune groups of the always-kept first frame when ``int(81 * topk * T)`` exceeds the other frames',
e.g. for a one-frame video), and ties in the frame sort break by frame index (its ``sort`` is not
stable).

Conventions: one video at a time. Hidden states are (T, N, D) with N = h * w patches in row-major
order (27 x 27 = 729 for Molmo2's SigLIP). Groups are the connector's 3 x 3 pooling cells on the
grid padded up to a multiple of 3, numbered row-major on the group grid (81 per frame at 27 x 27);
patches inside a group are also row-major.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from methods.primitives.padded import upload

__all__ = [
    "STTS_FIDELITIES",
    "stts_pruned_groups",
    "STTSConfig",
    "TemporalTokenScorer",
    "group_index",
    "group_patches",
    "novelty_targets",
    "auxiliary_loss",
    "attention_bias",
    "select_groups",
    "groups_to_patch_mask",
    "Packing",
    "pack_first_fit_decreasing",
    "Packed",
    "rearrange_tokens",
    "unpack",
    "PRUNE_METHODS",
    "check_prune_method",
    "reference_prune_scores",
    "select_by_rule",
]


STTS_FIDELITIES = ("released", "project")


def _check_fidelity(fidelity: str) -> None:
    if fidelity not in STTS_FIDELITIES:
        raise ValueError(f"stts fidelity must be one of {list(STTS_FIDELITIES)}, got {fidelity!r}")


def stts_pruned_groups(groups: int, topk: float, frames: int, fidelity: str = "released") -> int:
    """Groups pruned in a video of ``frames`` frames with ``groups`` per frame: ``int(groups * topk *
    frames)`` in float32 as the released code computes it (``project``: Python ``round``), at most
    the groups outside the first frame (which is always kept)."""
    _check_fidelity(fidelity)
    if fidelity == "released":
        n = int((groups * float(topk) * torch.tensor([int(frames)])).int())
    else:
        n = round(groups * float(topk) * frames)
    return max(0, min(n, groups * (frames - 1)))


@dataclass(frozen=True)
class STTSConfig:
    """STTS hyperparameters (README / TemporalVitConfig defaults, docs/sources.md#stts).

    ``topk`` is the *pruned* fraction of groups (0.5 = "Lite-50%", 0.3 = "Lite-30%").
    ``scorer_heads`` / ``mlp_dim`` default to SigLIP so400m (16 heads, MLP width 4304).
    """

    prune_at: int = 3
    topk: float = 0.5
    scorer_heads: int = 16
    mlp_dim: int = 4304
    rescale_min: float = math.exp(-2.0)
    aux_coef: float = 0.5
    group: int = 3

    def __post_init__(self) -> None:
        if self.prune_at < 0:
            raise ValueError(f"prune_at must be >= 0, got {self.prune_at}")
        if not 0.0 <= self.topk < 1.0:
            raise ValueError(f"topk (pruned fraction) must be in [0, 1), got {self.topk}")
        if not 0.0 < self.rescale_min < 1.0:
            raise ValueError(f"rescale_min must be in (0, 1), got {self.rescale_min}")
        if self.scorer_heads < 1 or self.mlp_dim < 1 or self.group < 1:
            raise ValueError(
                f"scorer_heads, mlp_dim, group must be >= 1, got "
                f"{self.scorer_heads}, {self.mlp_dim}, {self.group}")


# --------------------------------------------------------------------------------------------
# Grouping helpers
# --------------------------------------------------------------------------------------------

def _check_grid(n: int, grid: tuple[int, int]) -> tuple[int, int]:
    h, w = int(grid[0]), int(grid[1])
    if h * w != n:
        raise ValueError(f"grid {grid} has {h * w} cells but there are N={n} patches per frame")
    return h, w


def group_index(grid: tuple[int, int], group: int = 3, device=None) -> torch.Tensor:
    """(G, group*group) flat patch index of every slot of every group; -1 marks padding.

    The grid is padded at the bottom/right up to a multiple of ``group``.
    """
    h, w = int(grid[0]), int(grid[1])
    gh, gw = -(-h // group), -(-w // group)
    rows = torch.arange(gh * group, device=device)
    cols = torch.arange(gw * group, device=device)
    flat = rows[:, None] * w + cols[None, :]
    flat = torch.where((rows[:, None] < h) & (cols[None, :] < w), flat, torch.full_like(flat, -1))
    # (gh, g, gw, g) -> (gh, gw, g, g) -> (G, g*g)
    return flat.view(gh, group, gw, group).permute(0, 2, 1, 3).reshape(gh * gw, group * group)


def group_patches(hidden: torch.Tensor, grid: tuple[int, int], group: int = 3
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, N, D) -> patches per group (T, G, g*g, D) (zeros at padding) and valid mask (G, g*g)."""
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be (T, N, D), got shape {tuple(hidden.shape)}")
    _check_grid(hidden.shape[1], grid)
    idx = group_index(grid, group, hidden.device)
    valid = idx >= 0
    gathered = hidden[:, idx.clamp(min=0)]                       # (T, G, g*g, D)
    gathered = gathered * valid[None, :, :, None].to(hidden.dtype)
    return gathered, valid


def _patch_to_group(grid: tuple[int, int], group: int = 3, device=None) -> torch.Tensor:
    """(N,) group id of every patch: (row // group) * groups per row + col // group (the inverse of
    ``group_index``; shape arithmetic only, nothing read back)."""
    h, w = int(grid[0]), int(grid[1])
    rows = torch.arange(h, device=device) // group
    cols = torch.arange(w, device=device) // group
    return (rows[:, None] * -(-w // group) + cols[None, :]).flatten()


# --------------------------------------------------------------------------------------------
# Scorer
# --------------------------------------------------------------------------------------------

def _init_linear(layer: nn.Linear) -> None:
    # Truncated normal with std sqrt(1/fan_in), zero bias (docs/sources.md#stts-scorer).
    std = math.sqrt(1.0 / layer.in_features)
    nn.init.trunc_normal_(layer.weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class TemporalTokenScorer(nn.Module):
    """Scores every 3x3 group of every frame of one video with a value in (0, 1).

    Per group: query = mean of its (valid) patches; one multi-head attention pass of that query
    over the group's patches gives z; the MLP reads [z_{t-1}, z_t] (zeros for frame 0).
    """

    def __init__(self, dim: int, mlp_dim: int, heads: int, group: int = 3) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.dim, self.heads, self.group = dim, heads, group
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.o_proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(
            nn.Linear(2 * dim, mlp_dim), nn.SiLU(),
            nn.Linear(mlp_dim, mlp_dim), nn.SiLU(),
            nn.Linear(mlp_dim, 1),
        )
        for m in self.modules():
            if isinstance(m, nn.Linear):
                _init_linear(m)

    @classmethod
    def from_config(cls, dim: int, cfg: STTSConfig) -> "TemporalTokenScorer":
        return cls(dim, cfg.mlp_dim, cfg.scorer_heads, cfg.group)

    def group_vectors(self, hidden: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """(T, N, D) -> z (T, G, D)."""
        patches, valid = group_patches(hidden, grid, self.group)  # (T, G, P, D), (G, P)
        T, G, P, D = patches.shape
        count = valid.sum(-1).clamp(min=1).to(hidden.dtype)      # (G,)
        query = patches.sum(2) / count[None, :, None]            # (T, G, D)
        hd = D // self.heads
        q = self.q_proj(query).view(T * G, 1, self.heads, hd).transpose(1, 2)
        k = self.k_proj(patches).view(T * G, P, self.heads, hd).transpose(1, 2)
        v = self.v_proj(patches).view(T * G, P, self.heads, hd).transpose(1, 2)
        mask = valid[None].expand(T, G, P).reshape(T * G, 1, 1, P)
        z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (T*G, heads, 1, hd)
        return self.o_proj(z.transpose(1, 2).reshape(T, G, D))

    def forward(self, hidden: torch.Tensor, grid: Optional[tuple[int, int]] = None) -> torch.Tensor:
        """hidden (T, N, D) for one video -> scores (T, G) in (0, 1)."""
        if hidden.dim() != 3:
            raise ValueError(f"hidden must be (T, N, D), got shape {tuple(hidden.shape)}")
        if hidden.shape[-1] != self.dim:
            raise ValueError(f"hidden dim {hidden.shape[-1]} != scorer dim {self.dim}")
        if grid is None:
            side = math.isqrt(hidden.shape[1])
            grid = (side, side)
        z = self.group_vectors(hidden, grid)
        prev = torch.cat([torch.zeros_like(z[:1]), z[:-1]], dim=0)
        return torch.sigmoid(self.mlp(torch.cat([prev, z], dim=-1)).squeeze(-1))


# --------------------------------------------------------------------------------------------
# Training signals
# --------------------------------------------------------------------------------------------

def novelty_targets(hidden: torch.Tensor, group: int = 3) -> torch.Tensor:
    """Temporal novelty 1 - cos(group_{t-1}, group_t) of flattened 3x3 groups, (T, H, W, D) -> (T, G).

    Each group is its 9 patch vectors concatenated (9*D, zero padding), L2-normalised. Frame 0 has
    no predecessor; its row is set to 1 (fully novel) and is ignored by ``auxiliary_loss``.
    Targets carry no gradient.
    """
    if hidden.dim() != 4:
        raise ValueError(f"hidden must be (T, H, W, D), got shape {tuple(hidden.shape)}")
    T, H, W, D = hidden.shape
    with torch.no_grad():
        patches, _ = group_patches(hidden.reshape(T, H * W, D).float(), (H, W), group)
        flat = F.normalize(patches.flatten(2), dim=-1)            # (T, G, 9D)
        out = torch.ones(T, flat.shape[1], dtype=torch.float32, device=hidden.device)
        if T > 1:
            out[1:] = 1.0 - (flat[1:] * flat[:-1]).sum(-1)
    return out


def auxiliary_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """MSE between scores and novelty targets over frames t >= 1 (docs/sources.md#stts)."""
    if scores.shape != targets.shape or scores.dim() != 2:
        raise ValueError(f"scores and targets must both be (T, G); got {tuple(scores.shape)} "
                         f"and {tuple(targets.shape)}")
    if scores.shape[0] < 2:
        return scores.sum() * 0.0  # nothing to compare; keep the graph alive
    return F.mse_loss(scores[1:], targets[1:].to(scores.dtype))


def attention_bias(scores: torch.Tensor, grid: tuple[int, int], rescale_min: float = math.exp(-2.0),
                   group: int = 3, fidelity: str = "released") -> torch.Tensor:
    """Additive key bias (T, N) = log(rescaled score) in [log(rescale_min), 0], differentiable.

    Group scores are min-max rescaled to [rescale_min, 1] per row of the group grid (``project``: per
    frame), copied to their patches, and the first frame is set to 1 (bias 0). Broadcast as
    (T, 1, 1, N) over heads and queries.
    """
    _check_fidelity(fidelity)
    if scores.dim() != 2:
        raise ValueError(f"scores must be (T, G), got shape {tuple(scores.shape)}")
    h, w = int(grid[0]), int(grid[1])
    groups = (-(-h // group)) * (-(-w // group))
    if groups != scores.shape[1]:
        raise ValueError(f"grid {grid} with group {group} has {groups} groups, "
                         f"scores have {scores.shape[1]}")
    p2g = _patch_to_group((h, w), group, scores.device)
    if fidelity == "released":   # the last axis of the (T, rows, cols) grid: one row of groups
        gw = -(-w // group)
        rows = scores.reshape(scores.shape[0], -1, gw)
        lo, hi = rows.min(dim=-1, keepdim=True).values, rows.max(dim=-1, keepdim=True).values
        unit = ((rows - lo) / (hi - lo + 1e-6)).reshape(scores.shape)
    else:
        lo = scores.min(dim=1, keepdim=True).values
        hi = scores.max(dim=1, keepdim=True).values
        unit = (scores - lo) / (hi - lo).clamp(min=1e-6)         # flat frame -> all rescale_min
    rescaled = rescale_min + (1.0 - rescale_min) * unit
    rescaled = torch.cat([torch.ones_like(rescaled[:1]), rescaled[1:]], dim=0)
    return torch.log(rescaled)[:, p2g]


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------

def select_groups(scores: torch.Tensor, topk_pruned: float, fidelity: str = "released") -> torch.Tensor:
    """Keep mask (T, G): prune the ``stts_pruned_groups`` lowest-scored groups of the whole video.

    The first frame is always kept (its scores are lifted above any other), so at most G*(T-1)
    groups can go. Ties break towards the lower flat index being pruned first (stable sort).
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be (T, G), got shape {tuple(scores.shape)}")
    if not 0.0 <= float(topk_pruned) < 1.0:
        raise ValueError(f"topk_pruned must be in [0, 1), got {topk_pruned}")
    T, G = scores.shape
    n_prune = stts_pruned_groups(G, topk_pruned, T, fidelity)
    s = scores.detach().float().clone()
    s[0].fill_(float("inf"))
    order = torch.sort(s.flatten(), stable=True).indices
    keep = torch.ones(T * G, dtype=torch.bool, device=scores.device)
    return keep.index_fill_(0, order[:n_prune], False).view(T, G)


def groups_to_patch_mask(keep_groups: torch.Tensor, grid: tuple[int, int], group: int = 3) -> torch.Tensor:
    """(T, G) group keep mask -> (T, N) patch keep mask (all 9 patches of a group together)."""
    return keep_groups[:, _patch_to_group(grid, group, keep_groups.device)]


# --------------------------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------------------------

@dataclass
class Packing:
    """First-fit-decreasing assignment of frames to bins (host tensors: the packing is decided on the
    host, it sets the number of bins).

    ``bin_of[t]`` is frame t's bin (-1 for frames with no kept token: they occupy no bin, except a
    frame that is the only empty one under the released rule, which gets a last bin of its own),
    ``offset[t]`` its first slot inside the bin, ``num_bins`` the number of bins, ``alone[t]``
    whether frame t is the only frame in its bin (its pruned tokens are refilled).
    """

    bin_of: torch.Tensor
    offset: torch.Tensor
    num_bins: int
    alone: torch.Tensor


def _first_fit_decreasing(counts: list[int], capacity: int, fidelity: str) -> tuple[list[int], list[int], int]:
    """(bin_of, offset, num_bins) of ``pack_first_fit_decreasing`` on Python ints."""
    free: list[int] = []
    bin_of = [-1] * len(counts)
    offset = [0] * len(counts)
    for t in sorted(range(len(counts)), key=lambda t: -counts[t]):  # stable: ties by frame index
        c = counts[t]
        if c == 0:
            continue
        b = next((b for b, room in enumerate(free) if room >= c), len(free))
        if b == len(free):
            free.append(capacity)
        bin_of[t], offset[t] = b, capacity - free[b]
        free[b] -= c
    empty = [t for t, c in enumerate(counts) if c == 0]
    if fidelity == "released" and len(empty) == 1:  # the released -1 bin counts once: "alone"
        bin_of[empty[0]] = len(free)
        free.append(0)
    return bin_of, offset, len(free)


def pack_first_fit_decreasing(kept_counts, capacity: int = 729, fidelity: str = "released") -> Packing:
    """Sort frames by kept count (descending, stable), put each into the first bin it fits. Released:
    if exactly one frame keeps nothing it takes a new last bin (alone there, so it is refilled).

    ``kept_counts``: (T,) ints, a tensor or a list; a device tensor is read back once (the packing is
    sequential and its bin count is an output size)."""
    _check_fidelity(fidelity)
    counts = [int(c) for c in (kept_counts.flatten().tolist() if torch.is_tensor(kept_counts) else kept_counts)]
    if counts and (max(counts) > capacity or min(counts) < 0):
        raise ValueError(f"kept counts must lie in [0, capacity={capacity}], got {counts}")
    bin_of, offset, num_bins = _first_fit_decreasing(counts, capacity, fidelity)
    per_bin = [0] * num_bins
    for b in bin_of:
        if b >= 0:
            per_bin[b] += 1
    alone = [b >= 0 and per_bin[b] == 1 for b in bin_of]
    return Packing(torch.tensor(bin_of, dtype=torch.long), torch.tensor(offset, dtype=torch.long), num_bins,
                   torch.tensor(alone, dtype=torch.bool))


@dataclass
class Packed:
    """Kept tokens of one video packed into ``num_bins`` virtual frames of ``capacity`` slots.

    hidden      (B', C, D) packed tokens, zeros in empty slots
    attn_mask   (B', C, C) bool, True = may attend: block-diagonal by original frame (empty slots
                attend only to themselves so no softmax row is empty)
    index       (T, N) long, flat slot (bin * C + slot) of each active token, -1 if not active
    keep_mask   (T, N) the selection mask (what the LLM side uses)
    active_mask (T, N) tokens the later ViT blocks process = keep_mask | refill_mask
    refill_mask (T, N) pruned tokens put back because their frame sits alone in a bin
    frame_of_slot (B', C) long, original frame of every slot, -1 for empty
    """

    hidden: torch.Tensor
    attn_mask: torch.Tensor
    index: torch.Tensor
    keep_mask: torch.Tensor
    active_mask: torch.Tensor
    refill_mask: torch.Tensor
    frame_of_slot: torch.Tensor
    packing: Packing

    @property
    def num_bins(self) -> int:
        return self.hidden.shape[0]


def _check_rearrange(hidden: torch.Tensor, keep_mask: torch.Tensor, capacity: Optional[int]) -> int:
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be (T, N, D), got shape {tuple(hidden.shape)}")
    T, N, _ = hidden.shape
    if keep_mask.shape != (T, N) or keep_mask.dtype != torch.bool:
        raise ValueError(f"keep_mask must be bool ({T}, {N}), got {keep_mask.dtype} {tuple(keep_mask.shape)}")
    cap = N if capacity is None else int(capacity)
    if cap < N:
        raise ValueError(f"capacity {cap} must be >= tokens per frame N={N} (refill needs a whole frame)")
    return cap


def rearrange_tokens(hidden: torch.Tensor, keep_mask: torch.Tensor, capacity: Optional[int] = None,
                     fidelity: str = "released") -> Packed:
    """Pack the kept tokens of (T, N, D) into first-fit-decreasing bins of ``capacity`` (default N).

    A bin holding a single original frame gets that frame's pruned tokens back (no compute would
    be saved by leaving them out; released: also the bin of a lone empty frame, see
    ``pack_first_fit_decreasing``); frame order inside a bin is FFD placement order, tokens keep
    their original order inside a frame. One host sync: the per-frame kept counts, read back to pack.
    """
    cap = _check_rearrange(hidden, keep_mask, capacity)
    T, N, D = hidden.shape
    dev = hidden.device
    packing = pack_first_fit_decreasing(keep_mask.sum(1).tolist(), cap, fidelity)
    B = packing.num_bins
    plan = upload(torch.stack([packing.bin_of, packing.offset, packing.alone.long()]), dev)
    active = keep_mask | plan[2, :, None].bool()
    rank = torch.cumsum(active, dim=1) - 1                       # position inside the frame
    slot = (plan[0] * cap + plan[1])[:, None] + rank
    index = torch.where(active, slot, -1)
    # Every token is written: inactive ones to a dump row past the bins, sliced off (no mask indexing).
    dest = torch.where(active, slot, B * cap).flatten()
    flat_hidden = hidden.new_zeros(B * cap + 1, D).index_copy_(0, dest, hidden.reshape(T * N, D))
    frames = torch.arange(T * N, device=dev) // N                # frame of every token
    frame_of_slot = torch.full((B * cap + 1,), -1, dtype=torch.long, device=dev).index_copy_(0, dest, frames)
    frame_of_slot = frame_of_slot[:B * cap].view(B, cap)
    same = frame_of_slot[:, :, None] == frame_of_slot[:, None, :]
    filled = frame_of_slot >= 0
    eye = torch.eye(cap, dtype=torch.bool, device=dev)[None]
    attn_mask = (same & filled[:, :, None]) | eye
    return Packed(flat_hidden[:B * cap].view(B, cap, D), attn_mask, index, keep_mask, active, active & ~keep_mask,
                  frame_of_slot, packing)


def unpack(packed_hidden: torch.Tensor, packed: Packed) -> torch.Tensor:
    """Scatter packed (B', C, D) back to the original (T, N, D) layout, zeros where not active."""
    B, C, D = packed_hidden.shape
    if B != packed.num_bins or C != packed.hidden.shape[1]:
        raise ValueError(f"packed_hidden shape {tuple(packed_hidden.shape)} does not match the packing "
                         f"({packed.num_bins}, {packed.hidden.shape[1]}, D)")
    T, N = packed.index.shape
    if B * C == 0:                                               # no bins: nothing was active
        return packed_hidden.new_zeros(T, N, D)
    gathered = packed_hidden.reshape(B * C, D)[packed.index.clamp(min=0)]
    return torch.where(packed.active_mask[:, :, None], gathered, 0.0)


# --------------------------------------------------------------------------------------------
# STTS's non-learned ablation rules (``prune_method`` random / heuristic / easy in TemporalVitConfig)
# --------------------------------------------------------------------------------------------

PRUNE_METHODS = ("scorer", "random", "heuristic", "easy")


def check_prune_method(prune_method: str) -> str:
    if prune_method not in PRUNE_METHODS:
        raise ValueError(f"prune_method {prune_method!r} is not one of {list(PRUNE_METHODS)}")
    return prune_method


def group_cosine(hidden: torch.Tensor, grid: tuple[int, int], group: int = 3) -> torch.Tensor:
    """(T, N, D) -> (T, G, g*g*D) L2-normalised flattened groups (the rules' similarity features)."""
    patches, _ = group_patches(hidden.float(), grid, group)
    return F.normalize(patches.flatten(2), dim=-1)


def reference_prune_scores(hidden: torch.Tensor, grid: tuple[int, int], theta: float, rule: str,
                           group: int = 3) -> torch.Tensor:
    """(T, G) prune-first scores of the ``heuristic`` (reference frames) or ``easy`` (previous frame) rule.

    Frame 0 and every frame whose mean similarity to its references is below ``theta`` score -1
    (such a frame becomes the whole reference: pruned last). Otherwise a group scores its cosine
    similarity to its reference; with ``heuristic`` a group below ``theta`` becomes the new
    reference of its location. Higher score = pruned first; no gradient (a rule, not a learned score).
    A loop over frames (the rule is sequential).
    """
    if rule not in ("heuristic", "easy"):
        raise ValueError(f"rule must be 'heuristic' or 'easy', got {rule!r}")
    flat = group_cosine(hidden.detach(), grid, group)            # (T, G, gD); a rule: no gradient
    T, G, _ = flat.shape
    scores = torch.full((T, G), -1.0, device=flat.device)
    ref = flat[0].clone()                                        # reference features per location
    for t in range(1, T):
        if rule == "easy":
            ref = flat[t - 1]
        sims = (flat[t] * ref).sum(-1)                           # (G,)
        if float(sims.mean()) < theta:
            ref = flat[t].clone()                                # whole frame becomes the reference
            continue
        scores[t] = sims
        if rule == "heuristic":
            low = sims < theta
            ref = torch.where(low[:, None], flat[t], ref)
    return scores


def select_by_rule(hidden: torch.Tensor, grid: tuple[int, int], topk_pruned: float, rule: str,
                   theta: float = 0.85, theta_step: float = 0.05, retries: int = 5, group: int = 3,
                   seed: int = 0, fidelity: str = "released") -> torch.Tensor:
    """Keep mask (T, G) of a non-learned rule, pruning ``stts_pruned_groups`` groups of the video
    (without the first-frame cap: the rules keep their reference frames by their own scores).

    ``random``: a seeded uniform random set of groups. ``heuristic`` / ``easy``: the most similar
    groups first; if that would prune a group of a new-reference frame (score -1), ``theta`` drops
    by ``theta_step`` and the rule reruns, at most ``retries`` times (the last try is used).
    """
    T, N, _ = hidden.shape
    h, w = _check_grid(N, grid)
    G = (-(-h // group)) * (-(-w // group))
    if not 0.0 <= float(topk_pruned) < 1.0:
        raise ValueError(f"topk_pruned must be in [0, 1), got {topk_pruned}")
    _check_fidelity(fidelity)
    n_prune = (int((G * float(topk_pruned) * torch.tensor([T])).int()) if fidelity == "released"
               else round(G * float(topk_pruned) * T))
    keep = torch.ones(T * G, dtype=torch.bool, device=hidden.device)
    if rule == "random":
        gen = torch.Generator().manual_seed(int(seed))
        keep[torch.randperm(T * G, generator=gen)[:n_prune].to(hidden.device)] = False
        return keep.view(T, G)
    for _ in range(max(1, retries)):
        scores = reference_prune_scores(hidden, grid, theta, rule, group).flatten()
        order = torch.sort(-scores, stable=True).indices
        pruned = order[:n_prune]
        theta -= theta_step
        if not bool((scores[pruned] == -1.0).any()) or theta < 0:
            break
    keep[pruned] = False
    return keep.view(T, G)
