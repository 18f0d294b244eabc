"""Evaluators of the paper tier (benchmark accuracy of real checkpoints): ``lmms_eval_*``.

Listed in replicate.evaluators. Each reads the cell summaries the paper-tier rules wrote
(``results/paper/cells/.../summary.json``, indexed by ``results/paper/cells.json``). A cell that
is absent or failed raises ValueError naming the config key and path (or the cell's own error),
which verify.py turns into ``not-run``. Cells computed by the rehearsal (tiny random weights,
fixture benchmarks) carry ``evidence.rehearsal``: their verdicts prove the plumbing, not the papers.

``lmms_eval_layer_avg_ratio`` reads the visual-token counts of the same summaries instead of the
scores (the measured counterpart of Tango's rescaled pre-LLM ratio, docs/sources.md#tango).

Benchmark score: lmms-eval's headline per benchmark (MVBench and MLVU: mean over their tasks,
MLVU dev M-Avg; VideoMME without subtitles; EgoSchema's 500-question public subset; LongVideoBench
val). A claim's average is the mean over its benchmarks; a suite (``stts-13tasks``) counts as the
mean of its member benchmarks.
"""
from __future__ import annotations

from typing import Any

from replicate.evaluator_base import Context, Measurement

from . import cells as C

REHEARSAL_LABEL = ("REHEARSAL: tiny random-weight checkpoints on fixture benchmarks in the real on-disk "
                   "layouts; proves the paper tier runs end to end, not the papers' numbers")

#: How each paper defines "performance kept" (the perf_kept claims), and where that comes from.
PERF_KEPT_DEFINITIONS: dict[str, dict[str, str]] = {
    "holitom": {
        "definition": "100 * mean(method's benchmark scores) / mean(vanilla's benchmark scores), the same "
                      "benchmarks, model and frames (ratio of the averages)",
        "source": "docs/sources.md#claim-h2, #holitom-main-table 'Avg %' column: 57.9 / 58.4 = 99.1 %; every row of the main "
                  "table's % column equals its Avg / vanilla Avg"},
    "tango": {
        "definition": "100 * mean(method's benchmark scores) / mean(vanilla's benchmark scores) (ratio of the "
                      "averages); the mean of per-benchmark ratios is in the evidence",
        "source": "docs/sources.md#claim-t1 (98.9 %, average over 4 benchmarks); the formula is not in what was read, "
                  "so the HoliTom/FastVID convention is used"},
    "stts": {
        "definition": "no perf-kept claim; accuracy drop = mean(vanilla) - mean(STTS) in pp",
        "source": "docs/sources.md#claim-s4: 63.0 - 62.3 = 0.7 pp over 13 video QA tasks"},
}


def _cell_value(cell: C.Cell, ctx: Context) -> dict[str, Any]:
    """The cell's summary; ValueError naming the missing key / path or the cell's own failure."""
    if not C.buildable(cell, ctx.config):
        missing = [f"config key paths.{sec}.{name} is empty" for sec, name in
                   (("checkpoints", cell.checkpoint), ("datasets", cell.dataset))
                   if not C.path_configured(ctx.config, sec, name)]
        raise ValueError(f"cell {cell.dir} cannot be built: {'; '.join(missing)}")
    path = ctx.path(cell.summary_path)
    if not path.is_file():
        raise ValueError(f"cell summary {cell.summary_path} missing (is the claim in config paper.claims?)")
    summary = ctx.json(cell.summary_path)
    if summary.get("status") != "ok":
        raise ValueError(f"cell {cell.dir} {summary.get('status')}: {summary.get('reason')}")
    return summary


def _scores(cells: list[C.Cell], ctx: Context) -> tuple[float, dict[str, Any]]:
    """(average over the claim's benchmarks, evidence) of one side (method or baseline)."""
    per_dataset: dict[str, list[float]] = {}
    detail, rehearsal = {}, False
    for cell in cells:
        s = _cell_value(cell, ctx)
        per_dataset.setdefault(cell.dataset, []).append(float(s["headline_accuracy"]))
        detail[cell.bench_tag] = {"score": s["headline_accuracy"], "n": s["n"], "summary": cell.summary_path,
                                  "mean_visual_tokens_kept": s.get("mean_visual_tokens_kept")}
        rehearsal |= bool(s.get("rehearsal"))
    if not per_dataset:
        raise ValueError("the claim names no benchmark with a loader here")
    means = {d: sum(v) / len(v) for d, v in per_dataset.items()}
    avg = sum(means.values()) / len(means)
    return avg, {"average": avg, "per_benchmark": detail, "per_dataset": means, "rehearsal": rehearsal,
                 "suite_members": {d: len(v) for d, v in per_dataset.items() if len(v) > 1}}


def _side(claim, ctx: Context, which: str) -> tuple[float, dict[str, Any]]:
    try:
        if which == "method":
            return _scores(C.method_cells(claim, ctx.config), ctx)
        base = claim["setting"].get("baseline", "vanilla")
        if not C._runnable_method(base):
            raise ValueError(f"baseline {base!r} is not a registered method (the compared method is not known "
                             f"or not implemented here)")
        return _scores(C.baseline_cells(claim, ctx.config, base), ctx)
    except ValueError as exc:
        raise ValueError(f"{which} side: {exc}") from exc


def _evidence(claim, method_ev: dict, base_ev: dict | None = None, **extra) -> dict[str, Any]:
    ev = {"result_file": C.CELLS_INDEX, "method": method_ev, **extra}
    if base_ev is not None:
        ev["baseline"] = base_ev
    if method_ev.get("rehearsal") or (base_ev or {}).get("rehearsal"):
        ev["rehearsal"] = REHEARSAL_LABEL
    return ev


def lmms_eval_accuracy(claim, ctx: Context) -> Measurement:
    avg, ev = _side(claim, ctx, "method")
    return Measurement(avg, _evidence(claim, ev, rule="mean over the claim's benchmarks of lmms-eval's score"))


def lmms_eval_perf_kept(claim, ctx: Context) -> Measurement:
    m_avg, m_ev = _side(claim, ctx, "method")
    v_avg, v_ev = _side({**claim, "setting": {**claim["setting"], "baseline": "vanilla"}}, ctx, "baseline")
    if v_avg <= 0:
        raise ValueError(f"vanilla average is {v_avg}: a performance-kept ratio is undefined")
    ratios = [100 * m_ev["per_dataset"][d] / v for d, v in v_ev["per_dataset"].items() if v > 0]
    definition = PERF_KEPT_DEFINITIONS.get(claim["paper"], PERF_KEPT_DEFINITIONS["holitom"])
    return Measurement(100 * m_avg / v_avg, _evidence(
        claim, m_ev, v_ev, definition=definition,
        mean_of_per_benchmark_ratios=sum(ratios) / len(ratios) if ratios else None))


def lmms_eval_accuracy_gain(claim, ctx: Context) -> Measurement:
    m_avg, m_ev = _side(claim, ctx, "method")
    b_avg, b_ev = _side(claim, ctx, "baseline")
    return Measurement(m_avg - b_avg, _evidence(claim, m_ev, b_ev, rule="mean(method) - mean(baseline), pp"))


def lmms_eval_accuracy_drop(claim, ctx: Context) -> Measurement:
    m_avg, m_ev = _side(claim, ctx, "method")
    b_avg, b_ev = _side(claim, ctx, "baseline")
    return Measurement(b_avg - m_avg, _evidence(claim, m_ev, b_ev, definition=PERF_KEPT_DEFINITIONS["stts"],
                                                rule="mean(baseline) - mean(method), pp"))


def lmms_eval_runtime(claim, ctx: Context) -> Measurement:
    """``...-gpu-runtime-s``: seconds inside the model requests summed over the cell's samples;
    ``...-total-s``: the shards' wall seconds summed (video decoding and loading included). The
    paper ran lmms-eval on 8x A800 (docs/sources.md#claim-t3): compare on the same device count."""
    cells = C.method_cells(claim, ctx.config)
    summaries = [_cell_value(c, ctx) for c in cells]
    kind = "gpu_runtime" if "gpu-runtime" in claim["id"] else "total"
    key = "model_seconds" if kind == "gpu_runtime" else "shard_seconds"
    value = sum(float(s[key]) for s in summaries)
    ev = {"result_file": C.CELLS_INDEX, "kind": kind, "field": key, "devices": sorted({s.get("device") for s in summaries}),
          "n_samples": sum(s["n"] for s in summaries), "summaries": [c.summary_path for c in cells]}
    if any(s.get("rehearsal") for s in summaries):
        ev["rehearsal"] = REHEARSAL_LABEL
    return Measurement(value, ev)


def lmms_eval_best_k(claim, ctx: Context) -> Measurement:
    scores, rehearsal = {}, False
    for k, cells in C.best_k_cells(claim, ctx.config).items():
        avg, ev = _scores(cells, ctx)
        scores[k] = avg
        rehearsal |= ev["rehearsal"]
    best = max(scores, key=lambda k: (scores[k], -k))  # ties: the shallower K (cheaper)
    ev = {"result_file": C.CELLS_INDEX, "scores": scores, "rule": "argmax over K of the benchmark average"}
    if rehearsal:
        ev["rehearsal"] = REHEARSAL_LABEL
    return Measurement(float(best), ev)


#: What ``lmms_eval_layer_avg_ratio`` counts, and where each part comes from.
LAYER_AVG_DEFINITION = {
    "definition": "100 * mean over the claim's benchmarks of the method cells' mean_visual_tokens_layer_avg "
                  "/ the same mean of the vanilla cells' mean_visual_tokens_kept (same checkpoint, frames, "
                  "benchmarks); per sample, layer_avg = mean over LLM layers of the video feature tokens "
                  "entering the layer, kept = those entering layer 0",
    "newlines": "grid newline tokens are not counted on either side (costmodel/schedule.py: llm_visual counts "
                "feature tokens only, methods/runtime/llm.py counts kinds == VISUAL), as in the papers' FLOPs "
                "convention (docs/sources.md#flops-convention: LLaVA-Video n = 64 x 169, newlines not counted); the released "
                "intra-LLM stage still ranks newlines with the features and keeps round(0.5 x span) of both "
                "(methods/tango.py behaviour C), so the feature share kept from layer K on moves with how many "
                "newlines it keeps",
    "source": "docs/sources.md#tango-intra-llm: r_pre = 28 r / (K + (28 - K) p), K = 18, p = 0.5, 'so that "
              "the layer-averaged token ratio equals the target r'",
}
#: Tango's accuracy tables were not accessible (docs/sources.md#tango-stts-results): no reported score to set beside ours
TANGO_VIDEO_REPORTED_ACCURACY = "not accessible (docs/sources.md#tango-stts-results: Tango's main tables were not read)"


def _token_mean(cells: list[C.Cell], ctx: Context, key: str) -> tuple[float, dict[str, float]]:
    """(mean over datasets of the cells' summary ``key``, per bench tag); ValueError naming key and path."""
    per_dataset: dict[str, list[float]] = {}
    detail = {}
    for cell in cells:
        value = _cell_value(cell, ctx).get(key)
        if value is None:
            raise ValueError(f"cell summary {cell.summary_path} has no {key} (written by replicate/paper/shard.py "
                             f"summarise_cell from the samples' recorded schedules)")
        per_dataset.setdefault(cell.dataset, []).append(float(value))
        detail[cell.bench_tag] = float(value)
    if not per_dataset:
        raise ValueError("the claim names no benchmark with a loader here")
    means = [sum(v) / len(v) for v in per_dataset.values()]
    return sum(means) / len(means), detail


def _side_tokens(which: str, cells: list[C.Cell], ctx: Context, key: str) -> tuple[float, dict[str, float]]:
    try:
        return _token_mean(cells, ctx, key)
    except ValueError as exc:
        raise ValueError(f"{which} side: {exc}") from exc


def lmms_eval_layer_avg_ratio(claim, ctx: Context) -> Measurement:
    """Layer-averaged visual-token ratio (%) of the method's cells against vanilla's full count, from the
    real runs' summaries; the two sides' benchmark scores ride along in the evidence."""
    vanilla_claim = {**claim, "setting": {**claim["setting"], "baseline": "vanilla"}}
    m_cells = C.method_cells(claim, ctx.config)
    layer_avg, layer_detail = _side_tokens("method", m_cells, ctx, "mean_visual_tokens_layer_avg")
    entering, _ = _side_tokens("method", m_cells, ctx, "mean_visual_tokens_kept")
    full, full_detail = _side_tokens("baseline", C.baseline_cells(vanilla_claim, ctx.config, "vanilla"), ctx,
                                     "mean_visual_tokens_kept")
    if full <= 0:
        raise ValueError(f"vanilla cells keep {full} visual tokens: a token ratio is undefined")
    m_avg, m_ev = _side(claim, ctx, "method")
    v_avg, v_ev = _side(vanilla_claim, ctx, "baseline")
    return Measurement(100 * layer_avg / full, _evidence(
        claim, m_ev, v_ev, definition=LAYER_AVG_DEFINITION,
        tokens={"method_layer_avg": layer_avg, "method_entering_llm": entering, "vanilla": full,
                "method_layer_avg_per_benchmark": layer_detail, "vanilla_per_benchmark": full_detail},
        pre_llm_ratio_pct=100 * entering / full,
        method_options=(_cell_value(m_cells[0], ctx).get("options") or {}).get("applied"),
        accuracy={"method": m_avg, "vanilla": v_avg, "perf_kept_pct": 100 * m_avg / v_avg if v_avg > 0 else None,
                  "reported": TANGO_VIDEO_REPORTED_ACCURACY if claim["paper"] == "tango" else "not claimed"}))
