"""HoliTom sweeps and tables: which cells each tier runs, and the data of the regenerated tables.

Everything here is data assembly (pandas frames from result files a rule wrote); rendering is
``figures.holitom``. Rules: ``replicate/rules/holitom.smk``.

Sweeps (docs/sources.md#holitom, #holitom-figures), config section ``holitom:``:

- retention sweep r in {0.10, 0.15, 0.20, 0.25} for HoliTom and HoliTom (w/o M), tau the method's
  default (0.65 at r <= 0.10, 0.80 otherwise, the official scripts' values) written beside each row;
- Stage III sweeps ("vs FastV" figure): K in {2, 7, 14, 18, 21} at R = 0.5 and R in {0.3 .. 0.7} at
  K = 14 (R is the fraction merged away), at the pre-LLM retention ``sweep_retention``;
- frames sweep 16/32/64/128 for HoliTom (w/o M) and vanilla at ``frames_retention`` (not stated in the
  paper; 0.20 assumed: HoliTom (w/o M) at 32 frames there, 58.5, equals its 15 % / 20 % rows, not 10 %).

Analytic tier: FLOPs of the nominal schedules on LLaVA-OV-7B (``replicate.analytic.compute_rows``).
cpu tier: accuracy cells on the tiny SynthVideoQA model (``run_accuracy_cell``), K scaled to its
depth (paper K and applied K both recorded). Cells identical to the cpu grid's (HoliTom at
K = 18, R = 0.5, running-pairwise merge, no option override) are *read* from
``results/cpu/accuracy/holitom/<rtag>.json``, never recomputed.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from methods.paper_options import HOLITOM_INNER_K as PAPER_K
from methods.paper_options import HOLITOM_INNER_R as PAPER_R
from methods.paper_options import HOLITOM_MERGE as OFFICIAL_MERGE
from replicate.harness.options import rtag

MERGE_LABELS = {"running-pairwise": "running-pairwise (official)",
                "mean": "mean (vectorised; Tango-style re-implementation)"}
BENCHES = ("mvbench", "egoschema", "longvideobench", "videomme", "avg")
MODEL_SHORT = {"llava-onevision-72b": "ov72b", "llava-video-7b": "video7b"}
SYNTH_LABEL = "SynthVideoQA (cpu tier, tiny model: an analogue, not the paper's benchmarks)"

def settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``holitom:`` config section, keys it leaves out (nested ``cpu`` too) at the schema's
    defaults (replicate.configuration.with_defaults: the one home of the sweeps' defaults)."""
    from replicate.configuration import with_defaults

    return with_defaults({"holitom": dict(config.get("holitom") or {})})["holitom"]


def default_tau(retention: Optional[float]) -> Optional[float]:
    """The tau HoliTom uses when none is given (methods.holitom.HoliTomConfig.effective_tau)."""
    if retention is None:
        return None
    from methods.holitom import HoliTomConfig

    return HoliTomConfig(retention=float(retention)).effective_tau



# ----------------------------------------------------------------------------- analytic tier
def analytic_settings(h: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(sweep, replicate.analytic.Setting) pairs of every sweep (vanilla baselines included)."""
    from replicate.analytic import Setting, arch_of

    model = h["model"]
    F = int(arch_of(model).default_frames)
    out: list[tuple[str, Any]] = [("retention", Setting(model, "vanilla", F, None))]
    for r in h["retentions"]:
        out.append(("retention", Setting(model, "holitom-wo-m", F, float(r))))
        out.append(("retention", Setting(model, "holitom", F, float(r), (("k", PAPER_K), ("r", PAPER_R)))))
    rs = float(h["sweep_retention"])
    for k in h["k_sweep"]:
        out.append(("k", Setting(model, "holitom", F, rs, (("k", int(k)), ("r", float(h["k_sweep_r"]))))))
    for r in h["r_sweep"]:
        out.append(("r", Setting(model, "holitom", F, rs, (("k", int(h["r_sweep_k"])), ("r", float(r))))))
    for frames in h["frames"]:
        for m in h["frames_methods"]:
            opts = (("k", PAPER_K), ("r", PAPER_R)) if m == "holitom" else ()
            fr = float(h["frames_retention"])
            out.append(("frames", Setting(model, m, int(frames), None if m == "vanilla" else fr, opts)))
    return out


ANALYTIC_COLUMNS = ["sweep", "model", "method", "frames", "retention", "tau", "k", "r", "paper_tflops",
                    "vanilla_paper_tflops", "paper_ratio_pct", "llm_visual_first", "llm_visual_last", "stages",
                    "exact_prefill_tflops", "budget_rounding", "key", "tier"]


def analytic_sweep_table(h: Mapping[str, Any], rounding: str = "per_frame_ceil"):
    """One row per (sweep, setting): paper-convention FLOPs (T) of the nominal schedule, the tau the
    method would use at that retention, and K/R (None where Stage III is off)."""
    import pandas as pd

    from replicate.analytic import compute_rows

    pairs = analytic_settings(h)
    rows, _ = compute_rows([s for _, s in pairs], rounding)
    by_key = {r["key"]: r for r in rows}
    out = []
    for sweep, s in pairs:
        r = by_key[s.key]
        opts = dict(s.options)
        out.append({"sweep": sweep, "model": s.model, "method": s.method, "frames": s.frames,
                    "retention": s.retention, "tau": default_tau(s.retention) if s.method != "vanilla" else None,
                    "k": opts.get("k"), "r": opts.get("r"), "paper_tflops": r["paper_tflops"],
                    "vanilla_paper_tflops": r["vanilla_paper_tflops"], "paper_ratio_pct": r["paper_ratio_pct"],
                    "llm_visual_first": r["llm_visual_first"], "llm_visual_last": r["llm_visual_last"],
                    "stages": r["stages"], "exact_prefill_tflops": r["exact_prefill_tflops"],
                    "budget_rounding": rounding, "key": s.key, "tier": "analytic"})
    return pd.DataFrame(out, columns=ANALYTIC_COLUMNS)


# ----------------------------------------------------------------------------- cpu tier
@dataclass(frozen=True)
class CpuCell:
    """One cpu-tier HoliTom cell: ``path`` is the JSON a rule writes (or already writes)."""

    sweep: str                # retention | k | r | merge
    method: str
    retention: float
    k: Optional[int] = None   # paper (28-layer) K; applied K is read from the cell's JSON
    r: Optional[float] = None
    merge: Optional[str] = None
    path: str = ""


def inner_cell_path(k: int, r: float, merge: str, retention: float, *, grid_override: bool = False,
                    grid_retentions: Sequence[float] = (), grid_methods: Sequence[str] = ()) -> str:
    """Deterministic path of a HoliTom Stage III cell. The cpu grid's own cell is reused when it is
    the same computation (paper defaults K=18, R=0.5, official merge, no option override, in its grid)."""
    in_grid = "holitom" in grid_methods and any(abs(float(x) - retention) < 1e-9 for x in grid_retentions)
    if (int(k), float(r), merge) == (PAPER_K, PAPER_R, OFFICIAL_MERGE) and not grid_override and in_grid:
        return f"results/cpu/accuracy/holitom/{rtag(retention)}.json"
    from replicate.harness.options import number_tag  # lossless: R 0.125 is not R0.12

    return f"results/holitom/cpu/holitom/k{int(k)}-R{number_tag(r, 'inner_r')}-{merge}/{rtag(retention)}.json"


def plain_cell_path(method: str, retention: float, *, grid_override: bool = False,
                    grid_retentions: Sequence[float] = (), grid_methods: Sequence[str] = ()) -> str:
    """Path of a HoliTom (w/o M) cell: the cpu grid's when it has it, else results/holitom/cpu/<method>/."""
    if method in grid_methods and any(abs(float(x) - retention) < 1e-9 for x in grid_retentions):
        return f"results/cpu/accuracy/{method}/{rtag(retention)}.json"
    return f"results/holitom/cpu/{method}/{rtag(retention)}.json"


def cpu_cells(h: Mapping[str, Any], grid: Mapping[str, Any]) -> list[CpuCell]:
    """Every cpu-tier cell of the sweeps (several sweeps may share one path)."""
    kw = {"grid_override": bool((grid.get("options") or {}).get("holitom")),
          "grid_retentions": list(grid.get("retentions") or []),
          "grid_methods": list(grid.get("methods") or [])}
    c = h["cpu"]
    cells = [CpuCell("retention", m, float(r),
                     *((PAPER_K, PAPER_R, OFFICIAL_MERGE) if m == "holitom" else (None, None, None)),
                     path=(inner_cell_path(PAPER_K, PAPER_R, OFFICIAL_MERGE, float(r), **kw) if m == "holitom"
                           else plain_cell_path(m, float(r), **kw)))
             for m in c["retention_methods"] for r in c["retentions"]]
    if not c.get("sweeps", True):
        return cells
    rs = float(h["sweep_retention"])
    for k in h["k_sweep"]:
        cells.append(CpuCell("k", "holitom", rs, int(k), float(h["k_sweep_r"]), OFFICIAL_MERGE,
                             inner_cell_path(int(k), float(h["k_sweep_r"]), OFFICIAL_MERGE, rs, **kw)))
    for r in h["r_sweep"]:
        cells.append(CpuCell("r", "holitom", rs, int(h["r_sweep_k"]), float(r), OFFICIAL_MERGE,
                             inner_cell_path(int(h["r_sweep_k"]), float(r), OFFICIAL_MERGE, rs, **kw)))
    for merge in h["merges"]:
        cells.append(CpuCell("merge", "holitom", rs, PAPER_K, PAPER_R, merge,
                             inner_cell_path(PAPER_K, PAPER_R, merge, rs, **kw)))
    return cells


CPU_COLUMNS = ["sweep", "method", "retention", "tau", "paper_k", "applied_k", "r", "merge", "merge_label",
               "status", "accuracy", "n", "dataset", "llm_layers", "mean_visual_tokens_llm",
               "mean_visual_tokens_layer_avg", "vanilla_visual_tokens", "paper_macs", "reason", "source", "tier"]


def cpu_sweep_table(cells: Iterable[CpuCell], results: Mapping[str, Mapping[str, Any]]):
    """One row per cell; ``results[path]`` is the cell JSON (run_accuracy_cell's dict)."""
    import pandas as pd

    rows = []
    for c in cells:
        res = results[c.path]
        applied = (res.get("options") or {}).get("applied") or {}
        scaled = (res.get("options") or {}).get("scaled") or {}
        tau = applied.get("tau")
        rows.append({"sweep": c.sweep, "method": c.method, "retention": c.retention,
                     "tau": default_tau(c.retention) if tau is None else float(tau),
                     "paper_k": scaled.get("inner_k", [c.k, None])[0] if c.method == "holitom" else None,
                     "applied_k": scaled.get("inner_k", [None, None])[1] if c.method == "holitom" else None,
                     "r": applied.get("inner_r", c.r) if c.method == "holitom" else None,
                     "merge": applied.get("merge", c.merge) if c.method == "holitom" else None,
                     "merge_label": MERGE_LABELS.get(applied.get("merge", c.merge)) if c.method == "holitom" else None,
                     "status": res.get("status"), "accuracy": res.get("accuracy"), "n": res.get("n"),
                     "dataset": res.get("dataset"), "llm_layers": res.get("llm_layers"),
                     "mean_visual_tokens_llm": res.get("mean_visual_tokens_llm"),
                     "mean_visual_tokens_layer_avg": res.get("mean_visual_tokens_layer_avg"),
                     "vanilla_visual_tokens": res.get("vanilla_visual_tokens"), "paper_macs": res.get("paper_macs"),
                     "reason": res.get("reason"), "source": c.path, "tier": "cpu"})
    return pd.DataFrame(rows, columns=CPU_COLUMNS)


def cpu_frames_status(model_dir: str | Path, frames: Sequence[int]) -> dict[str, Any]:
    """Why the frames sweep does not run on the cpu tier (a record, written as a result file)."""
    frames_trained = None
    p = Path(model_dir) / "synthvqa.json"
    if p.is_file():
        frames_trained = json.loads(p.read_text()).get("frames")
    return {"status": "not-run", "tier": "cpu", "frames_requested": list(frames), "frames_trained": frames_trained,
            "reason": (f"the tiny model is trained and evaluated on {frames_trained}-frame SynthVideoQA videos "
                       "(synthvqa.json); replicate.harness.accuracy.run_accuracy_cell takes no frame count (it "
                       "builds samples from the checkpoint's SynthConfig), and the questions (order, count) are "
                       "generated for that length, so other frame counts are not an accuracy sweep of the same "
                       "task here")}


# ----------------------------------------------------------------------------- tables
def _suffix(pre_llm_pct: Any) -> str:
    p = int(round(float(pre_llm_pct)))
    return "" if p >= 100 else f"-r{p:02d}"


def claim_id(table: str, kind: str, row: Mapping[str, Any], bench: Optional[str] = None) -> str:
    """The generated claim id of a reported cell (replicate/README.md, "Claim ids")."""
    model = "" if table == "t1" else f"-{MODEL_SHORT[row['model']]}"
    base = f"holitom-{table}-{kind}{model}-{row['method']}{_suffix(row['pre_llm_pct'])}"
    return f"{base}-{bench}" if bench else base


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v) or str(v).strip() in ("", "-", "–", "nan")


def _reason(res: Mapping[str, Any]) -> str:
    reason = str(res.get("reason") or "")
    tier = res.get("tier", "")
    prefix = f"{tier} tier cannot run: "
    reason = reason.split(". To run it: ", 1)[0]  # the table cell says why; the claim JSON says what to do
    return reason[len(prefix):] if reason.startswith(prefix) else reason


def reproduced(res: Optional[Mapping[str, Any]], scale: float = 1.0) -> tuple[Any, str, str]:
    """(reproduced value or 'not-run (<tier> tier: <reason>)', tier, verdict) of one claim result."""
    if res is None:
        return "not-run (no claim for this cell)", "", "not-run"
    if res.get("verdict") == "not-run" or res.get("measured") is None:
        return f"not-run ({res.get('tier')} tier: {_reason(res)})", res.get("tier", ""), res.get("verdict", "not-run")
    return float(res["measured"]) * scale, res.get("tier", ""), res.get("verdict", "")


def _synth_rows(synth) -> dict[tuple[str, Optional[int]], Mapping[str, Any]]:
    """(method, pre-LLM %) -> accuracy row of the cpu tier (vanilla at 100)."""
    out: dict = {}
    if synth is None:
        return out
    for _, r in synth.iterrows():
        if r.get("status") != "ok":
            continue
        ret = r.get("retention")
        pct = 100 if ret is None or ret != ret else int(round(100 * float(ret)))
        out[(r["method"], pct)] = r
    return out


def assemble_table(reported: Sequence[Mapping[str, Any]], claim_results: Mapping[str, Mapping[str, Any]],
                   table: str, *, synth=None, synth_reason: Optional[str] = None):
    """Reported beside reproduced for every cell of HoliTom's main table (``t1``) or backbones table (``t2``).

    Per quantity q: ``q_reported``, ``q_reproduced`` (a number, or 'not-run (<tier> tier: <reason>)'),
    ``q_tier`` (tier that produced it / would), ``q_verdict``. Then the SynthVideoQA block (t1 only):
    ``synthvqa_accuracy`` / ``synthvqa_perf_kept_pct`` / ``synthvqa_n`` / ``synthvqa_tier`` for the methods and
    retentions the cpu tier ran (vanilla = 100 % pre-LLM; FastV / PDrop rows at 100 % are the inner-only
    methods, taken at the paper's FastV K / PDrop stages with keep = the cpu grid's retention 0.10 when present)."""
    import pandas as pd

    synth_by = _synth_rows(synth)
    rows = []
    for rep in reported:
        out: dict[str, Any] = {"model": rep["model"], "method": rep["method"], "label": rep["label"],
                               "pre_llm_pct": rep["pre_llm_pct"]}
        for kind, col, scale in (("flops", "flops_t", 1.0), ("ratio", "flops_ratio_pct", 1.0),
                                 ("perf", "perf_pct", 1.0)):
            cid = claim_id(table, kind, rep)
            if _blank(rep.get(col)):  # the paper prints '–': nothing to reproduce
                val, tier, verdict = "", "", ""
            elif rep["method"] == "vanilla" and kind in ("ratio", "perf") and cid not in claim_results:
                val, tier, verdict = 100.0, "definition", ""  # vanilla is the 100 % reference
            else:
                val, tier, verdict = reproduced(claim_results.get(cid), scale)
            out.update({f"{kind}_reported": rep.get(col), f"{kind}_reproduced": val, f"{kind}_tier": tier,
                        f"{kind}_verdict": verdict, f"{kind}_claim": cid if cid in claim_results else None})
        for b in BENCHES:
            cid = claim_id(table, "acc", rep, b)
            val, tier, verdict = (("", "", "") if _blank(rep.get(b)) else reproduced(claim_results.get(cid)))
            out.update({f"{b}_reported": rep.get(b), f"{b}_reproduced": val, f"{b}_tier": tier,
                        f"{b}_verdict": verdict})
        if table == "t1":
            pct = int(round(float(rep["pre_llm_pct"])))
            s = synth_by.get((rep["method"], pct))
            if s is None and rep["method"] in ("fastv", "pdrop"):
                s = synth_by.get((rep["method"], 10))
            if s is not None:
                out.update({"synthvqa_accuracy": 100 * float(s["accuracy"]),
                            "synthvqa_perf_kept_pct": s.get("perf_kept_pct"), "synthvqa_n": s.get("n"),
                            "synthvqa_retention_pct": 100 if s.get("retention") != s.get("retention")
                            or s.get("retention") is None else int(round(100 * float(s["retention"]))),
                            "synthvqa_tier": "cpu"})
            else:
                why = synth_reason or "cell not in the cpu tier's grid"
                out.update({"synthvqa_accuracy": f"not-run ({why})", "synthvqa_perf_kept_pct": None,
                            "synthvqa_n": None, "synthvqa_retention_pct": None, "synthvqa_tier": ""})
        rows.append(out)
    return pd.DataFrame(rows)


def synth_accuracy_frame(accuracy_csv: Optional[str | Path], extra_cells: Sequence[Mapping[str, Any]] = ()):
    """The cpu tier's accuracy rows (results/cpu/accuracy.csv) plus HoliTom retention cells outside
    the cpu grid (their JSONs), perf_kept_pct recomputed against the vanilla cell."""
    import pandas as pd

    frame = pd.read_csv(accuracy_csv) if accuracy_csv and Path(accuracy_csv).is_file() else pd.DataFrame()
    if len(extra_cells):
        have = set(zip(frame.get("method", []), frame.get("rtag", [])))
        add = [{"method": c["method"], "label": c.get("label", c["method"]), "rtag": c["rtag"],
                "retention": c.get("retention"), "status": c.get("status"), "accuracy": c.get("accuracy"),
                "n": c.get("n"), "dataset": c.get("dataset")} for c in extra_cells
               if (c["method"], c["rtag"]) not in have]
        frame = pd.concat([frame, pd.DataFrame(add)], ignore_index=True) if add else frame
    if len(frame) and "vanilla" in set(frame["method"]):
        v = frame[(frame["method"] == "vanilla") & (frame["status"] == "ok")]["accuracy"]
        if len(v):
            frame["perf_kept_pct"] = 100.0 * frame["accuracy"] / float(v.iloc[0])
    return frame


def claim_results_for_tables(claims: Sequence[Mapping[str, Any]], config: Mapping[str, Any],
                             results_dir: str | Path = ".") -> dict[str, dict]:
    """Verdicts of HoliTom's table claims from the result files (replicate.verify, same as the claim rules)."""
    from replicate.verify import verify_many

    wanted = [c for c in claims if c["id"].startswith(("holitom-t1-", "holitom-t2-"))]
    return {r["id"]: r for r in verify_many(wanted, results_dir=results_dir, config=config)}


def cell_dicts(cells: Sequence[CpuCell]) -> list[dict]:
    return [asdict(c) for c in cells]
