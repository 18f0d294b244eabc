"""Independent FLOP counters that check the ``exact`` convention: fvcore and torch FlopCounterMode.

Both run HF models built from an architecture's config, full size on the meta device (shapes only:
the 7B LLM builds in ~0.02 s) or tiny with real CPU tensors.

What each oracle counts (and how ``exact`` rows line up, see flops.FVCORE_KINDS/FLOPCOUNTER_KINDS):
- fvcore counts MACs for linear/matmul/bmm/conv, ``5·numel`` for layer_norm and ``4·numel`` for
  upsample_bilinear2d. It has no handle for ``aten::scaled_dot_product_attention`` nor for
  ``aten::_convolution_mode`` (SigLIP's padding="valid" patch conv): we register both here (full
  n_q·n_k attention, as the kernels compute). It never counts softmax, activations, RMSNorm pieces
  or element-wise ops. It traces with torch.jit, so inputs must be tensors: a DynamicCache cannot be
  an input, so the decode wrapper takes the cached keys/values as tensors and builds the cache inside.
- FlopCounterMode counts 2 FLOPs per MAC for mm/addmm/bmm/conv and SDPA, nothing for norms,
  interpolation or element-wise ops. On CPU tensors SDPA dispatches to
  ``aten._scaled_dot_product_flash_attention_for_cpu`` which has no formula (counts 0): we pass one via
  ``custom_mapping`` (instance-scoped, no global registration). On meta tensors SDPA decomposes to bmm.
All results are returned as MACs (``macs``) and FLOPs (``flops`` = 2·MACs) so units never mix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .arch import ArchSpec, load_config

DEVICES = ("meta", "cpu")
COUNTERS = ("fvcore", "flopcounter")


@dataclass(frozen=True)
class OracleCount:
    counter: str
    macs: int
    by_op: dict[str, int]

    @property
    def flops(self) -> int:
        return 2 * self.macs


# ---- fvcore ---------------------------------------------------------------------------------
def _shape(value: Any) -> list[int] | None:
    from fvcore.nn.jit_handles import get_shape

    return get_shape(value)


def _sdpa_fvcore(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of q·kᵀ and p·v over all query-key pairs (GQA: key heads broadcast to query heads)."""
    q, k, v = (_shape(x) for x in inputs[:3])
    batch_heads = math.prod(q[:-2])
    return batch_heads * q[-2] * k[-2] * (q[-1] + v[-1])


def _conv_mode_fvcore(inputs: list[Any], outputs: list[Any]) -> int:
    w = _shape(inputs[1])
    out = _shape(outputs[0])
    return math.prod(out) * math.prod(w[1:])  # out elements x (C_in/groups · kernel)


FVCORE_EXTRA_HANDLES: dict[str, Callable[[list[Any], list[Any]], int]] = {
    "aten::scaled_dot_product_attention": _sdpa_fvcore,
    "aten::_convolution_mode": _conv_mode_fvcore,
}


def fvcore_count(module: nn.Module | Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor]) -> OracleCount:
    """fvcore FlopCountAnalysis of ``module(*inputs)`` (a callable is wrapped in a Module)."""
    from fvcore.nn import FlopCountAnalysis

    if not isinstance(module, nn.Module):
        module = _CallableModule(module)
    analysis = FlopCountAnalysis(module.eval(), tuple(inputs))
    analysis.set_op_handle(**FVCORE_EXTRA_HANDLES)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    with torch.no_grad():
        by_op = {k: int(v) for k, v in analysis.by_operator().items()}
    return OracleCount("fvcore", int(sum(by_op.values())), by_op)


class _CallableModule(nn.Module):
    def __init__(self, fn: Callable[..., torch.Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args)


# ---- FlopCounterMode ------------------------------------------------------------------------
def _sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    batch_heads = math.prod(query_shape[:-2])
    return 2 * batch_heads * query_shape[-2] * key_shape[-2] * (query_shape[-1] + value_shape[-1])


def flopcounter_mode(**kwargs: Any):
    """A FlopCounterMode that also counts CPU SDPA (pytorch #195460)."""
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops}
    return FlopCounterMode(display=False, custom_mapping=mapping, **kwargs)


def flopcounter_count(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> OracleCount:
    """Run ``fn(*args, **kwargs)`` under FlopCounterMode (no_grad); MACs = FLOPs / 2."""
    with torch.no_grad(), flopcounter_mode() as counter:
        fn(*args, **kwargs)
    by_op = {str(k): int(v) // 2 for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return OracleCount("flopcounter", int(counter.get_total_flops()) // 2, by_op)


# ---- model builders -------------------------------------------------------------------------
def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def _config_of(arch_or_config: str | dict[str, Any] | ArchSpec) -> dict[str, Any]:
    if isinstance(arch_or_config, str):
        return load_config(arch_or_config)
    if isinstance(arch_or_config, ArchSpec):
        return load_config(arch_or_config.name)
    return arch_or_config


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; allowed: {DEVICES}")


def build_text_model(config: dict[str, Any], device: str = "meta", attn: str = "sdpa",
                     lm_head: bool = False) -> nn.Module:
    """The LLM of a LLaVA-family config (Qwen2Model, or Qwen2ForCausalLM with ``lm_head``), random weights."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2Model

    _check_device(device)
    text = config["text_config"]
    if not text.get("model_type", "").startswith("qwen2"):
        raise ValueError(f"oracles build Qwen2 LLMs only, got model_type {text.get('model_type')!r}")
    tc = Qwen2Config(**{k: v for k, v in _clean(text).items() if k not in ("model_type", "architectures")})
    tc._attn_implementation = attn
    torch.manual_seed(0)
    with torch.device(device):
        return (Qwen2ForCausalLM if lm_head else Qwen2Model)(tc).eval()


def build_vision_tower(config: dict[str, Any], device: str = "meta", attn: str = "sdpa") -> nn.Module:
    """SigLIP tower of a LLaVA-family config (layers = those actually run), random weights."""
    from transformers import SiglipVisionConfig, SiglipVisionModel

    _check_device(device)
    vis = _clean(config["vision_config"])
    if vis.get("model_type") != "siglip_vision_model":
        raise ValueError(f"oracles build SigLIP towers only, got model_type {vis.get('model_type')!r}")
    layers = config.get("_video", {}).get("vision_layers_run", vis["num_hidden_layers"])
    vc = SiglipVisionConfig(**{k: v for k, v in vis.items() if k != "model_type"})
    vc.num_hidden_layers = layers
    vc._attn_implementation = attn
    torch.manual_seed(0)
    with torch.device(device):
        return SiglipVisionModel(vc).eval()


def _inputs(shape: tuple[int, ...], device: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if device == "meta":
        return torch.empty(shape, device="meta")
    return torch.randn(shape, generator=g)


_NO_MASK = {"full_attention": None}  # skips HF's mask builder (it calls .all(), which fails on meta)


class _Prefill(nn.Module):
    def __init__(self, model: nn.Module, lm_head: str = "none"):
        super().__init__()
        self.model = model
        self.lm_head = lm_head

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        if self.lm_head == "none":
            return self.model(inputs_embeds=embeds, attention_mask=_NO_MASK, use_cache=False).last_hidden_state
        keep = 1 if self.lm_head == "last" else 0  # HF: 0 keeps the logits of every token
        return self.model(inputs_embeds=embeds, attention_mask=_NO_MASK, use_cache=False,
                          logits_to_keep=keep).logits


class _DecodeStep(nn.Module):
    """One decode step; the cache arrives as tensors (k0, v0, k1, v1, ...) so fvcore can trace it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, embeds: torch.Tensor, position: torch.Tensor, *kv: torch.Tensor) -> torch.Tensor:
        from transformers import DynamicCache

        cache = DynamicCache()
        for layer in range(len(kv) // 2):
            cache.update(kv[2 * layer], kv[2 * layer + 1], layer)
        return self.model(inputs_embeds=embeds, position_ids=position, past_key_values=cache,
                          attention_mask=_NO_MASK, use_cache=True).last_hidden_state


def _run(counters: Sequence[str], module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, OracleCount]:
    bad = sorted(set(counters) - set(COUNTERS))
    if bad:
        raise ValueError(f"unknown counters {bad}; allowed: {COUNTERS}")
    out = {}
    if "fvcore" in counters:
        out["fvcore"] = fvcore_count(module, inputs)
    if "flopcounter" in counters:
        out["flopcounter"] = flopcounter_count(module, *inputs)
    return out


def oracle_llm_prefill(arch_or_config: str | dict[str, Any] | ArchSpec, tokens: int, device: str = "meta",
                       counters: Sequence[str] = COUNTERS, lm_head: str = "none") -> dict[str, OracleCount]:
    """Count one LLM prefill of ``tokens`` tokens (full attention); ``lm_head`` as in exact_costs."""
    from .flops import LM_HEAD_MODES

    if lm_head not in LM_HEAD_MODES:
        raise ValueError(f"unknown lm_head mode {lm_head!r}; allowed: {LM_HEAD_MODES}")
    cfg = _config_of(arch_or_config)
    model = build_text_model(cfg, device, lm_head=lm_head != "none")
    x = _inputs((1, tokens, cfg["text_config"]["hidden_size"]), device)
    return _run(counters, _Prefill(model, lm_head), (x,))


def oracle_llm_decode_step(arch_or_config: str | dict[str, Any] | ArchSpec, kv_len: int, device: str = "meta",
                           counters: Sequence[str] = COUNTERS) -> dict[str, OracleCount]:
    """Count one decode step over a cache of ``kv_len`` tokens per layer (no LM head)."""
    cfg = _config_of(arch_or_config)
    text = cfg["text_config"]
    model = build_text_model(cfg, device)
    heads = text["num_attention_heads"]
    hd = text.get("head_dim") or text["hidden_size"] // heads
    kvh = text.get("num_key_value_heads", heads)
    kv = tuple(_inputs((1, kvh, kv_len, hd), device) for _ in range(2 * text["num_hidden_layers"]))
    x = _inputs((1, 1, text["hidden_size"]), device)
    pos = torch.full((1, 1), kv_len, dtype=torch.long, device=device)
    return _run(counters, _DecodeStep(model), (x, pos, *kv))


def oracle_vision_tower(arch_or_config: str | dict[str, Any] | ArchSpec, frames: int, device: str = "meta",
                        counters: Sequence[str] = COUNTERS) -> dict[str, OracleCount]:
    """Count the SigLIP tower on ``frames`` frames (one 729-token sequence per frame for full size)."""
    cfg = _config_of(arch_or_config)
    tower = build_vision_tower(cfg, device)
    vis = cfg["vision_config"]
    size = vis["image_size"]
    x = _inputs((frames, vis.get("num_channels", 3), size, size), device)
    return _run(counters, _Tower(tower), (x,))


class _Tower(nn.Module):
    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower = tower

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.tower(pixel_values=pixels).last_hidden_state


def relative_gap(analytic: int, oracle: int) -> float:
    return abs(analytic - oracle) / max(oracle, 1)

