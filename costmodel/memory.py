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


# ------------------------------------------------------------------------ activations and peaks
#: Bytes one token keeps for the backward pass in one layer (bf16 activations, flash/SDPA attention,
#: as transformers' layers save them), per element of the widths named. Measured at full width on the
#: CPU (replicate.harness.activation_memory: Molmo2-4B's so400m ViT block 35,720 B/token, its
#: Qwen3-4B decoder layer 185,128 B/token, transformers 5.25) and held within 3 % by tests/costmodel.
#: ViT block (LayerNorm, GELU MLP): both LayerNorms' inputs and outputs, q, k, v, attention output
#: (8 hidden-wide bf16 tensors = 16 h bytes) plus the MLP's pre- and post-activation (4 I bytes).
#: LLM layer (RMSNorm computed in fp32, q/k norm, RoPE, SwiGLU): each RMSNorm keeps an fp32 copy and
#: its bf16 output (6 bytes per element) on h, q and kv; RoPE keeps the rotated halves (4 bytes per
#: element of q and k); attention keeps q, k, v and the output; the SwiGLU MLP keeps gate, up, their
#: activation and product (8 I bytes).
def activation_bytes_per_token(arch: ArchSpec, part: str) -> float:
    """Bytes one token keeps for backward in one ``part`` ("vision" or "llm") layer, without
    checkpointing."""
    if part == "vision":
        v = arch.vision
        return 16 * v.hidden + 4 * v.intermediate + (4 * v.intermediate if v.mlp == "swiglu" else 0)
    if part == "llm":
        llm = arch.llm
        q, kv = llm.q_dim, llm.kv_dim
        norms = 12 * llm.hidden + (6 * (q + kv) if llm.qk_norm else 0)
        # q: RoPE halves 4, attention's q and output 4, o_proj's input 2; k: RoPE 4, attention 2; v: 2
        return norms + 10 * q + 8 * kv + 8 * llm.intermediate
    raise ValueError(f"part must be 'vision' or 'llm', got {part!r}")


def training_peak_bytes(arch: ArchSpec, schedule: TokenSchedule, dtype: str = "bf16",
                        checkpointing: bool = True, response_tokens: int = 16) -> dict[str, float]:
    """Peak memory of one training step (forward + backward, every weight trainable, no optimizer
    state: the step the harness times) on one device, batch 1.

    weights + their gradients (same dtype) + what the forward keeps for backward + the largest
    transient of backward. Without checkpointing every layer keeps ``activation_bytes_per_token``
    per token; with it (Molmo2's trainer: every ViT and LLM block, whole-layer) a layer keeps its
    input (``2 h`` bytes per token) and the backward recomputes one layer at a time, whose full
    activations (plus the gradient of its input and output) are the transient. Logits: the response
    tokens only (``response_tokens``; Molmo2's ``response_logits_only``), in fp32."""
    b = dtype_bytes(dtype)
    params = param_counts(arch).total
    vit_tokens = [load.total for load in schedule.vision]
    llm_tokens = list(schedule.llm_prefill)
    per = {"vision": activation_bytes_per_token(arch, "vision") * b / 2,
           "llm": activation_bytes_per_token(arch, "llm") * b / 2}
    width = {"vision": arch.vision.hidden * b, "llm": arch.llm.hidden * b}
    tokens = {"vision": vit_tokens, "llm": llm_tokens}
    kept = transient = 0.0
    for part in ("vision", "llm"):
        if checkpointing:
            kept += sum(tokens[part]) * width[part]
            transient = max(transient, max(tokens[part], default=0) * (per[part] + 2 * width[part]))
        else:
            kept += sum(tokens[part]) * per[part]
            transient = max(transient, max(tokens[part], default=0) * 2 * width[part])
    logits = response_tokens * arch.llm.vocab * (b + 4)
    out = {"weights": params * b, "gradients": params * b, "saved_activations": kept,
           "connector": connector_activation_bytes(arch, schedule, dtype), "backward_transient": transient,
           "logits": logits}
    out["total"] = sum(out.values())
    out["checkpointing"] = checkpointing
    return out


def connector_activation_bytes(arch: ArchSpec, schedule: TokenSchedule, dtype: str = "bf16") -> float:
    """What the projector keeps for backward (never checkpointed here): its input per patch (the
    concatenated ViT features of an attention-pooling connector, else one ViT width) and, per
    projector output token, the MLP's intermediate tensors (4 for SwiGLU, 2 otherwise)."""
    b = dtype_bytes(dtype)
    width = arch.pooling_attention[0] if arch.pooling_attention else arch.vision.hidden
    patches = schedule.frames * arch.vision.patches_per_frame
    mid = max(out for _, out in arch.projector[:-1]) if len(arch.projector) > 1 else 0
    return patches * width * b + schedule.projector_tokens * (4 if arch.projector_swiglu else 2) * mid * b


def inference_peak_bytes(arch: ArchSpec, schedule: TokenSchedule, dtype: str = "bf16",
                         tower_hidden_states: bool = True) -> dict[str, float]:
    """Peak memory of one request (encode, prefill, decode with a KV cache), batch 1: weights + the
    KV cache after decoding + the larger transient of the vision stage and the prefill.

    Vision: every tower layer's hidden states when they are all kept (``tower_hidden_states``: the
    adapters read a middle layer and the saliency signals from them) plus one layer's MLP
    intermediate. Prefill: at the longest layer, the hidden state and its residual, q, k, v and the
    MLP's gate, up and product (attention itself is flash/SDPA: no score matrix)."""
    b = dtype_bytes(dtype)
    v, llm = arch.vision, arch.llm
    vit = max((load.total for load in schedule.vision), default=0)
    states = (len(schedule.vision) + 1) if tower_hidden_states else 2
    vision = vit * (states * v.hidden + v.intermediate) * b
    longest = max(schedule.llm_prefill, default=0)
    prefill = longest * (2 * llm.hidden + llm.q_dim + 2 * llm.kv_dim + 3 * llm.intermediate) * b
    kv = kv_cache_bytes(arch, schedule, dtype)["after_decode_total"]
    out = {"weights": weight_bytes(arch, dtype)["total"], "kv_cache": kv, "vision_transient": vision,
           "prefill_transient": prefill}
    out["total"] = out["weights"] + kv + max(vision, prefill)
    return out
