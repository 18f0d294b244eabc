"""Evaluators of the cpu tier (SynthVideoQA analogues, cpu-bench timings) and the gpu-tier timings
(listed in replicate.evaluators).

Each reads a result file a rule wrote; a cell that could not run raises ValueError with its
reason, which verify.py turns into ``not-run``.

Comparison rules (the claims in claims.yaml state them too):

- ``cpu_perf_kept``: measured = perf_kept_pct of the cell (accuracy / vanilla accuracy * 100 on
  SynthVideoQA-test, same samples). Its claims are ``kind: analogue``: recorded with verdict
  ``analogue``, never compared with the paper's number. Not run when the vanilla accuracy is
  within 10 pp of chance (an under-trained model).
- ``cpu_speedup_vs_model``: measured = (measured TTFT speedup vs vanilla) / (the cost model's
  predicted TTFT speedup for the same recorded schedules, cpu-2core efficiencies fitted on the
  vanilla cell). A claim of this project (``paper: project``): reported value 1 (agreement with
  the model). Not run on cells timed with fewer than 3 repeats or no warm-up.
- ``gpu_ttft_speedup`` / ``gpu_decode_speedup``: vanilla TTFT / method TTFT and method decode
  tok/s / vanilla decode tok/s from results/gpu/efficiency/summary.json.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from .evaluator_base import Context, Measurement
from .harness.options import rtag

ACCURACY_CSV = "results/cpu/accuracy.csv"
EFFICIENCY_CSV = "results/cpu/efficiency.csv"
GPU_SUMMARY = "results/gpu/efficiency/summary.json"
#: perf_kept is only meaningful when vanilla is clearly above chance (else not-run, with the reason)
MIN_ABOVE_CHANCE = 0.10
#: cpu_speedup_vs_model judges medians of at least this many timed repeats (after a warm-up)
MIN_REPEATS = 3


def _tag(setting: Mapping[str, Any], method: str) -> str:
    if method == "vanilla":
        return "full"
    return rtag(setting.get("retention"))


def _row(frame, method: str, tag: str, source: str) -> dict:
    hit = frame[(frame["method"] == method) & (frame["rtag"] == tag)]
    if hit.empty:
        raise ValueError(f"no cell {method}/{tag} in {source} (add it to the config grid)")
    row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in hit.iloc[0].to_dict().items()}
    if row.get("status") != "ok":
        raise ValueError(f"cell {method}/{tag} did not run: {row.get('reason')}")
    return row


def cpu_perf_kept(claim, ctx: Context) -> Measurement:
    s = claim["setting"]
    row = _row(ctx.csv(ACCURACY_CSV), s["method"], _tag(s, s["method"]), ACCURACY_CSV)
    if row.get("perf_kept_pct") is None:
        raise ValueError("perf_kept_pct is empty: the vanilla cell did not run")
    van, chance = row.get("vanilla_accuracy"), row.get("chance_accuracy")
    if van is not None and chance is not None and van < chance + MIN_ABOVE_CHANCE:
        raise ValueError(f"vanilla accuracy {van:.3f} is within {MIN_ABOVE_CHANCE:.2f} of chance ({chance:.3f}): "
                         "a performance-kept ratio would compare noise (model under-trained)")
    return Measurement(float(row["perf_kept_pct"]), {
        "result_file": ACCURACY_CSV, "dataset": row["dataset"], "n": row["n"],
        "accuracy": row["accuracy"], "vanilla_accuracy": row["vanilla_accuracy"],
        "mean_visual_tokens_llm": row["mean_visual_tokens_llm"],
        "vanilla_visual_tokens": row["vanilla_visual_tokens"], "options_applied": row["options_applied"],
        "layers_scaled": row["layers_scaled"],
        "note": "SynthVideoQA analogue on a tiny LLaVA-OV trained here; not the paper's benchmarks"})


def cpu_accuracy(claim, ctx: Context) -> Measurement:
    s = claim["setting"]
    row = _row(ctx.csv(ACCURACY_CSV), s["method"], _tag(s, s["method"]), ACCURACY_CSV)
    return Measurement(100.0 * float(row["accuracy"]), {"result_file": ACCURACY_CSV, "dataset": row["dataset"],
                                                        "n": row["n"]})


def _timing_settings(row: Mapping[str, Any], ctx: Context, method: str, tag: str) -> tuple[int, int]:
    """(repeats, warmup) of a timed cell: from the table if it has them, else the cell's own JSON
    (results/cpu/efficiency/<method>/<rtag>.json, written by the same rule)."""
    if row.get("repeats") is not None:
        return int(row["repeats"]), int(row.get("warmup") or 0)
    cell = ctx.path(f"results/cpu/efficiency/{method}/{tag}.json")
    if not cell.exists():
        raise ValueError(f"cannot tell how cell {method}/{tag} was timed (no repeats column, no {cell.name})")
    data = ctx.json(str(cell.relative_to(ctx.results_root)))
    return int(data["repeats"]), int(data.get("warmup") or 0)


def cpu_speedup_vs_model(claim, ctx: Context) -> Measurement:
    s = claim["setting"]
    row = _row(ctx.csv(EFFICIENCY_CSV), s["method"], _tag(s, s["method"]), EFFICIENCY_CSV)
    meas, pred = row.get("speedup_ttft_measured"), row.get("speedup_ttft_predicted")
    if meas is None or pred is None:
        raise ValueError("speedups missing from the efficiency table (vanilla cell absent)")
    repeats, warmup = _timing_settings(row, ctx, s["method"], _tag(s, s["method"]))
    if int(repeats) < MIN_REPEATS or int(warmup) < 1:
        raise ValueError(f"timed with repeats={repeats}, warmup={warmup}: the +-25 % band needs medians of >= "
                         f"{MIN_REPEATS} repeats after a warm-up (one cold run varies by more than the band)")
    return Measurement(float(meas) / float(pred), {
        "result_file": EFFICIENCY_CSV, "ttft_speedup_measured": meas, "ttft_speedup_predicted": pred,
        "llm_speedup_measured": row.get("speedup_llm_measured"), "llm_speedup_predicted": row.get("speedup_llm_predicted"),
        "measured_ttft_s": row.get("measured_ttft_s"), "predicted_ttft_s": row.get("predicted_ttft_s"),
        "measured_split_s": {k: row.get(f"measured_{k}_s") for k in ("vision", "other", "llm")},
        "arch": row.get("arch"), "device": row.get("device"),
        "rule": "measured = measured TTFT speedup / cost-model TTFT speedup for the same recorded schedules "
                "(cpu-2core efficiencies fitted on vanilla); the paper's 1.88x (8x A800) is context only"})


# ---------------------------------------------------------------------------------- gpu tier
def _gpu_cell(ctx: Context, method: str, tag: str, arch: str | None = None) -> dict:
    data = ctx.json(GPU_SUMMARY)
    if data.get("missing"):
        raise ValueError(f"{GPU_SUMMARY}: {data['missing']}")
    hit = [c for c in data["cells"] if c["method"] == method and c["rtag"] == tag
           and (arch is None or c.get("arch") in (None, arch))]
    if not hit:
        raise ValueError(f"no gpu cell {method}/{tag} in {GPU_SUMMARY}")
    if hit[0]["status"] != "ok":
        raise ValueError(f"gpu cell {method}/{tag} did not run: {hit[0].get('reason')}")
    return hit[0]


def _gpu_pair(claim, ctx: Context):
    s = claim["setting"]
    return (_gpu_cell(ctx, s["method"], _tag(s, s["method"]), s.get("model")),
            _gpu_cell(ctx, s.get("baseline", "vanilla"), _tag(s, s.get("baseline", "vanilla")), s.get("model")))


def _measured_on(ctx: Context) -> dict:
    """Where and when the gpu results were measured: a committed run names itself."""
    data = ctx.json(GPU_SUMMARY)
    if data.get("measured_on"):
        return {"measured_on": data["measured_on"], "measurement_source": data.get("source")}
    prov = data.get("provenance") or {}
    return {"measured_on": f"measured here on {prov.get('device')} at {prov.get('timestamp')}"}


def _gpu_evidence(cell: dict, base: dict, ctx: Context) -> dict:
    return {"result_file": GPU_SUMMARY, "device": cell.get("device"), **_measured_on(ctx),
            "method_ms": {k: 1e3 * cell[f"measured_{k}_s"] for k in ("vision", "other", "llm", "ttft")},
            "baseline_ms": {k: 1e3 * base[f"measured_{k}_s"] for k in ("vision", "other", "llm", "ttft")},
            "method_decode_tok_s": cell["measured_decode_tokens_per_s"],
            "baseline_decode_tok_s": base["measured_decode_tokens_per_s"],
            "predicted_ttft_ms": 1e3 * cell["predicted_ttft_s"] if cell.get("predicted_ttft_s") else None}


def gpu_ttft_speedup(claim, ctx: Context) -> Measurement:
    cell, base = _gpu_pair(claim, ctx)
    return Measurement(base["measured_ttft_s"] / cell["measured_ttft_s"], _gpu_evidence(cell, base, ctx))


def gpu_decode_speedup(claim, ctx: Context) -> Measurement:
    cell, base = _gpu_pair(claim, ctx)
    return Measurement(cell["measured_decode_tokens_per_s"] / base["measured_decode_tokens_per_s"],
                       _gpu_evidence(cell, base, ctx))


def _part(claim_id: str) -> str:
    parts = claim_id.split("-")
    for p in ("vit", "other", "llm"):  # before "ttft": holitom-f-ttft-vit-<method> is the ViT part
        if p in parts:
            return {"vit": "vision"}.get(p, p)
    if "ttft" in parts:
        return "ttft"
    raise ValueError(f"cannot tell which TTFT part claim {claim_id!r} means (vit/other/llm/ttft)")


def gpu_ttft_part(claim, ctx: Context) -> Measurement:
    s = claim["setting"]
    cell = _gpu_cell(ctx, s["method"], _tag(s, s["method"]), s.get("model"))
    part = _part(claim["id"])
    return Measurement(1e3 * cell[f"measured_{part}_s"], {"result_file": GPU_SUMMARY, "part": part,
                                                          "device": cell.get("device"), "unit": "ms",
                                                          **_measured_on(ctx)})


def gpu_decode_throughput(claim, ctx: Context) -> Measurement:
    s = claim["setting"]
    cell = _gpu_cell(ctx, s["method"], _tag(s, s["method"]), s.get("model"))
    return Measurement(cell["measured_decode_tokens_per_s"], {"result_file": GPU_SUMMARY, "device": cell.get("device"),
                                                              **_measured_on(ctx)})


def gpu_peak_memory(claim, ctx: Context) -> Measurement:
    s = claim["setting"]
    cell = _gpu_cell(ctx, s["method"], _tag(s, s["method"]), s.get("model"))
    if not str(cell.get("peak_memory_unit", "")).startswith("GB"):
        raise ValueError(f"gpu cell has no CUDA peak memory (unit {cell.get('peak_memory_unit')!r})")
    return Measurement(float(cell["peak_memory"]), {"result_file": GPU_SUMMARY, "device": cell.get("device"),
                                                    "kind": "torch.cuda.max_memory_allocated of one request alone",
                                                    "predicted_for_this_gpu_gb": cell.get("predicted_peak_memory_gb"),
                                                    **_measured_on(ctx)})
