"""Claim evaluators: one explicit list, keyed by the name a claim gives in `evaluator:`.

Each entry names the function, its tier and the result files it reads (``inputs``, relative to the
workflow's working directory: rule inputs of the verify jobs; verify.py marks a claim "not-run"
naming the missing file when one is absent). The functions live beside what they read:

- ``replicate.analytic_evaluators``: the analytic tier (nominal-schedule FLOPs and token counts),
- ``replicate.stts_evaluators``: STTS's measured packing and its gpu timings,
- ``replicate.cpu_gpu_evaluators``: the cpu tier (SynthVideoQA, cpu-bench timings) and gpu timings,
- ``replicate.paper.evaluators``: the paper tier (lmms-eval accuracy of real checkpoints, and the
  visual-token counts those runs recorded).

A new evaluator is a function ``(claim, ctx: Context) -> Measurement`` (``replicate.evaluator_base``)
added to ``LISTED`` below. Every listed evaluator is named by a claim in claims.yaml or in ``SPARE``
with the reason it is kept (tests/paper/test_evaluator_registry.py holds both ways).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import analytic_evaluators as A
from . import cpu_gpu_evaluators as CG
from . import stts_evaluators as S
from .evaluator_base import Context, Measurement
from .paper import evaluators as P
from .paper.cells import CELLS_INDEX


@dataclass(frozen=True)
class Evaluator:
    name: str
    tier: str
    fn: Callable[[Mapping[str, Any], Context], Measurement]
    inputs: tuple[str, ...] = ()


_FLOPS = (A.ANALYTIC_FLOPS, A.ANALYTIC_SCHEDULES)

LISTED: tuple[Evaluator, ...] = (
    Evaluator("paper_flops", "analytic", A.paper_flops, _FLOPS),
    Evaluator("paper_flops_ratio", "analytic", A.paper_flops_ratio, _FLOPS),
    Evaluator("llm_input_reduction", "analytic", A.llm_input_reduction, _FLOPS),
    Evaluator("vit_tail_reduction", "analytic", A.vit_tail_reduction, _FLOPS),
    Evaluator("bench_outer_reduction", "analytic", A.bench_outer_reduction, (A.HOLITOM_BENCH, *_FLOPS)),
    Evaluator("stts_measured_tokens_pruned", "analytic", S.stts_measured_tokens_pruned, (S.PACKING,)),
    Evaluator("stts_measured_vit_tail", "analytic", S.stts_measured_vit_tail, (S.PACKING,)),
    Evaluator("cpu_perf_kept", "cpu", CG.cpu_perf_kept, (CG.ACCURACY_CSV,)),
    Evaluator("cpu_accuracy", "cpu", CG.cpu_accuracy, (CG.ACCURACY_CSV,)),
    Evaluator("cpu_speedup_vs_model", "cpu", CG.cpu_speedup_vs_model, (CG.EFFICIENCY_CSV,)),
    Evaluator("gpu_ttft_speedup", "gpu", CG.gpu_ttft_speedup, (CG.GPU_SUMMARY,)),
    Evaluator("gpu_decode_speedup", "gpu", CG.gpu_decode_speedup, (CG.GPU_SUMMARY,)),
    Evaluator("gpu_ttft_part", "gpu", CG.gpu_ttft_part, (CG.GPU_SUMMARY,)),
    Evaluator("gpu_decode_throughput", "gpu", CG.gpu_decode_throughput, (CG.GPU_SUMMARY,)),
    Evaluator("gpu_peak_memory", "gpu", CG.gpu_peak_memory, (CG.GPU_SUMMARY,)),
    Evaluator("gpu_inference_speedup", "gpu", S.gpu_inference_speedup, (S.GPU_TIMING,)),
    Evaluator("gpu_training_speedup", "gpu", S.gpu_training_speedup, (S.GPU_TIMING,)),
    Evaluator("lmms_eval_accuracy", "paper", P.lmms_eval_accuracy, (CELLS_INDEX,)),
    Evaluator("lmms_eval_perf_kept", "paper", P.lmms_eval_perf_kept, (CELLS_INDEX,)),
    Evaluator("lmms_eval_accuracy_gain", "paper", P.lmms_eval_accuracy_gain, (CELLS_INDEX,)),
    Evaluator("lmms_eval_accuracy_drop", "paper", P.lmms_eval_accuracy_drop, (CELLS_INDEX,)),
    Evaluator("lmms_eval_runtime", "paper", P.lmms_eval_runtime, (CELLS_INDEX,)),
    Evaluator("lmms_eval_best_k", "paper", P.lmms_eval_best_k, (CELLS_INDEX,)),
    Evaluator("lmms_eval_layer_avg_ratio", "paper", P.lmms_eval_layer_avg_ratio, (CELLS_INDEX,)),
)

#: listed evaluators no claim names today, and why they stay
SPARE: dict[str, str] = {
    "vit_tail_reduction": "ViT-tail reduction of the nominal schedule (ceil(kept/729) bins); STTS's claims "
                          "use stts_measured_vit_tail (real packing), this one serves a claim on the "
                          "cost model's bound",
    "cpu_accuracy": "absolute SynthVideoQA accuracy of a cpu cell (percent); the cpu claims compare "
                    "perf_kept, this one serves a claim on one cell's accuracy",
}


def build_registry(evaluators) -> dict[str, Evaluator]:
    """name -> Evaluator; a duplicate name is an error naming it."""
    out: dict[str, Evaluator] = {}
    for e in evaluators:
        if e.name in out:
            raise ValueError(f"evaluator {e.name!r} is listed twice")
        out[e.name] = e
    return out


EVALUATORS: dict[str, Evaluator] = build_registry(LISTED)


def get(name: str | None) -> Evaluator | None:
    return EVALUATORS.get(name) if name else None


def inputs_for_tiers(tiers: set[str]) -> list[str]:
    """Result files every listed evaluator of the given tiers reads (for rule inputs)."""
    return sorted({p for e in EVALUATORS.values() if e.tier in tiers for p in e.inputs})
