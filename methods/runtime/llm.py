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
length, and in mask mode over its own alive-mask. A plan with ``positions="renumber"`` (PyramidDrop's
released rule) gives the survivors of a stage the ids 0..L'-1; the layers from that stage on then
place the new token at L' + step (``RaggedKVCache.position_shift``). With ``rank_layer="next"`` a
stage at layer K scores with layer K's own q/k on its input instead of layer K-1's.

Layers on several devices (a device map, e.g. a 72B over several GPUs with accelerate's hooks, or
disk offload): the bookkeeping (kinds, indices, alive masks, stage selection) stays on the device of
``inputs_embeds``; each layer gets its hidden states, positions, RoPE cos/sin and mask on its own
execution device (``module_device``), its KV cache entries stay there, and the scoring of a stage
runs on the scored layer's device.

Positions are (L,) for 1-D RoPE models, or (3, L) temporal/height/width M-RoPE ids for Qwen2.5-VL
(whose ``rotary_emb`` takes (3, batch, L) and recombines the sections per ``mrope_section``; the
cos/sin it returns are (1, L, head_dim) like the 1-D ones, so scoring and pruning index them the
same way). With 3-D ids the first generated token sits at max(prompt positions) + 1 on all three
axes, as HF's ``rope_deltas`` give (``max + 1 - len``, added to the cache length); decode passes
that position as (3, 1, 1) ids, the layout every supported transformers release takes (5.17's
Qwen2.5-VL rotary embedding indexes three axes and rejects (1, 1)).

Host syncs: the loop reads no device value per layer. The per-layer token counts of the recorded
schedule and the first decode position stay device tensors until they are read
(:attr:`PrefillResult.llm_visual`, :attr:`PrefillResult.next_position`), after the timed prefill;
what remains inside it is what a plan's stage needs (selecting the kept tokens).

The KV cache reaches each decoder layer under the keyword its ``forward`` declares: ``cache`` from
transformers 5.24 on, ``past_key_values`` before (5.24 keeps that name as a deprecated alias to be
removed in 5.40).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

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
        # decode position of layer i = position - position_shift[i] (positions renumbered at a stage)
        self.position_shift: list[int] = [0] * num_layers
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
    """One prefill's output. The schedule facts (per-layer visual / newline counts, text tokens) and
    the first decode position may be device tensors until first read: reading them is the host
    sync, and the pipeline reads them only after the timed stages."""

    hidden: torch.Tensor                 # (1, L_out, D) final-normed hidden states of surviving tokens
    index: torch.Tensor                  # (L_out,) prompt index of each surviving token
    cache: Optional[RaggedKVCache]
    next_position: Union[int, torch.Tensor]  # RoPE position of the first generated token
    stage_keeps: list[torch.Tensor]      # per stage: prompt indices of the visual tokens kept
    llm_visual: Any = field(default_factory=list)    # per layer: visual tokens (list, or lazy)
    llm_newline: Any = field(default_factory=list)   # per layer: newline tokens (list, or lazy)
    text_tokens: Union[int, torch.Tensor] = 0
    rope_axes: int = 1                   # 1: (L,) positions; 3: Qwen2.5-VL's (3, L) M-RoPE ids

    def decode_position(self, step: int) -> Union[int, torch.Tensor]:
        """RoPE position of decode step ``step`` without reading a lazy value (no host sync)."""
        return object.__getattribute__(self, "next_position") + step

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        if name in _LAZY and isinstance(value, (torch.Tensor, LayerCounts)):
            value = value.tolist() if isinstance(value, LayerCounts) else int(value)
            object.__setattr__(self, name, value)   # resolved once (one host sync)
        return value


class LayerCounts:
    """Per-layer counts held as one small device tensor per segment between stages; resolved to a
    list of ints with one sync when the schedule is read."""

    def __init__(self):
        self.segments: list[tuple[int, torch.Tensor]] = []   # (layers in the segment, 0-dim count)

    @classmethod
    def uniform(cls, count: torch.Tensor, layers: int) -> "LayerCounts":
        out = cls()
        out.append(layers, count)
        return out

    def append(self, layers: int, count: torch.Tensor) -> None:
        self.segments.append((layers, count))

    def tolist(self) -> list[int]:
        if not self.segments:
            return []
        values = torch.stack([c for _, c in self.segments]).tolist()
        return [v for (n, _), v in zip(self.segments, values) for _ in range(n)]


_LAZY = ("next_position", "llm_visual", "llm_newline", "text_tokens")


def cache_keyword(layer) -> str:
    """The keyword under which ``layer.forward`` takes the KV cache (see the module docstring)."""
    kind = type(layer)
    if kind not in _CACHE_KEYWORD:
        params = inspect.signature(layer.forward).parameters
        _CACHE_KEYWORD[kind] = "cache" if "cache" in params else "past_key_values"
    return _CACHE_KEYWORD[kind]


_CACHE_KEYWORD: dict[type, str] = {}


def module_device(module, default: torch.device) -> torch.device:
    """Where ``module`` computes: accelerate's execution device when it is dispatched (its weights may
    be offloaded to the meta device), else the device of its first parameter, else ``default``."""
    hook = getattr(module, "_hf_hook", None)
    dev = getattr(hook, "execution_device", None)
    if dev is not None:
        return torch.device(dev)
    p = next(module.parameters(), None)
    return p.device if p is not None and p.device.type != "meta" else default


class _OnDevice:
    """The per-layer inputs (positions, cos/sin, mask) copied once per device they are needed on."""

    def __init__(self, **tensors):
        self.tensors, self.copies = tensors, {}

    def set(self, **tensors) -> None:
        self.tensors.update(tensors)
        self.copies.clear()

    def on(self, dev: torch.device) -> dict:
        if dev not in self.copies:
            self.copies[dev] = {k: (v.to(dev) if isinstance(v, torch.Tensor) else
                                    tuple(t.to(dev) for t in v) if isinstance(v, tuple) else v)
                                for k, v in self.tensors.items()}
        return self.copies[dev]


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
    dev = module_device(layer, layer_input.device)
    cos, sin = cos.to(dev), sin.to(dev)
    alive = alive.to(dev) if alive is not None else None
    x = layer.input_layernorm(layer_input.to(dev))[0]                # (L, D)
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


def _stage_scores(lm, plan: InnerPlan, layer_idx: int, h: torch.Tensor, prev_input: torch.Tensor,
                  cos: torch.Tensor, sin: torch.Tensor, alive: Optional[torch.Tensor]) -> torch.Tensor:
    """Scores of a stage before layer ``layer_idx``: layer K-1 on its input, or (``rank_layer="next"``)
    layer K on its own input ``h``; only the needed query rows are projected either way."""
    if plan.rank_layer == "next":
        return score_visual(lm, layer_idx, h, cos, sin, alive, plan.scoring, plan.score_chunk)
    return score_visual(lm, layer_idx - 1, prev_input, cos, sin, alive, plan.scoring, plan.score_chunk)


def _renumber(lm, h: torch.Tensor, pos: torch.Tensor, alive: Optional[torch.Tensor], next_position: int):
    """PyramidDrop's renumbering after a stage: 1-D ids (1, L) -> 0..L'-1 over the live tokens (mask
    mode: a dead token repeats its live predecessor's id; it is masked as a key). Returns the ids,
    their RoPE cos/sin and the decode shift ``next_position - L'``."""
    if alive is None:
        new, live = torch.arange(pos.shape[1], device=pos.device, dtype=pos.dtype)[None], int(pos.shape[1])
    else:
        new, live = (torch.cumsum(alive.long(), 0) - 1).clamp_(min=0).to(pos.dtype)[None], int(alive.sum())
    cos, sin = lm.rotary_emb(h, new)
    return new, cos, sin, next_position - live


def _batched_positions(position_ids: torch.Tensor, L: int) -> torch.Tensor:
    """(L,) -> (1, L); (3, L) M-RoPE ids -> (3, 1, L), the layouts the rotary embeddings take."""
    if position_ids.dim() == 1 and position_ids.shape[0] == L:
        return position_ids.view(1, L)
    if position_ids.dim() == 2 and tuple(position_ids.shape) == (3, L):
        return position_ids.view(3, 1, L)
    raise ValueError(f"position_ids must be (L,) or (3, L) with L={L}, got {tuple(position_ids.shape)}")


def _next_position(pos: torch.Tensor) -> torch.Tensor:
    """RoPE position of the first generated token, a 0-dim device tensor (read lazily): last + 1
    (1-D), max + 1 on all axes (3-D)."""
    return pos[0, -1] + 1 if pos.dim() == 2 else pos.max() + 1


def decode_position_ids(position: Union[int, torch.Tensor], rope_axes: int, device) -> torch.Tensor:
    """Position ids of one decoded token per request: ``position`` an int, a device scalar or a (B,)
    tensor -> (B, 1), or (3, B, 1) for M-RoPE (all axes equal; transformers 5.17's Qwen2.5-VL rotary
    indexes three axes). A tensor stays on the device (no host sync)."""
    if isinstance(position, torch.Tensor):
        pos = position.to(device).reshape(-1, 1)
    else:
        pos = torch.full((1, 1), int(position), dtype=torch.long, device=device)
    return pos[None].expand(3, -1, -1) if rope_axes == 3 else pos


def decode_layers(lm, embeds: torch.Tensor, cache, position_ids: torch.Tensor,
                  layer_mask: Callable[[int, torch.dtype], Optional[torch.Tensor]]) -> torch.Tensor:
    """One decode step of (B, 1, D) ``embeds`` through every decoder layer of ``lm`` on ``cache``,
    the cache passed under the keyword the layers declare (:func:`cache_keyword`); ``layer_mask(li,
    dtype)``: the additive key mask of layer ``li`` or None. Returns the final-normed hidden states.
    The one decode loop of the runtime: :func:`llm_decode_step` (one request) and
    ``methods.generation.RuntimeBatch`` (a batch) differ only in their cache and masks."""
    cache_kw = cache_keyword(lm.layers[0]) if len(lm.layers) else "cache"
    shifts = getattr(cache, "position_shift", None)
    h, inputs, shift = embeds, None, None
    for li, layer in enumerate(lm.layers):
        layer_shift = shifts[li] if shifts is not None else 0
        if inputs is None or layer_shift != shift:   # renumbered stages place the token at L' + step
            shift = layer_shift
            pos = _shifted(position_ids, shift)
            inputs = _OnDevice(pos=pos, emb=lm.rotary_emb(embeds, pos))
        on = inputs.on(module_device(layer, embeds.device))   # a device map: each layer on its device
        mask = layer_mask(li, h.dtype)
        h = layer(h.to(on["pos"].device), attention_mask=None if mask is None else mask.to(on["pos"].device),
                  position_ids=on["pos"], use_cache=True, position_embeddings=on["emb"], **{cache_kw: cache})
    return lm.norm(h.to(module_device(lm.norm, h.device)))


def _shifted(position_ids: torch.Tensor, shift) -> torch.Tensor:
    """Decode position ids less a layer's renumbering shift: an int (one request) or a tuple with one
    shift per request (a batch); (B, 1) ids, or (3, B, 1) M-RoPE ids (never renumbered: shift 0)."""
    if not (any(shift) if isinstance(shift, tuple) else shift):
        return position_ids
    return position_ids - torch.as_tensor(shift, device=position_ids.device, dtype=position_ids.dtype).reshape(-1, 1)


def _rankable(kinds: torch.Tensor, plan: Optional[InnerPlan]) -> torch.Tensor:
    """Tokens a stage ranks: visual features, or (``span="visual"``) features and newlines."""
    if plan is not None and plan.span == "visual":
        return (kinds == VISUAL) | (kinds == NEWLINE)
    return kinds == VISUAL


@dataclass
class _Sequence:
    """The prompt as it runs through the layers: tokens still in the sequence and their attributes."""

    h: torch.Tensor                      # (1, L', D) hidden states
    pos: torch.Tensor                    # (1, L') or (3, 1, L') position ids
    kinds: torch.Tensor                  # (L',) TEXT / VISUAL / NEWLINE
    index: torch.Tensor                  # (L',) prompt index
    cos: torch.Tensor
    sin: torch.Tensor
    alive: Optional[torch.Tensor]        # mask mode: (L,) tokens not yet pruned; inplace: None
    mask: Optional[torch.Tensor]         # the additive attention mask of the next layer, or None
    shift: int = 0                       # decode shift of the layers from here on (renumbered positions)
    all_alive: bool = True               # host-side: no token masked yet (mask mode; decode needs no mask)


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
    device, L = inputs_embeds.device, inputs_embeds.shape[1]
    if plan is not None:
        plan.validate(num_layers)
    pos = _batched_positions(position_ids.to(device), L)
    kinds = kinds.to(device)
    cos, sin = lm.rotary_emb(inputs_embeds, pos)
    alive = torch.ones(L, dtype=torch.bool, device=device) if plan is not None and plan.mode == "mask" else None
    seq = _Sequence(inputs_embeds, pos, kinds, torch.arange(L, device=device), cos, sin, alive,
                    _prefill_mask(L, None, impl, inputs_embeds.dtype, device))
    cache = RaggedKVCache(num_layers) if use_cache else None
    stages = {s.layer: (i, s) for i, s in enumerate(plan.stages)} if plan is not None else {}
    counts = {VISUAL: LayerCounts(), NEWLINE: LayerCounts()}
    res = PrefillResult(hidden=inputs_embeds, index=seq.index, cache=cache, next_position=_next_position(pos),
                        stage_keeps=[], llm_visual=counts[VISUAL], llm_newline=counts[NEWLINE],
                        text_tokens=(kinds == TEXT).sum(), rope_axes=3 if pos.dim() == 3 else 1)
    n_entering = int(_rankable(kinds, plan).sum()) if plan is not None else 0  # a plan's keep counts need it
    cache_kw = cache_keyword(lm.layers[0]) if num_layers else "cache"
    boundaries = sorted({0, *stages, num_layers})
    prev_input = None
    inputs = _OnDevice(pos=seq.pos, emb=(seq.cos, seq.sin), mask=seq.mask)
    for li, layer in enumerate(lm.layers):
        if li in stages:
            seq.h = seq.h.to(device)
            si, stage = stages[li]
            keep_ids = forced_keeps[si] if forced_keeps is not None else None
            _run_stage(lm, plan, stage, li, seq, prev_input, n_entering, keep_ids, res, impl)
            inputs.set(pos=seq.pos, emb=(seq.cos, seq.sin), mask=seq.mask)
        if li in boundaries:  # the counts change only at a stage: one lazy pair per segment
            _record_counts(counts, seq, boundaries[boundaries.index(li) + 1] - li)
        on = inputs.on(module_device(layer, device))   # a device map: each layer's inputs on its device
        prev_input = seq.h = seq.h.to(on["pos"].device)
        seq.h = layer(seq.h, attention_mask=on["mask"], position_ids=on["pos"], use_cache=use_cache,
                      position_embeddings=on["emb"], **{cache_kw: cache})
        if cache is not None:
            cache.alive[li] = seq.alive.clone() if seq.alive is not None else None
            cache.position_shift[li] = seq.shift
            cache.all_alive[li] = seq.all_alive
    res.hidden = lm.norm(seq.h.to(module_device(lm.norm, seq.h.device)))
    res.index = seq.index
    return res


def _record_counts(counts: dict[int, LayerCounts], seq: _Sequence, layers: int) -> None:
    """Visual and newline tokens alive for the next ``layers`` layers, as device scalars."""
    for kind, per_layer in counts.items():
        is_kind = seq.kinds == kind
        per_layer.append(layers, (is_kind if seq.alive is None else is_kind & seq.alive).sum())


def _run_stage(lm, plan: InnerPlan, stage, li: int, seq: _Sequence, prev_input: torch.Tensor, n_entering: int,
               forced_keep: Optional[torch.Tensor], res: PrefillResult, impl: str) -> None:
    """One stage of ``plan`` before layer ``li``: score, keep (or replay ``forced_keep``), merge, then
    remove the rest from ``seq`` (inplace) or mask them (mask mode)."""
    device = seq.h.device
    cand_ok = _rankable(seq.kinds, plan)
    if seq.alive is not None:
        cand_ok = cand_ok & seq.alive
    cand = cand_ok.nonzero().squeeze(1)
    if forced_keep is not None:
        keep_set = torch.zeros(int(seq.index.max()) + 1, dtype=torch.bool, device=device)
        keep_set[forced_keep] = True
        top = cand[keep_set[seq.index[cand]]]
    else:
        scores = _stage_scores(lm, plan, li, seq.h, prev_input, seq.cos, seq.sin, seq.alive)
        scores = scores.to(device)
        n_keep = min(cand.numel(), inner_keep_count(n_entering, stage.keep, plan.rounding))
        top = cand[torch.topk(scores[cand], n_keep).indices.sort().values]
    dropped_ok = cand_ok.clone()
    dropped_ok[top] = False
    res.stage_keeps.append(seq.index[top].clone())
    if plan.merge != "drop":
        merged = merge_dropped(seq.h[0], top, dropped_ok.nonzero().squeeze(1), plan.merge, plan.blend_weight)
        seq.h = seq.h.clone()
        seq.h[0, top] = merged
    if seq.alive is not None:
        seq.alive = seq.alive & ~dropped_ok
        seq.mask = _prefill_mask(seq.h.shape[1], seq.alive, impl, seq.h.dtype, device)
        seq.all_alive = False   # a stage masks tokens (one that masks none only costs a zero mask)
    else:
        keep = (~dropped_ok).nonzero().squeeze(1)
        seq.h, seq.pos, seq.kinds, seq.index = seq.h[:, keep], seq.pos[..., keep], seq.kinds[keep], seq.index[keep]
        seq.cos, seq.sin = seq.cos[:, keep], seq.sin[:, keep]
        seq.mask = _prefill_mask(keep.numel(), None, impl, seq.h.dtype, device)
    if plan.positions == "renumber" and seq.pos.dim() == 2:  # 1-D ids; M-RoPE ids keep theirs
        seq.pos, seq.cos, seq.sin, seq.shift = _renumber(lm, seq.h, seq.pos, seq.alive, int(res.next_position))


def llm_decode_step(lm, embeds: torch.Tensor, cache: RaggedKVCache, position: Union[int, torch.Tensor],
                    rope_axes: int = 1) -> torch.Tensor:
    """One greedy decode step for a single new token at RoPE position ``position`` (``rope_axes=3``:
    Qwen2.5-VL's M-RoPE, the same position on all axes); returns the final-normed hidden state
    (1, 1, D). Each layer attends over its own (ragged) cache."""
    device = embeds.device

    def layer_mask(li: int, dtype: torch.dtype) -> Optional[torch.Tensor]:
        alive = cache.alive[li]
        if alive is None:   # without a mask a single query attends to the whole cache
            return None
        # mask mode (the correctness oracle): the layer's alive keys only
        alive = torch.cat([alive, torch.ones(1, dtype=torch.bool, device=device)])
        cache.alive[li] = alive
        return None if cache.all_alive[li] else _additive_mask(alive[None, :], dtype)

    return decode_layers(lm, embeds, cache, decode_position_ids(position, rope_axes, device), layer_mask)
