"""The shared inner-LLM pruning primitive: our own decoder-layer loop over an HF Qwen2-style model.

We do not patch anything: the adapter calls :func:`llm_prefill` / :func:`llm_decode_step`, which
call the instance's own decoder layers (``lm.layers[i](...)``) with hidden states, RoPE cos/sin,
masks and a :class:`RaggedKVCache` that we build. The HF model object is never modified, so
attaching/detaching a method is a matter of which plan the adapter passes.

Per token we track its *kind* (0 text, 1 visual feature, 2 newline), its *position id* (RoPE
position; original positions survive pruning) and its *index* in the prompt sequence. At a stage
``K`` of an :class:`InnerPlan` the alive visual feature tokens (and newlines with
``span="visual"``) are scored by recomputing only the
needed query rows of layer ``K-1`` (last token, or all rows in chunks) against that layer's keys,
then kept/merged. ``inplace`` removes the others from the sequence (layers >= K and their KV cache
get shorter); ``mask`` keeps them but masks them out as keys for layers >= K (correctness oracle).

Decode: the new token's position is ``last prompt position + 1 + step`` (equals the unpruned
sequence length + step when positions are contiguous), each layer attends over its own cache
length, and in mask mode over its own alive-mask.

Positions are (L,) for 1-D RoPE models, or (3, L) temporal/height/width M-RoPE ids for Qwen2.5-VL
(whose ``rotary_emb`` takes (3, batch, L) and recombines the sections per ``mrope_section``; the
cos/sin it returns are (1, L, head_dim) like the 1-D ones, so scoring and pruning index them the
same way). With 3-D ids the first generated token sits at max(prompt positions) + 1 on all three
axes, as HF's ``rope_deltas`` give (``max + 1 - len``, added to the cache length).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from .merge import merge_dropped
from .plan import InnerPlan, inner_keep_count

TEXT, VISUAL, NEWLINE = 0, 1, 2
SUPPORTED_ATTN = ("sdpa", "eager")


class RaggedKVCache:
    """Per-layer KV store whose layers may hold different lengths (full below K, pruned from K).

    Implements the one method HF attention modules call (``update(k, v, layer_idx)``); keeps, per
    layer, which entries are alive (mask mode) so decode masks can be built per layer.
    """

    def __init__(self, num_layers: int):
        self.keys: list[Optional[torch.Tensor]] = [None] * num_layers
        self.values: list[Optional[torch.Tensor]] = [None] * num_layers
        self.alive: list[Optional[torch.Tensor]] = [None] * num_layers
        # host-side copy of ``alive[i].all()`` (set by the prefill), so decode reads no device value
        self.all_alive: list[bool] = [True] * num_layers

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        if self.keys[layer_idx] is None:
            self.keys[layer_idx], self.values[layer_idx] = key_states, value_states
        else:
            self.keys[layer_idx] = torch.cat([self.keys[layer_idx], key_states], dim=-2)
            self.values[layer_idx] = torch.cat([self.values[layer_idx], value_states], dim=-2)
        return self.keys[layer_idx], self.values[layer_idx]

    def layer_length(self, layer: int) -> int:
        k = self.keys[layer]
        return 0 if k is None else int(k.shape[-2])

    def lengths(self) -> tuple[int, ...]:
        return tuple(self.layer_length(i) for i in range(len(self.keys)))

    def get_seq_length(self, layer_idx: int = 0) -> int:  # HF-compatible name
        return self.layer_length(layer_idx)


@dataclass
class PrefillResult:
    hidden: torch.Tensor                 # (1, L_out, D) final-normed hidden states of surviving tokens
    index: torch.Tensor                  # (L_out,) prompt index of each surviving token
    cache: Optional[RaggedKVCache]
    next_position: int                   # RoPE position of the first generated token
    stage_keeps: list[torch.Tensor]      # per stage: prompt indices of the visual tokens kept
    llm_visual: list[int] = field(default_factory=list)
    llm_newline: list[int] = field(default_factory=list)
    text_tokens: int = 0


def _check_lm(lm) -> None:
    impl = getattr(lm.config, "_attn_implementation", "sdpa")
    if impl not in SUPPORTED_ATTN:
        raise ValueError(f"attention implementation {impl!r} is not supported by the pruning runtime; "
                         f"allowed: {SUPPORTED_ATTN}")
    if getattr(lm.config, "use_sliding_window", False):
        raise ValueError("sliding-window attention is not supported by the pruning runtime")


def _additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """bool (Q, K) -> additive (1, 1, Q, K) float mask."""
    out = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    out.masked_fill_(~allowed, torch.finfo(dtype).min)
    return out[None, None]


def _prefill_mask(L: int, alive: Optional[torch.Tensor], impl: str, dtype, device):
    if alive is None and impl == "sdpa":
        return None  # sdpa's is_causal path, exactly what HF uses without padding
    allowed = torch.ones(L, L, dtype=torch.bool, device=device).tril_()
    if alive is not None:
        allowed &= alive[None, :]
    return _additive_mask(allowed, dtype)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rot * sin


def score_visual(lm, layer_idx: int, layer_input: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                 alive: Optional[torch.Tensor], scoring: str, chunk: int = 512) -> torch.Tensor:
    """Head-averaged attention each token receives in layer ``layer_idx`` (length L).

    Recomputes q only for the needed rows (last token, or all alive rows in chunks) and k for all
    tokens, with RoPE and the causal (+ alive) mask, instead of running the layer in eager mode.
    """
    layer = lm.layers[layer_idx]
    attn = layer.self_attn
    x = layer.input_layernorm(layer_input)[0]                        # (L, D)
    L = x.shape[0]
    hd = attn.head_dim
    k = attn.k_proj(x).view(L, -1, hd).transpose(0, 1)               # (Hkv, L, hd)
    k = _rope(k, cos[0][None], sin[0][None])
    groups = attn.num_key_value_groups
    k = k.repeat_interleave(groups, dim=0).float()                   # (H, L, hd)
    if scoring == "last":
        rows = torch.tensor([L - 1], device=x.device)
    else:
        rows = torch.arange(L, device=x.device) if alive is None else alive.nonzero().squeeze(1)
    total = torch.zeros(L, dtype=torch.float32, device=x.device)
    keys_ok = alive if alive is not None else torch.ones(L, dtype=torch.bool, device=x.device)
    cols = torch.arange(L, device=x.device)
    for start in range(0, rows.numel(), chunk):
        r = rows[start:start + chunk]
        q = attn.q_proj(x[r]).view(r.numel(), -1, hd).transpose(0, 1)  # (H, R, hd)
        q = _rope(q, cos[0][r][None], sin[0][r][None]).float()
        logits = (q @ k.transpose(1, 2)) * attn.scaling                # (H, R, L)
        allowed = (cols[None, :] <= r[:, None]) & keys_ok[None, :]
        logits = logits.masked_fill(~allowed[None], float("-inf"))
        total += torch.softmax(logits, dim=-1).mean(0).sum(0)
    return total / rows.numel()


def _batched_positions(position_ids: torch.Tensor, L: int) -> torch.Tensor:
    """(L,) -> (1, L); (3, L) M-RoPE ids -> (3, 1, L), the layouts the rotary embeddings take."""
    if position_ids.dim() == 1 and position_ids.shape[0] == L:
        return position_ids.view(1, L)
    if position_ids.dim() == 2 and tuple(position_ids.shape) == (3, L):
        return position_ids.view(3, 1, L)
    raise ValueError(f"position_ids must be (L,) or (3, L) with L={L}, got {tuple(position_ids.shape)}")


def _next_position(pos: torch.Tensor) -> int:
    """RoPE position of the first generated token: last + 1 (1-D), max + 1 on all axes (3-D)."""
    return int(pos[0, -1].item()) + 1 if pos.dim() == 2 else int(pos.max().item()) + 1


def _counts(kinds: torch.Tensor, alive: Optional[torch.Tensor], extra: tuple = ()) -> tuple[tuple, list]:
    """((live visual, live newline) counts, the sums of the ``extra`` bool masks) in one host read."""
    visual, newline = kinds == VISUAL, kinds == NEWLINE
    if alive is not None:
        visual, newline = visual & alive, newline & alive
    values = torch.stack([m.sum() for m in (visual, newline, *extra)]).tolist()
    return tuple(values[:2]), values[2:]


def _rankable(kinds: torch.Tensor, plan: Optional[InnerPlan]) -> torch.Tensor:
    """Tokens a stage ranks: visual features, or (``span="visual"``) features and newlines."""
    if plan is not None and plan.span == "visual":
        return (kinds == VISUAL) | (kinds == NEWLINE)
    return kinds == VISUAL


def llm_prefill(lm, inputs_embeds: torch.Tensor, position_ids: torch.Tensor, kinds: torch.Tensor,
                plan: Optional[InnerPlan] = None, use_cache: bool = True,
                forced_keeps: Optional[list[torch.Tensor]] = None) -> PrefillResult:
    """Run the decoder layers of ``lm`` (an HF ``Qwen2Model`` or Qwen2.5-VL text model) over one
    prompt with a pruning plan.

    ``position_ids`` (L,) or (3, L) long, ``kinds`` (L,) with TEXT/VISUAL/NEWLINE. ``forced_keeps`` replays
    the kept sets of an earlier prefill (prompt indices per stage; tokens past the original prompt
    are generated text and always kept) -- used by the no-cache generation oracle.
    """
    _check_lm(lm)
    if inputs_embeds.dim() != 3 or inputs_embeds.shape[0] != 1:
        raise ValueError(f"batch size 1 only: inputs_embeds must be (1, L, D), got {tuple(inputs_embeds.shape)}")
    num_layers = len(lm.layers)
    impl = getattr(lm.config, "_attn_implementation", "sdpa")
    device = inputs_embeds.device
    L = inputs_embeds.shape[1]
    if plan is not None:
        plan.validate(num_layers)
    h = inputs_embeds
    pos = _batched_positions(position_ids.to(device), L)
    kinds = kinds.to(device)
    index = torch.arange(L, device=device)
    cos, sin = lm.rotary_emb(h, pos)
    mask_mode = plan is not None and plan.mode == "mask"
    alive = torch.ones(L, dtype=torch.bool, device=device) if mask_mode else None
    cache = RaggedKVCache(num_layers) if use_cache else None
    stages = {s.layer: (i, s) for i, s in enumerate(plan.stages)} if plan is not None else {}
    res = PrefillResult(hidden=h, index=index, cache=cache,
                        next_position=_next_position(pos), stage_keeps=[])
    # token counts are read on the host once here and once per stage, never per layer (a GPU
    # stalls at every read)
    live_counts, (res.text_tokens, n_entering) = _counts(kinds, alive, (kinds == TEXT, _rankable(kinds, plan)))
    prev_input = None
    cache_all_alive = True  # host-side: no entry masked yet (decode then needs no mask)
    mask = _prefill_mask(L, None, impl, h.dtype, device)
    for li, layer in enumerate(lm.layers):
        if li in stages:
            si, stage = stages[li]
            cand_ok = _rankable(kinds, plan)
            if alive is not None:
                cand_ok = cand_ok & alive
            cand = cand_ok.nonzero().squeeze(1)
            if forced_keeps is not None:
                keep_set = torch.zeros(int(index.max()) + 1, dtype=torch.bool, device=device)
                keep_set[forced_keeps[si]] = True
                top = cand[keep_set[index[cand]]]
            else:
                scores = score_visual(lm, li - 1, prev_input, cos, sin, alive, plan.scoring, plan.score_chunk)
                n_keep = min(cand.numel(), inner_keep_count(n_entering, stage.keep, plan.rounding))
                top = cand[torch.topk(scores[cand], n_keep).indices.sort().values]
            dropped_ok = cand_ok.clone()
            dropped_ok[top] = False
            dropped = dropped_ok.nonzero().squeeze(1)
            res.stage_keeps.append(index[top].clone())
            if plan.merge != "drop":
                merged = merge_dropped(h[0], top, dropped, plan.merge, plan.blend_weight)
                h = h.clone()
                h[0, top] = merged
            if mask_mode:
                alive = alive & ~dropped_ok
                mask = _prefill_mask(L, alive, impl, h.dtype, device)
                cache_all_alive = cache_all_alive and dropped.numel() == 0
            else:
                keep = (~dropped_ok).nonzero().squeeze(1)
                h, pos, kinds, index = h[:, keep], pos[..., keep], kinds[keep], index[keep]
                cos, sin = cos[:, keep], sin[:, keep]
                mask = _prefill_mask(keep.numel(), None, impl, h.dtype, device)
            live_counts, _ = _counts(kinds, alive)
        res.llm_visual.append(live_counts[0])
        res.llm_newline.append(live_counts[1])
        prev_input = h
        h = layer(h, attention_mask=mask, position_ids=pos, past_key_values=cache,
                  use_cache=use_cache, position_embeddings=(cos, sin))
        if cache is not None:
            cache.alive[li] = alive.clone() if alive is not None else None
            cache.all_alive[li] = cache_all_alive
    res.hidden = lm.norm(h)
    res.index = index
    return res


def llm_decode_step(lm, embeds: torch.Tensor, cache: RaggedKVCache, position: int) -> torch.Tensor:
    """One greedy decode step for a single new token at RoPE position ``position``; returns the
    final-normed hidden state (1, 1, D). Each layer attends over its own (ragged) cache."""
    device = embeds.device
    pos = torch.tensor([[position]], device=device)  # M-RoPE: broadcast to (3, 1, 1), equal axes
    cos, sin = lm.rotary_emb(embeds, pos)
    impl = getattr(lm.config, "_attn_implementation", "sdpa")
    h = embeds
    for li, layer in enumerate(lm.layers):
        alive = cache.alive[li]
        mask = None
        if alive is not None:
            alive = torch.cat([alive, torch.ones(1, dtype=torch.bool, device=device)])
            cache.alive[li] = alive
            if not cache.all_alive[li]:
                mask = _additive_mask(alive[None, :], h.dtype)
        elif impl == "eager":
            mask = None  # a single query may attend to the whole cache
        h = layer(h, attention_mask=mask, position_ids=pos, past_key_values=cache,
                  use_cache=True, position_embeddings=(cos, sin))
    return lm.norm(h)
