"""Evaluators of the paper tier (benchmark accuracy of real checkpoints): ``lmms_eval_*``.

Listed in replicate.evaluators. Each reads the cell summaries the paper-tier rules wrote
(``results/paper/cells/.../summary.json``, indexed by ``results/paper/cells.json``). A cell that
is absent or failed raises ValueError naming the config key and path (or the cell's own error),
which verify.py turns into ``not-run``. Cells computed by the rehearsal (tiny random weights,
fixture benchmarks) carry ``evidence.rehearsal``: their verdicts prove the plumbing, not the papers.

``lmms_eval_layer_avg_ratio`` reads the visual-token counts of the same summaries instead of the
scores (the measured counterpart of Tango's rescaled pre-LLM ratio, docs/sources.md#tango).

Benchmark score: as the claim's evaluation protocol scores it (``headline_accuracy`` of each cell
summary, in percent; replicate/benchmarks/protocols.py): e.g. HoliTom's lmms-eval 0.3.0 averages
MVBench's 20 sub-task scores, each leaving empty replies out of its denominator. A claim's average is
the mean over its benchmarks; a suite (``stts-13tasks``) counts as the mean of its member benchmarks.
Where a cell cannot be scored offline as the paper scored it, the evidence says so
(``protocol_differs``): HoliTom's EgoSchema column is the 5,031-question set scored by the EgoSchema
server, and only the 500-question public subset has answers offline, so a claim on EgoSchema alone
is ``not-run`` (the subset's score in its evidence) and a claim averaging EgoSchema with other
benchmarks carries ``protocol differs: public subset`` beside its verdict.
"""
from __future__ import annotations

from typing import Any

from replicate.evaluator_base import Context, Measurement

from . import cells as C


class NotComparable(ValueError):
    """The claim's quantity cannot be measured as the paper measured it here; ``evidence`` holds what
    was measured instead (verify.py keeps it beside the not-run reason)."""

    def __init__(self, reason: str, evidence: dict[str, Any]):
        super().__init__(reason)
        self.evidence = evidence

REHEARSAL_LABEL = ("REHEARSAL: tiny random-weight checkpoints on fixture benchmarks in the real on-disk "
                   "layouts; proves the paper tier runs end to end, not the papers' numbers")

#: How each paper defines "performance kept" (the perf_kept claims), and where that comes from.
PERF_KEPT_DEFINITIONS: dict[str, dict[str, str]] = {
    "holitom": {
        "formula": "rounded_averages",
        "definition": "100 * Avg(method) / Avg(vanilla), each Avg the mean of the claim's benchmark scores "
                      "rounded to 0.1 as the table prints it (same benchmarks, model and frames)",
        "source": "docs/sources.md#holitom-main-table and #holitom-backbones-table (replicate/reported/"
                  "holitom_{main,backbones}.csv): the % column equals 100 x Avg / vanilla Avg of the printed, "
                  "rounded Avg column in 32 of 32 rows (tests/paper/test_perf_kept.py); the unrounded ratio "
                  "matches 22 of 32"},
    "tango": {
        "formula": "ratio_of_averages",
        "definition": "100 * mean(method's benchmark scores) / mean(vanilla's benchmark scores) (ratio of the "
                      "averages, unrounded); the rounded-averages variant and the mean of per-benchmark ratios "
                      "are in the evidence",
        "source": "docs/sources.md#claim-t1 (98.9 %, average over 4 benchmarks): Tango's formula is not in what "
                  "was read (its tables and text were not accessible)"},
    "stts": {
        "formula": "drop",
        "definition": "no perf-kept claim; accuracy drop = mean(vanilla) - mean(STTS) in pp (unrounded; the "
                      "difference of the averages rounded to 0.1 is in the evidence)",
        "source": "docs/sources.md#claim-s4: 'only a 0.7 % drop' with the averages 63.0 and 62.3: the text gives "
                  "the two averages, not whether the difference was taken before rounding"},
}


def perf_kept(paper: str, method_avg: float, vanilla_avg: float) -> float:
    """Performance kept (%) as ``paper`` computes it from the two benchmark averages."""
    formula = PERF_KEPT_DEFINITIONS.get(paper, PERF_KEPT_DEFINITIONS["tango"])["formula"]
    if formula == "rounded_averages":
        method_avg, vanilla_avg = round(method_avg, 1), round(vanilla_avg, 1)
    if vanilla_avg <= 0:
        raise ValueError(f"vanilla average is {vanilla_avg}: a performance-kept ratio is undefined")
    return 100 * method_avg / vanilla_avg


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
    detail, rehearsal, differs = {}, False, {}
    for cell in cells:
        s = _cell_value(cell, ctx)
        per_dataset.setdefault(cell.dataset, []).append(float(s["headline_accuracy"]))
        detail[cell.bench_tag] = {"score": s["headline_accuracy"], "n": s["n"], "summary": cell.summary_path,
                                  "release_score": (s.get("metrics") or {}).get("release_score"),
                                  "mean_visual_tokens_kept": s.get("mean_visual_tokens_kept")}
        rehearsal |= bool(s.get("rehearsal"))
        if s.get("protocol_differs"):
            differs[cell.bench_tag] = list(s["protocol_differs"])
    if not per_dataset:
        raise ValueError("the claim names no benchmark with a loader here")
    means = {d: sum(v) / len(v) for d, v in per_dataset.items()}
    avg = sum(means.values()) / len(means)
    return avg, {"average": avg, "per_benchmark": detail, "per_dataset": means, "rehearsal": rehearsal,
                 "suite_members": {d: len(v) for d, v in per_dataset.items() if len(v) > 1},
                 "protocol": cells[0].protocol if cells else None, "protocol_differs": differs}


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
    ev = {"result_file": C.CELLS_INDEX, "protocol": claim.get("protocol"), "method": method_ev, **extra}
    if base_ev is not None:
        ev["baseline"] = base_ev
    if method_ev.get("rehearsal") or (base_ev or {}).get("rehearsal"):
        ev["rehearsal"] = REHEARSAL_LABEL
    differs = {**(base_ev or {}).get("protocol_differs", {}), **method_ev.get("protocol_differs", {})}
    if differs:
        ev["protocol_differs"] = differs
    return ev


def _only_offline_substitutes(ev: dict[str, Any]) -> bool:
    """Every benchmark of the side is scored on a different question set than the paper's."""
    differs = ev.get("protocol_differs", {})
    return bool(ev["per_benchmark"]) and all(
        any("protocol differs: public subset" in d for d in differs.get(tag, [])) for tag in ev["per_benchmark"])


def lmms_eval_accuracy(claim, ctx: Context) -> Measurement:
    avg, ev = _side(claim, ctx, "method")
    evidence = _evidence(claim, ev, rule="mean over the claim's benchmarks of the protocol's score")
    if _only_offline_substitutes(ev):
        raise NotComparable(
            f"protocol differs: public subset: the paper's number is the full question set scored by the "
            f"benchmark's server; offline only the public subset can be scored ({avg:.2f} % there, in the "
            f"evidence), a different set", {**evidence, "subset_score": avg})
    return Measurement(avg, evidence)


def lmms_eval_perf_kept(claim, ctx: Context) -> Measurement:
    m_avg, m_ev = _side(claim, ctx, "method")
    v_avg, v_ev = _side({**claim, "setting": {**claim["setting"], "baseline": "vanilla"}}, ctx, "baseline")
    if v_avg <= 0:
        raise ValueError(f"vanilla average is {v_avg}: a performance-kept ratio is undefined")
    ratios = [100 * m_ev["per_dataset"][d] / v for d, v in v_ev["per_dataset"].items() if v > 0]
    definition = PERF_KEPT_DEFINITIONS.get(claim["paper"], PERF_KEPT_DEFINITIONS["tango"])
    return Measurement(perf_kept(claim["paper"], m_avg, v_avg), _evidence(
        claim, m_ev, v_ev, definition=definition, ratio_of_unrounded_averages=100 * m_avg / v_avg,
        ratio_of_rounded_averages=100 * round(m_avg, 1) / round(v_avg, 1) if round(v_avg, 1) > 0 else None,
        mean_of_per_benchmark_ratios=sum(ratios) / len(ratios) if ratios else None))


def lmms_eval_accuracy_gain(claim, ctx: Context) -> Measurement:
    m_avg, m_ev = _side(claim, ctx, "method")
    b_avg, b_ev = _side(claim, ctx, "baseline")
    return Measurement(m_avg - b_avg, _evidence(claim, m_ev, b_ev, rule="mean(method) - mean(baseline), pp"))


def lmms_eval_accuracy_drop(claim, ctx: Context) -> Measurement:
    m_avg, m_ev = _side(claim, ctx, "method")
    b_avg, b_ev = _side(claim, ctx, "baseline")
    return Measurement(b_avg - m_avg, _evidence(claim, m_ev, b_ev, definition=PERF_KEPT_DEFINITIONS["stts"],
                                                rule="mean(baseline) - mean(method), pp",
                                                drop_of_rounded_averages=round(b_avg, 1) - round(m_avg, 1)))


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
