"""Evaluators of the analytic tier: FLOPs, token reductions and ViT loads of the nominal schedules
(results/analytic/flops.csv and flops.json, rule analytic_flops) and the real Stage I-II output of
HoliTom (rule holitom_bench). Listed in replicate.evaluators with their tier and inputs."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .evaluator_base import Context, Measurement

ANALYTIC_FLOPS = "results/analytic/flops.csv"
ANALYTIC_SCHEDULES = "results/analytic/flops.json"
HOLITOM_BENCH = "results/bench/holitom_stages.json"


def _row(claim: Mapping[str, Any], ctx: Context):
    from .analytic import lookup, setting_from_claim

    setting = setting_from_claim(claim["setting"])
    return setting, lookup(ctx.csv(ANALYTIC_FLOPS), setting)


def _schedule_evidence(setting, row, ctx: Context) -> dict[str, Any]:
    sched = ctx.json(ANALYTIC_SCHEDULES).get(setting.key, {}).get("schedule", {})
    return {
        "result_file": ANALYTIC_FLOPS,
        "key": setting.key,
        "budget_rounding": row["budget_rounding"],
        "retention_effective": None if row["retention_effective"] != row["retention_effective"] else float(row["retention_effective"]),
        "llm_visual_per_layer": row["stages"],
        "vision_tokens_first_last_layer": [int(row["vit_tokens_full"]), int(row["vit_tokens_last"])],
        "frames": int(row["frames"]),
        "schedule_label": sched.get("label"),
        "schedule_notes": sched.get("notes"),
    }


def _candidate_evidence(claim: Mapping[str, Any], ctx: Context, value_of: Callable[[Any], float]) -> dict[str, Any]:
    """Values of the candidate configurations of a claim whose configuration is unpublished (rows the
    rule analytic_flops computed from the claim's `config_unpublished.candidates`)."""
    from .analytic import candidate_settings, lookup

    unpublished = claim.get("config_unpublished")
    if not unpublished:
        return {}
    frame = ctx.csv(ANALYTIC_FLOPS)
    values = [{"options": dict(s.options), "key": s.key, "value": value_of(lookup(frame, s))}
              for s in candidate_settings(claim)]
    return {"config_unpublished": {"note": unpublished["note"], "candidates": values}}


def paper_flops(claim, ctx):
    setting, row = _row(claim, ctx)
    ev = _schedule_evidence(setting, row, ctx)
    ev.update(_candidate_evidence(claim, ctx, lambda r: float(r["paper_tflops"])))
    ev.update(convention="paper (FastV formula, visual tokens, LLM prefill)",
              paper_tflops=float(row["paper_tflops"]),
              paper_tflops_global_round=float(row["paper_tflops_global_round"]),
              exact_prefill_tflops=float(row["exact_prefill_tflops"]),
              exact_total_tflops=float(row["exact_total_tflops"]))
    return Measurement(float(row["paper_tflops"]), ev)


def paper_flops_ratio(claim, ctx):
    setting, row = _row(claim, ctx)
    ev = _schedule_evidence(setting, row, ctx)
    ev.update(_candidate_evidence(claim, ctx, lambda r: 100 * float(r["paper_tflops"]) / float(r["vanilla_paper_tflops"])))
    t, v = float(row["paper_tflops"]), float(row["vanilla_paper_tflops"])
    ev.update(convention="paper", paper_tflops=t, vanilla_paper_tflops=v,
              ratio_pct=100 * t / v,
              ratio_pct_from_printed_precision=100 * round(t, 1) / round(v, 1),
              ratio_fraction=t / v)
    return Measurement(100 * t / v, ev)


def llm_input_reduction(claim, ctx):
    """Percent of the video feature tokens removed before LLM layer 0 (vs vanilla, same frames)."""
    setting, row = _row(claim, ctx)
    ev = _schedule_evidence(setting, row, ctx)
    kept, full = int(row["llm_visual_first"]), int(row["vanilla_visual"])
    ev.update(visual_tokens_entering_llm=kept, vanilla_visual_tokens=full,
              layer_averaged_kept_fraction=float(row["llm_visual_mean"]) / full)
    return Measurement(100 * (1 - kept / full), ev)


def vit_tail_reduction(claim, ctx):
    """Percent of ViT token slots removed in the last vision layer (packed bins vs all frames)."""
    setting, row = _row(claim, ctx)
    ev = _schedule_evidence(setting, row, ctx)
    first, last = int(row["vit_tokens_full"]), int(row["vit_tokens_last"])
    ev.update(vit_tokens_first_layer=first, vit_tokens_last_layer=last)
    return Measurement(100 * (1 - last / first), ev)


# ---------------------------------------------------------------------------- Stage I-II output
def bench_outer_reduction(claim, ctx):
    """Percent of the video tokens HoliTom's Stages I-II remove, from their real output (rule
    holitom_bench runs methods.holitom.holitom_reduce on a full-size input and counts what it kept).
    Not run when the bench ran at a smaller shape than the claim's setting (e.g. the smoke profile)."""
    s = claim["setting"]
    bench = ctx.json(HOLITOM_BENCH)
    shape = bench["shape"]
    want_frames, per_frame = int(s["frames"]), 196  # LLaVA-OV: 14 x 14 pooled tokens per frame
    got_per_frame = int(shape["grid"][0]) * int(shape["grid"][1])
    if int(shape["frames"]) != want_frames or got_per_frame != per_frame or int(shape["dim"]) != 3584:
        raise ValueError(f"bench ran at frames={shape['frames']}, grid={shape['grid']}, dim={shape['dim']}; the "
                         f"claim's setting is {want_frames} frames x {per_frame} tokens x 3584 (full size)")
    key = f"r{float(s['retention']):.2f}"
    if key not in bench["results"]:
        raise ValueError(f"no retention {key} in {HOLITOM_BENCH} (have {sorted(bench['results'])})")
    cell = bench["results"][key]
    kept, total = int(cell["kept_tokens"]), int(cell["input_tokens"])
    _, nominal = _row(claim, ctx)
    return Measurement(100.0 * (1 - kept / total), {
        "cost_model_prediction": 100.0 * (1 - int(nominal["llm_visual_first"]) / int(nominal["vanilla_visual"])),
        "cost_model_basis": f"nominal schedule {nominal['key']} ({nominal['budget_rounding']} budget)",
        "result_file": HOLITOM_BENCH, "kept_tokens": kept, "input_tokens": total,
        "kept_per_frame": cell.get("kept_per_frame"), "temporally_reduced": cell.get("temporally_reduced"),
        "tau": cell.get("tau"), "shape": shape, "input": bench.get("input"),
        "note": "real Stage I-II output (methods.holitom.holitom_reduce); input features are random with "
                "static windows (stated in the bench JSON), not a real video's SigLIP features"})
