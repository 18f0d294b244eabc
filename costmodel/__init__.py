"""Analytic cost model of video LLMs: architectures, token schedules, FLOPs in two conventions
(``paper`` and ``exact``), KV/weight memory, inference and training peak memory, roofline latency
and training-step time, and fvcore/FlopCounterMode oracles
(``costmodel.oracles``, imported on demand because it needs torch/transformers/fvcore). It knows
token schedules and building blocks for them (``costmodel.nominal``), never method names: each
Method states its nominal schedule (``methods.base.Method.nominal_tokens``); ``methods.nominal``
looks one up by name."""
from .arch import ARCH_NAMES, ArchSpec, LLMSpec, VisionSpec, load_arch, load_config, tiny_arch, tiny_config
from .flops import (CostRow, CostTable, FLOPCOUNTER_KINDS, FVCORE_KINDS, decode_step_costs, exact_costs,
                    paper_flops, paper_table)
from .latency import (HARDWARE_NAMES, amdahl_ttft_bound, fit_efficiency, load_hardware, predict_latency,
                      predict_training_step)
from .memory import (activation_bytes_per_token, inference_peak_bytes, kv_bytes_per_token, kv_cache_bytes,
                     memory_report, param_counts, training_peak_bytes, weight_bytes)
from .schedule import TokenSchedule, VisionLoad, staged, uniform_vision

__all__ = [
    "ARCH_NAMES", "ArchSpec", "LLMSpec", "VisionSpec", "load_arch", "load_config", "tiny_arch", "tiny_config",
    "CostRow", "CostTable", "FLOPCOUNTER_KINDS", "FVCORE_KINDS", "decode_step_costs", "exact_costs",
    "paper_flops", "paper_table",
    "HARDWARE_NAMES", "amdahl_ttft_bound", "fit_efficiency", "load_hardware", "predict_latency",
    "predict_training_step",
    "activation_bytes_per_token", "inference_peak_bytes", "kv_bytes_per_token", "kv_cache_bytes", "memory_report",
    "param_counts", "training_peak_bytes", "weight_bytes",
    "TokenSchedule", "VisionLoad", "staged", "uniform_vision",
]
