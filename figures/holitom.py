"""HoliTom's tables and figures (docs/sources.md#holitom-main-table, #holitom-backbones-table,
#holitom-figures) rendered from result files.

Data assembly is ``replicate.holitom_tables``; this module only renders:

- ``table_markdown`` / ``table_latex``: reported beside reproduced, per cell the tier that produced the
  reproduced value; not-run cells name the tier and point to a numbered reason under the table;
- ``ttft_figure`` / ``decode_figure``: the paper's bars (GPU, LLaVA-OV-7B) beside this machine's
  cpu-bench timings, always labelled "CPU, random-weight cpu-bench model" (never the paper's GPU);
- ``ksweep_figure``: reported accuracy vs K beside SynthVideoQA accuracy vs K (applied K on the tiny
  LLM annotated) and analytic FLOPs vs K and R;
- ``frames_figure``: reported accuracy vs frames beside analytic FLOPs vs frames (cpu: the recorded
  reason it did not run, or the accuracies if a tier wrote them).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from figures.plots import plain_log_axis, pyplot, save_figure

CPU_LABEL = "CPU, random-weight cpu-bench model"
PAPER_LABEL = "paper (LLaVA-OV-7B, GPU; type not stated)"
QUANTITIES = (("flops", "FLOPs (T)"), ("ratio", "ratio (%)"), ("mvbench", "MVB"), ("egoschema", "Ego"),
              ("longvideobench", "LVB"), ("videomme", "VMME"), ("avg", "Avg"), ("perf", "%"))


def _fmt(v: Any, nd: int = 2) -> str:
    """A number to nd decimals; '' for None/NaN; any other text unchanged."""
    if v is None:
        return ""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "" if f != f else f"{f:.{nd}f}"


def _display(frame, *, synth: bool):
    """(rows of display strings, header, footnotes): not-run texts become 'not-run (<tier> tier) [n]'."""
    notes: list[str] = []

    def cell(v, nd=2):
        if isinstance(v, str) and v.startswith("not-run"):
            inner = v[len("not-run ("):-1] if v.endswith(")") else v
            tier, _, reason = inner.partition(": ")
            if reason not in notes:
                notes.append(reason)
            return f"not-run ({tier}) [{notes.index(reason) + 1}]"
        return _fmt(v, nd)

    header = ["Model", "Method", "pre-LLM %"]
    for _, lab in QUANTITIES:
        header += [f"{lab} rep.", f"{lab} repro.", "tier"]
    if synth:
        header += ["SynthVideoQA acc. (%)", "SynthVideoQA % of vanilla", "n", "tier"]
    rows = []
    for _, r in frame.iterrows():
        out = [str(r["model"]), str(r["label"]), _fmt(r["pre_llm_pct"], 0)]
        for q, _ in QUANTITIES:
            tier, verdict = str(r.get(f"{q}_tier") or ""), r.get(f"{q}_verdict")
            if verdict in ("confirmed", "refuted", "config-unpublished"):  # the claim checker's verdict within the claim's tolerance
                tier = f"{tier}, {verdict}"
            out += [_fmt(r.get(f"{q}_reported"), 1), cell(r.get(f"{q}_reproduced")), tier]
        if synth:
            out += [cell(r.get("synthvqa_accuracy"), 1), _fmt(r.get("synthvqa_perf_kept_pct"), 1),
                    _fmt(r.get("synthvqa_n"), 0), str(r.get("synthvqa_tier") or "")]
        rows.append(out)
    return rows, header, notes


def table_markdown(frame, title: str, *, synth: bool = False) -> str:
    rows, header, notes = _display(frame, synth=synth)
    lines = [f"# {title}", "",
             "rep. = reported in the paper; repro. = reproduced here; tier = the tier that produced the "
             "reproduced value (analytic: cost model on the real architecture; paper: real checkpoint + "
             "benchmark) and, where a claim was checked, its verdict (replicate/claims.yaml tolerances).", ""]
    if synth:
        lines += ["SynthVideoQA columns: the cpu tier's tiny LLaVA-OV on SynthVideoQA-test, an analogue "
                  "of the benchmarks, never the benchmarks (FastV / PDrop rows: the inner-only methods at "
                  "keep 10 %).", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if notes:
        lines += ["", "Not-run reasons:", ""] + [f"{i + 1}. {n}" for i, n in enumerate(notes)]
    return "\n".join(lines) + "\n"


def _tex(s: str) -> str:
    return s.replace("\\", r"\textbackslash{}").replace("%", r"\%").replace("_", r"\_").replace("&", r"\&")


def table_latex(frame, *, synth: bool = False) -> str:
    rows, header, notes = _display(frame, synth=synth)
    lines = [r"\begin{tabular}{" + "l" * 3 + "r" * (len(header) - 3) + "}", r"\toprule",
             " & ".join(_tex(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"% [{i + 1}] {_tex(n)}" for i, n in enumerate(notes)]
    return "\n".join(lines) + "\n"


def write_table(frame, stem: str | Path, title: str, *, synth: bool = False) -> list[Path]:
    from figures import files as io

    stem = Path(stem)
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    io.write_csv(paths[0], frame)
    io.write_text(paths[1], table_markdown(frame, title, synth=synth))
    io.write_text(paths[2], table_latex(frame, synth=synth))
    return paths


# ----------------------------------------------------------------------------- figures
def _cpu_eff(eff):
    if eff is None or not len(eff):
        return None
    ok = eff[eff["status"] == "ok"] if "status" in eff else eff
    return ok.reset_index(drop=True) if len(ok) else None


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=8, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def ttft_figure(reported, eff=None):
    """Stacked ViT / other / LLM bars: paper (ms) | cpu-bench measured (ms)."""
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    x = range(len(reported))
    bottom = [0.0] * len(reported)
    for col, lab in (("vit_ms", "ViT"), ("other_ms", "other (reduction)"), ("llm_ms", "LLM prefill")):
        vals = [float(v) for v in reported[col]]
        a.bar(x, vals, bottom=bottom, label=lab)
        bottom = [p + v for p, v in zip(bottom, vals)]
    a.set_xticks(list(x))
    a.set_xticklabels(list(reported["label"]), fontsize=7, rotation=30)
    a.set_ylabel("TTFT (ms)")
    a.set_title(f"reported: {PAPER_LABEL}, 10 %", fontsize=9)
    a.legend(fontsize=7)
    ok = _cpu_eff(eff)
    if ok is None:
        _no_data(b, f"{CPU_LABEL}: no cpu-tier timings (cpu tier not run)")
    else:
        xs = range(len(ok))
        bottom = [0.0] * len(ok)
        for col, lab in (("measured_vision_s", "vision"), ("measured_other_s", "other (reduction)"),
                         ("measured_llm_s", "LLM prefill")):
            vals = [1e3 * float(v) for v in ok[col]]
            b.bar(xs, vals, bottom=bottom, label=lab)
            bottom = [p + v for p, v in zip(bottom, vals)]
        b.set_xticks(list(xs))
        b.set_xticklabels([f"{m}\n{r}" for m, r in zip(ok["method"], ok["rtag"])], fontsize=7)
        b.set_ylabel("TTFT (ms)")
        b.legend(fontsize=7)
        b.set_title(f"measured: {CPU_LABEL} ({ok['device'].iloc[0] if 'device' in ok else 'cpu'})", fontsize=9)
    fig.tight_layout()
    return fig


def decode_figure(reported, eff=None):
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.bar(range(len(reported)), [float(v) for v in reported["tok_s"]], color="C0")
    a.set_xticks(range(len(reported)))
    a.set_xticklabels(list(reported["label"]), fontsize=7, rotation=30)
    a.set_ylabel("decode throughput (tok/s)")
    a.set_title(f"reported: {PAPER_LABEL}", fontsize=9)
    ok = _cpu_eff(eff)
    if ok is None or "measured_decode_tokens_per_s" not in ok:
        _no_data(b, f"{CPU_LABEL}: no cpu-tier timings (cpu tier not run)")
    else:
        b.bar(range(len(ok)), [float(v) for v in ok["measured_decode_tokens_per_s"]], color="C1")
        b.set_xticks(range(len(ok)))
        b.set_xticklabels([f"{m}\n{r}" for m, r in zip(ok["method"], ok["rtag"])], fontsize=7)
        b.set_ylabel("decode throughput (tok/s)")
        b.set_title(f"measured: {CPU_LABEL}", fontsize=9)
    fig.tight_layout()
    return fig


def ksweep_figure(reported, analytic, cpu=None):
    """(a) reported avg vs K; (b) analytic FLOPs vs K and vs R; (c) SynthVideoQA accuracy vs paper K;
    (d) SynthVideoQA accuracy vs R (and merge variants as text)."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    (a, b), (c, d) = axes
    rep = reported.sort_values("k")
    a.plot(rep["k"], rep["avg"], "o-")
    a.set_xlabel("K (inner layer, 28-layer Qwen2-7B)")
    a.set_ylabel("Avg accuracy (%)")
    a.set_title(f"reported: HoliTom vs K at R = {rep['r'].iloc[0] if len(rep) else ''} ({PAPER_LABEL})", fontsize=8)
    ks = analytic[analytic["sweep"] == "k"].sort_values("k")
    rs = analytic[analytic["sweep"] == "r"].sort_values("r")
    b.plot(ks["k"], ks["paper_tflops"], "o-", label="vs K (R = 0.5)")
    b.set_xlabel("K")
    b.set_ylabel("prefill FLOPs (T, paper convention)")
    b2 = b.twiny()
    b2.plot(rs["r"], rs["paper_tflops"], "s--", color="C1", label="vs R (K = 14), top axis")
    b2.set_xlabel("R (fraction merged away)")
    b.legend(loc="upper left", fontsize=7)
    b2.legend(loc="lower right", fontsize=7)
    b.set_title("analytic: LLaVA-OV-7B, 32 frames, 10 % pre-LLM", fontsize=8)
    if cpu is None or not len(cpu):
        _no_data(c, "SynthVideoQA: cpu tier not run")
        _no_data(d, "SynthVideoQA: cpu tier not run")
    else:
        ok = cpu[cpu["status"] == "ok"]
        kk = ok[ok["sweep"] == "k"].sort_values("paper_k")
        c.plot(kk["paper_k"], 100 * kk["accuracy"], "o-", color="C2")
        last = kk["paper_k"].max() if len(kk) else None
        for _, r in kk.iterrows():  # the rightmost label ends at its point, inside the axes
            c.annotate(f"K'={int(r['applied_k'])}", (r["paper_k"], 100 * r["accuracy"]), fontsize=7,
                       textcoords="offset points", xytext=(0, 5), ha="right" if r["paper_k"] == last else "left")
        L = int(ok["llm_layers"].max()) if len(ok) else 0
        n = int(ok["n"].max()) if len(ok) else 0
        c.set_xlabel(f"paper K (K' = applied K on the {L}-layer tiny LLM)")
        c.set_ylabel("accuracy (%)")
        c.set_title(f"SynthVideoQA-test (cpu tier, n={n}), R = 0.5, running-pairwise", fontsize=8)
        rr = ok[ok["sweep"] == "r"].sort_values("r")
        d.plot(rr["r"], 100 * rr["accuracy"], "s-", color="C3", label="running-pairwise (official)")
        mm = ok[ok["sweep"] == "merge"]
        for i, (_, r) in enumerate(mm.iterrows()):
            d.scatter([0.5], [100 * r["accuracy"]], marker="x^"[i % 2], s=50, label=f"K=18: {r['merge_label']}")
        d.set_xlabel(f"R (paper K = {int(rr['paper_k'].iloc[0]) if len(rr) else ''}, applied "
                     f"{int(rr['applied_k'].iloc[0]) if len(rr) else ''})")
        d.set_ylabel("accuracy (%)")
        d.legend(fontsize=6)
        d.set_title("SynthVideoQA-test: R sweep and merge rules", fontsize=8)
    fig.tight_layout()
    return fig


def frames_figure(reported, analytic, cpu_frames: Optional[Mapping[str, Any]] = None):
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, g in reported.groupby("label"):
        g = g.sort_values("frames")
        a.plot(g["frames"], g["avg"], "o-", label=label + (" (read off plot)" if str(g["approximate"].iloc[0]).lower() == "true" else ""))
    a.set_xscale("log", base=2)
    a.set_xlabel("frames")
    a.set_ylabel("Avg accuracy (%)")
    a.set_title(f"reported ({PAPER_LABEL})", fontsize=8)
    a.legend(fontsize=7)
    fr = analytic[analytic["sweep"] == "frames"]
    for m, g in fr.groupby("method"):
        g = g.sort_values("frames")
        b.plot(g["frames"], g["paper_tflops"], "o-", label=m)
    b.set_xscale("log", base=2)
    b.set_yscale("log")
    plain_log_axis(b.yaxis)
    b.set_xlabel("frames")
    b.set_ylabel("prefill FLOPs (T, paper convention)")
    rets = sorted({float(x) for x in fr["retention"].dropna()})
    b.set_title(f"analytic: LLaVA-OV-7B (pre-LLM retention {', '.join(f'{100 * x:.0f} %' for x in rets)})", fontsize=8)
    b.legend(fontsize=7)
    if cpu_frames and cpu_frames.get("status") == "not-run":
        fig.text(0.01, -0.02, "cpu tier (SynthVideoQA): not run: " + cpu_frames["reason"], fontsize=6, wrap=True)
    fig.tight_layout()
    return fig


def write_figures(reported_dir: str | Path, analytic_csv: str | Path, out_dir: str | Path = "results/figures", *,
                  cpu_sweeps_csv: Optional[str | Path] = None, efficiency_csv: Optional[str | Path] = None,
                  frames_json: Optional[str | Path] = None, pdf: bool = True,
                  names: Sequence[str] = ("ttft", "decode", "ksweep", "frames")) -> list[Path]:
    """Write results/figures/holitom_<name>.{png,pdf}; optional cpu inputs may be None or missing."""
    import pandas as pd

    rd = Path(reported_dir)
    read = lambda p: pd.read_csv(p) if p and Path(p).is_file() else None  # noqa: E731
    analytic = pd.read_csv(analytic_csv)
    eff, cpu = read(efficiency_csv), read(cpu_sweeps_csv)
    frames = json.loads(Path(frames_json).read_text()) if frames_json and Path(frames_json).is_file() else None
    makers = {"ttft": lambda: ttft_figure(pd.read_csv(rd / "holitom_ttft.csv"), eff),
              "decode": lambda: decode_figure(pd.read_csv(rd / "holitom_decode.csv"), eff),
              "ksweep": lambda: ksweep_figure(pd.read_csv(rd / "holitom_k_sweep.csv"), analytic, cpu),
              "frames": lambda: frames_figure(pd.read_csv(rd / "holitom_frames_sweep.csv"), analytic, frames)}
    plt = pyplot()
    out, written = Path(out_dir), []
    for name in names:
        fig = makers[name]()
        png, pdf_path = out / f"holitom_{name}.png", (out / f"holitom_{name}.pdf") if pdf else None
        save_figure(fig, png, pdf_path)
        plt.close(fig)
        written += [png] + ([pdf_path] if pdf_path else [])
    return written
