"""Roofline latency on a named GPU, with a per-stage efficiency factor fitted from measurements.

time(stage) = max(FLOPs / peak, bytes / bandwidth) / efficiency(stage)
- vision, projector/pooling ("other") and LLM prefill are compute-bound in practice (thousands of
  tokens per weight read); their bytes are the weights read once.
- decode is memory-bound: every step reads the LLM weights (minus the embedding table) plus the KV
  cache of every layer.
Attention FLOPs use ``causal=True`` (flash/SDPA causal kernels skip the upper triangle).
The default efficiencies are ASSUMPTIONS (typical fractions of peak for bf16 inference), to be
replaced by ``fit_efficiency`` on measured timings (a `efficiency:` block in hardware.yaml).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import yaml

from .arch import ArchSpec
from .flops import exact_costs
from .memory import dtype_bytes, kv_bytes_per_token, param_counts
from .schedule import TokenSchedule

HARDWARE_FILE = Path(__file__).resolve().parent / "hardware.yaml"
LATENCY_STAGES = ("vision", "other", "prefill", "decode")
DEFAULT_EFFICIENCY: dict[str, float] = {
    "vision": 0.5,   # assumption: many short (729-token) sequences, MFU ~50 %
    "other": 0.3,    # assumption: projector GEMMs plus pooling/pruning kernels
    "prefill": 0.6,  # assumption: long-sequence GEMMs, MFU ~60 %
    "decode": 0.7,   # assumption: fraction of HBM bandwidth reached by GEMV + KV reads
}


@dataclass(frozen=True)
class Hardware:
    name: str
    peak_tflops_bf16: float
    hbm_tbps: float
    memory_gb: float
    source: str
    description: str = ""
    efficiency: dict[str, float] = field(default_factory=dict)

    @property
    def peak_flops(self) -> float:
        return self.peak_tflops_bf16 * 1e12

    @property
    def bandwidth(self) -> float:
        return self.hbm_tbps * 1e12


def hardware_table() -> dict[str, Hardware]:
    raw = yaml.safe_load(HARDWARE_FILE.read_text())
    return {name: Hardware(name=name, **spec) for name, spec in raw.items()}


HARDWARE_NAMES: tuple[str, ...] = tuple(yaml.safe_load(HARDWARE_FILE.read_text()))


def load_hardware(name: str | Hardware) -> Hardware:
    if isinstance(name, Hardware):
        return name
    table = hardware_table()
    if name not in table:
        raise ValueError(f"unknown hardware {name!r}; allowed: {', '.join(table)}")
    return table[name]


def _efficiency(hw: Hardware, override: dict[str, float] | None) -> dict[str, float]:
    eff = {**DEFAULT_EFFICIENCY, **hw.efficiency, **(override or {})}
    bad = {k: v for k, v in eff.items() if k not in LATENCY_STAGES or not 0 < v <= 1}
    if bad:
        raise ValueError(f"bad efficiency entries {bad}; stages {LATENCY_STAGES}, values in (0, 1]")
    return eff


def predict_latency(arch: ArchSpec, schedule: TokenSchedule, hardware: str | Hardware, dtype: str = "bf16",
                    efficiency: dict[str, float] | None = None) -> dict[str, float]:
    """Predicted seconds: vision_s, other_s (projector + pooling), prefill_s (LLM + last-token LM
    head), ttft_s (their sum) and decode_s_per_token (mean over the schedule's decode steps, or one
    step right after prefill when decode_steps is 0)."""
    hw = load_hardware(hardware)
    eff = _efficiency(hw, efficiency)
    b = dtype_bytes(dtype)
    params = param_counts(arch)
    table = exact_costs(arch, schedule, causal=True, lm_head="last", stages=("vision", "projector", "pooling",
                                                                             "prefill", "lm_head"))

    def roof(flops: float, nbytes: float, stage: str) -> float:
        return max(flops / hw.peak_flops, nbytes / hw.bandwidth) / eff[stage]

    vision_s = roof(table.total("vision"), params.vision * b, "vision")
    other_s = roof(table.total("projector") + table.total("pooling"), params.projector * b, "other")
    kv_write = sum(schedule.kv_lengths) * kv_bytes_per_token(arch, dtype)
    prefill_s = roof(table.total("prefill") + table.total("lm_head"),
                     params.llm_per_token_read * b + kv_write, "prefill")
    steps = max(schedule.decode_steps, 1)
    dec = exact_costs(arch, schedule.with_decode(steps), causal=True, stages=("decode",)).total("decode") / steps
    mean_kv = sum(schedule.kv_lengths) + arch.llm.layers * (steps + 1) / 2
    dec_bytes = params.llm_per_token_read * b + mean_kv * kv_bytes_per_token(arch, dtype)
    decode_s = roof(dec, dec_bytes, "decode")
    return {"vision_s": vision_s, "other_s": other_s, "prefill_s": prefill_s,
            "ttft_s": vision_s + other_s + prefill_s, "decode_s_per_token": decode_s,
            "decode_tokens_per_s": 1.0 / decode_s}


#: Forward passes a training step costs: the forward, a backward of twice its FLOPs (gradients with
#: respect to inputs and weights), and with activation checkpointing a second forward (recompute).
TRAIN_FORWARDS = {False: 3, True: 4}


def predict_training_step(arch: ArchSpec, schedule: TokenSchedule, hardware: str | Hardware, dtype: str = "bf16",
                          checkpointing: bool = True, efficiency: dict[str, float] | None = None) -> dict[str, float]:
    """Predicted seconds of one training step (forward + backward, every weight trainable, batch 1):
    the vision, projector/pooling and LLM forward FLOPs (LM head on the response tokens only,
    counted as the last token's), times 3, or 4 with checkpointing, at the stages' compute
    efficiencies. Compute-bound: thousands of tokens per weight read."""
    hw = load_hardware(hardware)
    eff = _efficiency(hw, efficiency)
    table = exact_costs(arch, schedule, causal=True, lm_head="last", stages=("vision", "projector", "pooling",
                                                                             "prefill", "lm_head"))
    k = TRAIN_FORWARDS[bool(checkpointing)]
    parts = {"vision_s": k * table.total("vision") / hw.peak_flops / eff["vision"],
             "other_s": k * (table.total("projector") + table.total("pooling")) / hw.peak_flops / eff["other"],
             "llm_s": k * (table.total("prefill") + table.total("lm_head")) / hw.peak_flops / eff["prefill"]}
    return {**parts, "step_s": sum(parts.values()), "forwards": k, "checkpointing": bool(checkpointing)}


def fit_efficiency(measured: Sequence[float], predicted: Sequence[float]) -> float:
    """Least-squares efficiency e for ``measured ≈ predicted / e``, where ``predicted`` are roofline
    times at efficiency 1 (same stage, several settings): e = Σp² / Σ(p·m)."""
    m, p = list(map(float, measured)), list(map(float, predicted))
    if len(m) != len(p) or not m:
        raise ValueError(f"measured and predicted need the same non-zero length, got {len(m)} and {len(p)}")
    if min(m) <= 0 or min(p) <= 0:
        raise ValueError("times must be positive")
    return sum(x * x for x in p) / sum(x * y for x, y in zip(p, m))


def amdahl_ttft_bound(vision_s: float, other_s: float, llm_s: float, llm_fraction_kept: float) -> float:
    """Best TTFT speed-up when only the LLM part shrinks to ``llm_fraction_kept`` of its time.

    HoliTom's figure: (500 + 45 + 1142) / (500 + 45 + 1142·f); with f → 0 the bound is 3.10x."""
    if not 0 <= llm_fraction_kept <= 1:
        raise ValueError(f"llm_fraction_kept must be in [0, 1], got {llm_fraction_kept!r}")
    if min(vision_s, other_s, llm_s) < 0:
        raise ValueError("times must be non-negative")
    total = vision_s + other_s + llm_s
    return total / (vision_s + other_s + llm_s * llm_fraction_kept)
