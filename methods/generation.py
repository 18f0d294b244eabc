"""Text generation for a batch of requests: HF's generation options, sampling, and decode steps
that run the whole batch at once.

The prompt side of every request runs through :func:`methods.pipeline.run` (encode -> reduce ->
build_inputs -> prefill, ``decode_steps=0``), so a request in a batch runs exactly the stages,
pruning and kept sets it runs alone. Only the decode steps are shared: after the prefills, one
forward per step feeds the batch's last tokens together.

- Adapters whose LLM runs in :mod:`methods.runtime` (LLaVA-OneVision / LLaVA-Video, Qwen2.5-VL):
  the requests' ragged KV caches (each layer as long as that request kept) are left-padded per
  layer into one :class:`BatchedKVCache`, with a key mask that hides the padding and, in mask mode,
  the tokens a stage dropped; each step runs the decoder layers once for the batch.
- Molmo2 (its LLM runs through HF's forward): the requests' HF caches are left-padded into one
  HF cache and each step calls HF's forward with the padding mask.
- Any other adapter: ``decode_step`` per request (a loop).

Greedy batched output equals one request at a time (tests/api/test_generate.py); sampling draws
from one seeded generator per batch, so it depends on the batch's composition.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, fields
from typing import Optional, Sequence

import torch

from methods.runtime import RaggedKVCache

#: HF ``generate`` keyword arguments this runtime implements
GENERATION_OPTIONS = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "num_beams",
                      "eos_token_id", "seed")


@dataclass(frozen=True)
class GenerationConfig:
    """HF's generation options that apply here (HF names and defaults; ``seed`` seeds sampling)."""

    max_new_tokens: int = 16
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 50
    num_beams: int = 1
    eos_token_id: Optional[object] = None      # an id or a list of ids; None: the model's own
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an int >= 1, got {self.max_new_tokens!r}")
        if not isinstance(self.do_sample, bool):
            raise ValueError(f"do_sample must be True or False, got {self.do_sample!r}")
        if self.num_beams != 1:
            raise ValueError(f"num_beams={self.num_beams!r} is not supported: beam search would need a KV cache per "
                             f"beam of every pruned request; use num_beams=1 (greedy, or do_sample=True)")
        if self.do_sample:
            if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
                raise ValueError(f"temperature must be > 0 when do_sample=True, got {self.temperature!r}")
            if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
                raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
            if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
                raise ValueError(f"top_k must be an int >= 0 (0: off), got {self.top_k!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")

    @classmethod
    def from_kwargs(cls, **kwargs) -> "GenerationConfig":
        """From ``generate``'s keyword arguments; an unknown one is an error naming the supported."""
        unknown = sorted(set(kwargs) - set(GENERATION_OPTIONS))
        if unknown:
            raise ValueError(f"unsupported generation option(s) {unknown}; supported: {', '.join(GENERATION_OPTIONS)}")
        return cls(**kwargs)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def eos_ids(adapter, config: GenerationConfig) -> set[int]:
    """The ids that end a request: the option's, else the tokenizer's and the model's generation
    config's (HF's convention)."""
    value = config.eos_token_id
    if value is None:
        value = [getattr(adapter.tokenizer, "eos_token_id", None)]
        gen = getattr(getattr(adapter, "model", None), "generation_config", None)
        value += list(_as_list(getattr(gen, "eos_token_id", None)))
    return {int(v) for v in _as_list(value) if v is not None}


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def next_tokens(logits: torch.Tensor, config: GenerationConfig, generator: Optional[torch.Generator]) -> torch.Tensor:
    """(B,) next tokens from (B, vocab) logits: argmax, or a draw after temperature, top-k and
    top-p (HF's order of warpers)."""
    if not config.do_sample:
        return logits.argmax(dim=-1)
    scores = logits.float() / float(config.temperature)
    if config.top_k and config.top_k < scores.shape[-1]:
        kth = torch.topk(scores, config.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if config.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, dim=-1)               # ascending, as HF's TopPLogitsWarper
        cum = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        drop_sorted = cum <= 1 - config.top_p
        drop_sorted[:, -1] = False                                      # keep at least the best token
        scores = scores.masked_fill(drop_sorted.scatter(1, order, drop_sorted), float("-inf"))
    probs = scores.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


# ----------------------------------------------------------------------------------------- caches
def _additive(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, K) bool -> (B, 1, 1, K) additive key mask."""
    out = torch.zeros(valid.shape, dtype=dtype, device=valid.device)
    return out.masked_fill_(~valid, torch.finfo(dtype).min)[:, None, None, :]


def _left_pad(t: torch.Tensor, length: int) -> torch.Tensor:
    """(1, H, L, d) -> (1, H, length, d), zeros before."""
    pad = length - t.shape[-2]
    return t if pad == 0 else torch.cat([t.new_zeros(*t.shape[:-2], pad, t.shape[-1]), t], dim=-2)


class BatchedKVCache:
    """The ragged caches of B requests as one cache: per layer, keys and values left-padded to the
    longest request, and ``valid`` (B, K) marking real and alive entries. Implements the one method
    HF attention modules call, ``update(k, v, layer_idx)``."""

    def __init__(self, caches: Sequence[RaggedKVCache]):
        self.keys, self.values, self.valid = [], [], []
        for layer in range(len(caches[0].keys)):
            length = max(c.layer_length(layer) for c in caches)
            self.keys.append(torch.cat([_left_pad(c.keys[layer], length) for c in caches]))
            self.values.append(torch.cat([_left_pad(c.values[layer], length) for c in caches]))
            rows = []
            for c in caches:
                n = c.layer_length(layer)
                alive = c.alive[layer] if c.alive[layer] is not None else torch.ones(n, dtype=torch.bool)
                rows.append(torch.cat([torch.zeros(length - n, dtype=torch.bool), alive.cpu()]))
            self.valid.append(torch.stack(rows).to(self.keys[-1].device))

    def grow(self, layer: int) -> torch.Tensor:
        """Append the new token's (valid) column to ``layer``; returns the layer's (B, K + 1) mask."""
        v = self.valid[layer]
        self.valid[layer] = torch.cat([v, v.new_ones(v.shape[0], 1)], dim=1)
        return self.valid[layer]

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        self.keys[layer_idx] = torch.cat([self.keys[layer_idx], key_states], dim=-2)
        self.values[layer_idx] = torch.cat([self.values[layer_idx], value_states], dim=-2)
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self, layer_idx: int = 0) -> int:  # HF-compatible name
        return int(self.keys[layer_idx].shape[-2])


def _cache_keyword(fn) -> str:
    """``cache`` (transformers >= 5.2x) or ``past_key_values`` (earlier 5.x): what ``fn`` takes."""
    return "cache" if "cache" in inspect.signature(fn).parameters else "past_key_values"


def _positions(prefills, device) -> torch.Tensor:
    """(B,) RoPE positions of each request's first generated token (ints or device scalars)."""
    return torch.stack([torch.as_tensor(p.next_position).reshape(()) for p in prefills]).to(device)


def _rope_axes(adapter, prefills) -> int:
    """3 for M-RoPE text models (position ids (3, B, L): transformers 5.17's Qwen2.5-VL rotary needs
    all three axes), else 1; from the prefill when it says, else from the text config."""
    axes = getattr(prefills[0], "rope_axes", None)
    if axes:
        return int(axes)
    cfg = adapter.text_config
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    return 3 if "mrope_section" in rope else 1


class RuntimeBatch:
    """Decode steps of a batch on an adapter whose prefill is :mod:`methods.runtime`'s (``adapter.lm``
    the HF text model, ``adapter.model.lm_head``)."""

    def __init__(self, adapter, prefills):
        self.adapter = adapter
        self.cache = BatchedKVCache([p.cache for p in prefills])
        self.positions = _positions(prefills, adapter.device)
        self.rope_axes = _rope_axes(adapter, prefills)
        layers = adapter.lm.layers
        self.keyword = _cache_keyword(type(layers[0]).forward)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, step: int) -> torch.Tensor:
        """(B, vocab) logits after feeding ``tokens`` (B,) at decode step ``step``."""
        lm = self.adapter.lm
        h = self.adapter.embed_text(tokens.to(self.adapter.device)[:, None])
        pos = (self.positions + step)[:, None]
        if self.rope_axes == 3:        # M-RoPE (Qwen2.5-VL): the same position on all three axes, (3, B, 1)
            pos = pos[None].expand(3, -1, -1)
        cos, sin = lm.rotary_emb(h, pos)
        for li, layer in enumerate(lm.layers):
            mask = _additive(self.cache.grow(li), h.dtype)
            h = layer(h, attention_mask=mask, position_ids=pos, use_cache=True, position_embeddings=(cos, sin),
                      **{self.keyword: self.cache})
        return self.adapter.model.lm_head(lm.norm(h)[:, -1]).float()


class HFCacheBatch:
    """Decode steps of a batch on an adapter whose LLM runs through HF's forward with HF caches
    (Molmo2: ``adapter.model.model``); the caches are left-padded into one, masked by HF's padding mask."""

    def __init__(self, adapter, prefills):
        from transformers import DynamicCache

        self.adapter = adapter
        caches = [p.cache for p in prefills]
        length = max(c.get_seq_length() for c in caches)
        self.cache = DynamicCache()
        for layer in range(len(caches[0].layers)):
            keys = torch.cat([_left_pad(c.layers[layer].keys, length) for c in caches])
            values = torch.cat([_left_pad(c.layers[layer].values, length) for c in caches])
            self.cache.update(keys, values, layer)
        self.mask = torch.stack([torch.cat([torch.zeros(length - c.get_seq_length(), dtype=torch.long),
                                            torch.ones(c.get_seq_length(), dtype=torch.long)]) for c in caches])
        self.mask = self.mask.to(adapter.device)
        self.positions = _positions(prefills, adapter.device)
        self.keyword = _cache_keyword(type(adapter.model.model).forward)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, step: int) -> torch.Tensor:
        e = self.adapter.embed_text(tokens.to(self.adapter.device)[:, None])
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
        out = self.adapter.model.model(inputs_embeds=e, position_ids=(self.positions + step)[:, None],
                                       attention_mask=self.mask, use_cache=True, **{self.keyword: self.cache})
        return self.adapter.model.lm_head(out.last_hidden_state[:, -1]).float()


class OneByOne:
    """Decode steps of a batch as ``adapter.decode_step`` per request (adapters with another cache)."""

    def __init__(self, adapter, prefills):
        self.adapter, self.prefills = adapter, prefills

    def step(self, tokens: torch.Tensor, step: int) -> torch.Tensor:
        return torch.stack([self.adapter.decode_step(int(t), p, step) for t, p in zip(tokens, self.prefills)])


def stepper(adapter, prefills):
    """The batched decoder for these prefills (see the module docstring)."""
    from transformers.cache_utils import Cache

    if all(isinstance(p.cache, RaggedKVCache) for p in prefills) and hasattr(adapter, "lm"):
        return RuntimeBatch(adapter, prefills)
    if all(isinstance(p.cache, Cache) for p in prefills) and hasattr(getattr(adapter, "model", None), "model"):
        return HFCacheBatch(adapter, prefills)
    return OneByOne(adapter, prefills)


def decode_batch(adapter, prefills, first_logits: torch.Tensor, config: GenerationConfig,
                 generator: Optional[torch.Generator] = None) -> tuple[list[list[int]], float]:
    """Generated tokens of each request (the first from its prefill logits, then up to
    ``max_new_tokens - 1`` batched steps; a request stops after an end-of-sequence id) and the
    seconds the decode steps took."""
    stop = eos_ids(adapter, config)
    t0 = time.perf_counter()
    current = next_tokens(first_logits, config, generator).cpu()
    out = [[int(t)] for t in current]
    done = torch.tensor([int(t) in stop for t in current])
    if config.max_new_tokens > 1 and not bool(done.all()):
        batch = stepper(adapter, prefills)
        for step in range(config.max_new_tokens - 1):
            current = next_tokens(batch.step(current, step), config, generator).cpu()
            for i, t in enumerate(current):
                if not done[i]:
                    out[i].append(int(t))
            done |= torch.tensor([int(t) in stop for t in current])
            if bool(done.all()):
                break
    if str(adapter.device).startswith("cuda"):
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0
