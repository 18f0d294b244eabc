"""ToMe's bipartite soft matching (Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023).

Read from the official repository facebookresearch/ToMe (``tome/merge.py``: bipartite_soft_matching,
merge_wavg; ``tome/patch/timm.py``: merge between attention and MLP, keys averaged over heads as the
metric, proportional attention ``+ log(size)`` on the keys; ``tome/utils.py``: parse_r) and
docs/sources.md#tome. Per sequence:

- tokens alternate into set A (even positions) and set B (odd positions);
- similarity is the cosine of the metric (ToMe: the attention keys, mean over heads);
- every A token picks its most similar B token; the ``r`` A tokens with the highest such score
  merge into their B token (several may pick the same one), the rest stay;
- ``r`` is capped at half of the unprotected tokens; a class token (position 0) is never merged
  away and a distillation token (position 1) never receives a merge, as in the official code;
- merged values are size-weighted averages and sizes add up (``merge_wavg``).

One deliberate difference: the official code returns [unmerged A tokens, all B tokens]; here the
survivors keep their sequence order (a merged token sits where its B token was), so the next
block's alternating split stays spatially interleaved and the tokens leave the tower in raster
order of their B tokens. Ties of the similarity are broken by the lower A position (stable sort).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

__all__ = ["Matching", "bipartite_soft_matching", "merge_wavg", "proportional_bias", "r_schedule",
           "retention_r_schedule", "tokens_per_block"]


@dataclass(frozen=True)
class Matching:
    """One merge step for a batch of B sequences of T tokens.

    merged (B, r) sequence positions of the A tokens merged away
    into   (B, r) sequence positions of the B tokens they merge into
    keep   (B, T) bool, False exactly at ``merged``
    """

    merged: torch.Tensor
    into: torch.Tensor
    keep: torch.Tensor

    @property
    def r(self) -> int:
        return int(self.merged.shape[1])


def _check_r(r) -> int:
    if isinstance(r, bool) or not isinstance(r, int) or r < 0:
        raise ValueError(f"r (tokens merged away) must be an int >= 0, got {r!r}")
    return r


def bipartite_soft_matching(metric: torch.Tensor, r: int, *, class_token: bool = False,
                            distill_token: bool = False) -> Matching:
    """The matching of ``r`` merges on ``metric`` (B, T, C); r is capped at (T - protected) // 2."""
    if metric.dim() != 3:
        raise ValueError(f"metric must be (B, T, C), got shape {tuple(metric.shape)}")
    r = _check_r(r)
    B, T, _ = metric.shape
    dev = metric.device
    protected = int(class_token) + int(distill_token)
    r = min(r, max(0, (T - protected) // 2))
    if r == 0:
        empty = torch.zeros((B, 0), dtype=torch.long, device=dev)
        return Matching(empty, empty, torch.ones((B, T), dtype=torch.bool, device=dev))
    unit = torch.nn.functional.normalize(metric.float(), dim=-1)
    scores = unit[:, ::2] @ unit[:, 1::2].transpose(-1, -2)        # (B, |A|, |B|)
    if class_token:
        scores[:, 0, :] = -torch.inf
    if distill_token:
        scores[:, :, 0] = -torch.inf
    best, best_b = scores.max(dim=-1)                               # each A token's best B token
    order = torch.sort(best, dim=-1, descending=True, stable=True).indices
    src_a = order[:, :r]                                            # A indices merged away
    dst_b = best_b.gather(1, src_a)
    merged, into = 2 * src_a, 2 * dst_b + 1                         # A = even, B = odd positions
    keep = torch.ones((B, T), dtype=torch.bool, device=dev)
    keep.scatter_(1, merged, False)
    return Matching(merged, into, keep)


def merge_wavg(x: torch.Tensor, matching: Matching,
               size: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a matching to ``x`` (B, T, D) by size-weighted average: -> ((B, T - r, D), sizes (B, T - r)).

    ``size`` (B, T) is how many original tokens each token already stands for (None: all 1);
    sizes come back in fp32 (or wider)."""
    B, T, D = x.shape
    if tuple(matching.keep.shape) != (B, T):
        raise ValueError(f"the matching is for {tuple(matching.keep.shape)} tokens, x has {(B, T)}")
    if size is None:
        size = torch.ones((B, T), dtype=torch.float32, device=x.device)
    elif tuple(size.shape) != (B, T):
        raise ValueError(f"size must be (B, T)={(B, T)}, got {tuple(size.shape)}")
    if matching.r == 0:
        return x, size
    # sums and sizes in fp32 at least: bf16 cannot hold every integer size above 256
    work = torch.promote_types(x.dtype, torch.float32)
    size = size.to(work)
    weighted = x.to(work) * size[..., None]
    idx_src = matching.merged[..., None].expand(B, matching.r, D)
    idx_dst = matching.into[..., None].expand(B, matching.r, D)
    sums = weighted.scatter_add(1, idx_dst, weighted.gather(1, idx_src))
    sizes = size.scatter_add(1, matching.into, size.gather(1, matching.merged))
    out = (sums / sizes[..., None]).to(x.dtype)
    T2 = T - matching.r
    return out[matching.keep].view(B, T2, D), sizes[matching.keep].view(B, T2)


def proportional_bias(size: torch.Tensor) -> torch.Tensor:
    """ToMe's proportional attention: log(size) added to every query's logit of each key, as an
    additive mask (B, 1, 1, T) broadcast over heads and queries."""
    if size.dim() != 2 or bool((size <= 0).any()):
        raise ValueError(f"size must be (B, T) with positive entries, got shape {tuple(size.shape)}")
    return size.log()[:, None, None, :]


def tokens_per_block(tokens: int, schedule) -> tuple[int, ...]:
    """Tokens entering each block, and after the last one: ``len(schedule) + 1`` counts."""
    counts = [int(tokens)]
    for r in schedule:
        counts.append(counts[-1] - int(r))
    return tuple(counts)


def _check_blocks(tokens: int, layers: int, start: int) -> None:
    for name, v, low in (("tokens", tokens, 1), ("layers", layers, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < layers:
        raise ValueError(f"start (first merging block) must be an int in [0, {layers - 1}], got {start!r}")


def r_schedule(tokens: int, layers: int, r: int, start: int = 0) -> tuple[int, ...]:
    """Constant ``r`` merges per block from block ``start`` on, each capped at half of the tokens
    entering it (the official matching's cap, applied here so the schedule is what runs)."""
    _check_blocks(tokens, layers, start)
    r = _check_r(r)
    out, n = [], tokens
    for block in range(layers):
        step = min(r, n // 2) if block >= start else 0
        out.append(step)
        n -= step
    return tuple(out)


def _fewest_after(n: int, blocks: int) -> int:
    """Fewest tokens left after ``blocks`` blocks that each merge half of their tokens."""
    for _ in range(blocks):
        n -= n // 2
    return n


def retention_r_schedule(tokens: int, target: int, layers: int, start: int = 0) -> tuple[int, ...]:
    """Per-block r that brings ``tokens`` down to exactly ``target`` over blocks ``start..layers-1``:
    the remaining merges spread evenly over the remaining blocks (earlier blocks take the
    remainder), each capped at half of the tokens entering the block; a block takes more than its
    even share only where the later blocks' caps would otherwise miss the target."""
    _check_blocks(tokens, layers, start)
    if isinstance(target, bool) or not isinstance(target, int) or not 1 <= target <= tokens:
        raise ValueError(f"target must be an int in [1, {tokens}], got {target!r}")
    out, n = [0] * start, tokens
    for block in range(start, layers):
        left = layers - block
        step = min(-(-(n - target) // left), n // 2)
        while step < n // 2 and _fewest_after(n - step, left - 1) > target:
            step += 1  # an even share now would leave more than halving can remove later
        out.append(step)
        n -= step
    if n != target:
        raise ValueError(f"cannot merge {tokens} tokens down to {target} in blocks {start}..{layers - 1}: "
                         f"at most half of the tokens merge per block, which leaves {n}; start earlier "
                         f"or keep more tokens")
    return tuple(out)
