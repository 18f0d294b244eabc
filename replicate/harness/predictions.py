"""The cost model's prediction beside every efficiency measurement, and the speed-ups.

On CPU the per-stage efficiencies of the ``cpu-2core`` entry are fitted on the vanilla cell
(``costmodel.fit_efficiency``) and used to predict the others; on CUDA the entry matching the
device name is used unfitted. The cost model's "other" stage (projector + pooling) runs inside the
measured vision stage, so it is added to the predicted vision time; the methods' own reduction
time is not modelled (predicted other = 0, said so in each cell).
"""
from __future__ import annotations

from typing import Any

from costmodel.hardware import CPU_ENTRY
from costmodel.schedule import TokenSchedule, VisionLoad

UNIT_EFFICIENCY = {s: 1.0 for s in ("vision", "other", "prefill", "decode")}


def cell_schedule(cell: dict) -> TokenSchedule:
    """The recorded TokenSchedule of a measured cell (its ``schedule`` field, dataclass-asdict form)."""
    d = dict(cell["schedule"])
    d["vision"] = tuple(VisionLoad(**v) if isinstance(v, dict) else VisionLoad(*v) for v in d["vision"])
    return TokenSchedule(**d)


def stage_prediction(arch, sched: TokenSchedule, hardware: str, dtype: str, efficiency=None) -> dict:
    """Predicted seconds mapped onto the measured stages (cost-model other = projector + pooling,
    which runs inside the measured vision stage)."""
    from costmodel import predict_latency

    p = predict_latency(arch, sched, hardware, dtype=dtype, efficiency=efficiency)
    return {"vision_s": p["vision_s"] + p["other_s"], "llm_s": p["prefill_s"],
            "decode_s_per_token": p["decode_s_per_token"]}


def _fit_on_vanilla(ok: list[dict], arch, hardware: str, dtype: str) -> dict[str, float]:
    from costmodel import fit_efficiency

    van = [c for c in ok if c["method"] == "vanilla"]
    if not van:
        raise ValueError("fitting the cpu-2core efficiencies needs the vanilla cell")
    raw_v = stage_prediction(arch, cell_schedule(van[0]), hardware, dtype, UNIT_EFFICIENCY)
    mv = van[0]["measured"]
    return {"vision_s": fit_efficiency([mv["vision_s"]], [raw_v["vision_s"]]),
            "llm_s": fit_efficiency([mv["llm_s"]], [raw_v["llm_s"]]),
            "decode_s_per_token": fit_efficiency([1.0 / mv["decode_tokens_per_s"]], [raw_v["decode_s_per_token"]])}


def _finish_prediction(c: dict, fit: dict) -> None:
    p = c["predicted"]
    p["other_s"] = 0.0
    p["other_note"] = "the method's own reduction is not modelled by the cost model"
    p["ttft_s"] = p["vision_s"] + p["llm_s"]
    p["decode_tokens_per_s"] = 1.0 / p.pop("decode_s_per_token")
    m = c["measured"]
    c["measured_over_predicted"] = {
        "ttft": m["ttft_s"] / p["ttft_s"], "vision": m["vision_s"] / p["vision_s"],
        "llm": m["llm_s"] / p["llm_s"], "decode_tokens_per_s": m["decode_tokens_per_s"] / p["decode_tokens_per_s"]}
    c["prediction_fit"] = fit


def add_speedups(ok: list[dict]) -> None:
    """``speedup_vs_vanilla`` (measured and predicted) in every cell, when a vanilla cell exists."""
    van = [c for c in ok if c["method"] == "vanilla"]
    if not van:
        return
    v = van[0]
    for c in ok:
        c["speedup_vs_vanilla"] = {
            "ttft_measured": v["measured"]["ttft_s"] / c["measured"]["ttft_s"],
            "ttft_predicted": v["predicted"]["ttft_s"] / c["predicted"]["ttft_s"],
            "llm_measured": v["measured"]["llm_s"] / c["measured"]["llm_s"],
            "llm_predicted": v["predicted"]["llm_s"] / c["predicted"]["llm_s"],
            "decode_measured": c["measured"]["decode_tokens_per_s"] / v["measured"]["decode_tokens_per_s"],
            "decode_predicted": c["predicted"]["decode_tokens_per_s"] / v["predicted"]["decode_tokens_per_s"]}
        c["speedup_vs_vanilla"]["ttft_measured_over_predicted"] = (
            c["speedup_vs_vanilla"]["ttft_measured"] / c["speedup_vs_vanilla"]["ttft_predicted"])


def add_predictions(cells: list[dict], arch, *, hardware: str, dtype: str) -> dict[str, Any]:
    """Write ``predicted`` and ``measured_over_predicted`` into every cell; returns the fit info.
    CPU (``cpu-2core``): efficiencies fitted on the vanilla cell; otherwise the table's defaults."""
    fit: dict[str, Any] = {"hardware": hardware, "dtype": dtype}
    ok = [c for c in cells if c.get("status") == "ok"]
    if hardware == CPU_ENTRY:
        eff = _fit_on_vanilla(ok, arch, hardware, dtype)
        fit.update(method="fit_efficiency on the vanilla cell (one point per stage); predicted = roofline at "
                          "efficiency 1 / fitted efficiency", efficiency=eff,
                   note="an efficiency > 1 means the placeholder cpu-2core peak is below what this CPU reaches")
        for c in ok:
            raw = stage_prediction(arch, cell_schedule(c), hardware, dtype, UNIT_EFFICIENCY)
            c["predicted"] = {k: raw[k] / eff[k] for k in raw}
    else:
        fit.update(method="unfitted: costmodel default efficiencies of the hardware entry")
        for c in ok:
            c["predicted"] = stage_prediction(arch, cell_schedule(c), hardware, dtype)
    for c in ok:
        _finish_prediction(c, fit)
        c["predicted"]["peak_memory_gb"] = _peak_memory_gb(arch, c, dtype)
    add_speedups(ok)
    return fit


def _peak_memory_gb(arch, cell: dict, dtype: str) -> float:
    """The cost model's peak memory of the cell's recorded request (weights + KV + the larger transient)."""
    from costmodel.memory import inference_peak_bytes

    return inference_peak_bytes(arch, cell_schedule(cell), dtype)["total"] / 1e9
