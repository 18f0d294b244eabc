"""What the workflow's rules do, as plain functions (the scripts in replicate/scripts/ are thin
wrappers that pass Snakemake's inputs/outputs/params here, so everything is testable without
Snakemake). Every output is written atomically (replicate.io)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import analytic, io
from .claims import claims_by_id
from .provenance import provenance
from .report import render_readme_table, render_report, summary
from .verify import verify_many


def _log(path: str | None, text: str) -> None:
    if path:
        io.write_text(path, text.rstrip() + "\n")


def analytic_flops(*, claims: Sequence[Mapping[str, Any]], grid: Sequence[Mapping[str, Any]], rounding: str,
                   csv_path: str, json_path: str, log_path: str | None = None,
                   config: Mapping[str, Any] | None = None) -> None:
    t0 = time.perf_counter()
    settings = analytic.grid_settings(grid) + analytic.claim_settings(claims)
    rows, schedules = analytic.compute_rows(settings, rounding)
    frame = analytic.flops_frame(rows)
    io.write_csv(csv_path, frame)
    io.write_json(json_path, {"provenance": provenance(config or {}), "budget_rounding": rounding,
                              "convention_note": "paper = FastV formula over visual tokens, LLM prefill, "
                                                 "reported in the papers' 'FLOPs' (multiply-adds); exact = "
                                                 "2 x MACs of every stage (causal attention)",
                              **{k: v for k, v in schedules.items()}})
    _log(log_path, f"{len(rows)} settings in {time.perf_counter() - t0:.2f} s")


def predictions(*, claims, hardware: str, dtype: str, rounding: str, csv_path: str,
                log_path: str | None = None, targets=None) -> None:
    """Per-claim predictions; ``targets`` (claims.yaml `predictions`, per paper) name the hardware,
    else every paper uses ``hardware``/``dtype``."""
    import pandas as pd

    if targets:
        rows = analytic.predict_claims(claims, targets, rounding)
    else:
        rows = analytic.predict_speedups(claims, hardware, dtype, rounding)
    io.write_csv(csv_path, pd.DataFrame(rows, columns=analytic.PREDICTION_COLUMNS))
    _log(log_path, f"{len(rows)} predictions on " + ", ".join(sorted({f"{r['hardware']}/{r['dtype']}" for r in rows})))


def exact_vs_paper(flops_csv: str, *, csv_path: str, md_path: str, log_path: str | None = None) -> None:
    table = analytic.exact_vs_paper(io.read_csv(flops_csv))
    io.write_csv(csv_path, table)
    head = ("# Exact vs paper FLOPs convention\n\n"
            "`paper`: FastV formula over visual tokens, LLM prefill only (the papers' TFLOPs). "
            "`exact`: GQA, SwiGLU, causal attention, newline/text tokens, vision tower, projector, pooling, "
            "LM head (2 FLOPs per MAC). The papers' formula counts one multiply-add as one operation, "
            "so most of the factor of about 2 in `prefill_exact_over_paper` is that convention; the rest is "
            "SwiGLU's third matrix and newline tokens minus GQA's narrower K/V and causal halving.\n\n")
    io.write_text(md_path, head + table.to_markdown(index=False) + "\n")
    _log(log_path, f"{len(table)} rows")


def verify_claims(*, ids: Sequence[str], claims_file: str, outputs: Sequence[str], config: Mapping[str, Any],
                  results_dir: str = ".", log_path: str | None = None, cuda: bool | None = None,
                  declared: Sequence[str] | None = None) -> list[dict]:
    """Verify `ids`; write each to the output named <id>.json, and all of them to all.json if listed.
    ``declared``: the rule's result inputs, the only files the evaluators may read."""
    t0 = time.perf_counter()
    registry = claims_by_id(claims_file)
    unknown = [i for i in ids if i not in registry]
    if unknown:
        raise KeyError(f"unknown claim id(s) {unknown[:5]}")
    by_name = {Path(p).name: p for p in outputs}
    results = verify_many([registry[i] for i in ids], results_dir=results_dir, config=config, cuda=cuda,
                          declared=declared)
    for res in results:
        target = by_name.get(f"{res['id']}.json")
        if target is None:
            raise KeyError(f"no output path for claim {res['id']!r} among {sorted(by_name)[:5]}...")
        io.write_json(target, res)
    if "all.json" in by_name:
        io.write_json(by_name["all.json"], results)
    _log(log_path, f"{len(results)} claims in {time.perf_counter() - t0:.2f} s")
    return results


def claims_report(all_json: str, *, report: str, summary: str, readme: str, headline: Sequence[str],
                  log_path: str | None = None, project: Sequence[str] = (), analogues: Sequence[str] = (),
                  claim_files: Sequence[str] = ()) -> None:
    """REPORT.md, summary.json and the README table from all.json; every claim file checked first
    (content digest, and equal to its all.json entry: a claim file edited or overwritten is refused)."""
    results = io.read_json(all_json)
    by_id = {r["id"]: r for r in results}
    for f in claim_files:
        if io.read_json(f) != by_id.get(Path(f).stem):
            raise io.ResultDigestError(f"result {f!r} differs from its entry in {all_json}; rule verify_all "
                                       f"rebuilds both: snakemake --cores all --forcerun {all_json}")
    io.write_text(report, render_report(results, headline=headline))
    io.write_json(summary, _summary(results))
    io.write_text(readme, render_readme_table(results, headline, project, analogues))
    _log(log_path, f"report of {len(results)} claims")


def _summary(results):
    return summary(results)
