"""Weight and KV-cache bytes of an architecture and a TokenSchedule (batch 1).

KV cache of one layer = 2 (K and V) · kv_heads · head_dim · bytes per element · tokens cached; with
GQA only the kv_heads count (Qwen2-7B: 2·4·128·2 B = 2 KiB per token per layer in bf16).
"""
from __future__ import annotations

from dataclasses import dataclass

from .arch import ArchSpec
from .schedule import TokenSchedule

DTYPE_BYTES: dict[str, float] = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5}


def dtype_bytes(dtype: str) -> float:
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


@dataclass(frozen=True)
class ParamCounts:
    vision: int
    projector: int
    llm_embed: int
    llm_layers: int  # all decoder layers + final norm
    lm_head: int

    @property
    def llm(self) -> int:
        return self.llm_embed + self.llm_layers + self.lm_head

    @property
    def total(self) -> int:
        return self.vision + self.projector + self.llm

    @property
    def llm_per_token_read(self) -> int:
        """Parameters read per decode step (the embedding is a gather of one row, not a read)."""
        return self.llm_layers + self.lm_head


def param_counts(arch: ArchSpec) -> ParamCounts:
    llm = arch.llm
    d, m = llm.hidden, llm.intermediate
    bias = llm.qkv_bias
    layer = (d * llm.q_dim + 2 * d * llm.kv_dim + llm.q_dim * d + 3 * d * m + 2 * d
             + (llm.q_dim + 2 * llm.kv_dim if bias else 0) + (2 * llm.head_dim if llm.qk_norm else 0))
    v = arch.vision
    D, I = v.hidden, v.intermediate
    mlp = 2 * D * I + I + D if v.mlp == "gelu2" else 3 * D * I + 2 * I + D
    norm = 2 * D if v.norm == "layernorm" else D
    pos = 0 if v.window_tokens else v.patches_per_frame * D  # Qwen2.5-VL's ViT uses RoPE, no table
    patch_bias = 0 if arch.family == "qwen2_5_vl" else D
    vision = (v.patch_in * D + patch_bias + pos + v.layers * (4 * D * D + 4 * D + mlp + 2 * norm)
              + (norm if v.post_norm else 0))
    projector = sum(a * b + (0 if arch.projector_swiglu else b) for a, b in arch.projector)
    if arch.family == "llava":
        projector += llm.hidden  # the image_newline embedding
    if arch.family == "qwen2_5_vl":
        projector += v.hidden  # the merger's ln_q weight
    if arch.pooling_attention:
        pool_in, attn, _ = arch.pooling_attention
        projector += 3 * (pool_in * attn + attn) + attn * D + D
    return ParamCounts(vision=vision, projector=projector, llm_embed=(llm.vocab + llm.extra_vocab) * d,
                       llm_layers=llm.layers * layer + d, lm_head=0 if llm.tied_embeddings else llm.vocab * d)


def weight_bytes(arch: ArchSpec, dtype: str = "bf16") -> dict[str, float]:
    b = dtype_bytes(dtype)
    p = param_counts(arch)
    return {"vision": p.vision * b, "projector": p.projector * b, "llm": p.llm * b, "total": p.total * b}


def kv_bytes_per_token(arch: ArchSpec, dtype: str = "bf16") -> float:
    """KV bytes one token adds to one layer."""
    return 2 * arch.llm.kv_heads * arch.llm.head_dim * dtype_bytes(dtype)


def kv_cache_bytes(arch: ArchSpec, schedule: TokenSchedule, dtype: str = "bf16",
                   decode_steps: int | None = None) -> dict[str, object]:
    """KV-cache bytes per layer at the end of prefill and after ``decode_steps`` generated tokens
    (default: the schedule's decode_steps)."""
    steps = schedule.decode_steps if decode_steps is None else decode_steps
    if steps < 0:
        raise ValueError(f"decode_steps must be >= 0, got {steps}")
    per_token = kv_bytes_per_token(arch, dtype)
    prefill = tuple(n * per_token for n in schedule.kv_lengths)
    after = tuple(b + steps * per_token for b in prefill)
    return {"per_layer_prefill": prefill, "per_layer_after_decode": after,
            "prefill_total": sum(prefill), "after_decode_total": sum(after), "decode_steps": steps}


def memory_report(arch: ArchSpec, schedule: TokenSchedule, dtype: str = "bf16") -> dict[str, float]:
    w = weight_bytes(arch, dtype)
    kv = kv_cache_bytes(arch, schedule, dtype)
    return {"weights_total": w["total"], "weights_llm": w["llm"], "weights_vision": w["vision"],
            "weights_projector": w["projector"], "kv_prefill": kv["prefill_total"],
            "kv_after_decode": kv["after_decode_total"], "decode_steps": kv["decode_steps"],
            "kv_bytes_per_token_layer": kv_bytes_per_token(arch, dtype)}
