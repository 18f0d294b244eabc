"""cpu-tier figures (SynthVideoQA analogue; tiny LLaVA-OV trained here, cpu-bench timings).

- accuracy vs retention, one line per method (vanilla as a horizontal line);
- accuracy vs paper-convention FLOPs (MACs of the FastV formula) with the Pareto front;
- CPU TTFT breakdown: stacked vision / other / LLM prefill bars per method, predicted TTFT marked;
- the two token layouts side by side: accuracy vs retention of the methods run on both tiny models
  (LLaVA-OV's one newline per video, solid; LLaVA-Video's newline per pooled row, dashed).
"""
from __future__ import annotations

from pathlib import Path

from figures.plots import plain_log_axis, pyplot, save_figure


MARKERS = "osD^v<>PX*hp"


def _colour(i: int):
    """A distinct colour per method: tab10 repeats after 10 and the grid has 12 methods."""
    plt = pyplot()
    return plt.get_cmap("tab20")(i % 20)


def accuracy_vs_retention(acc):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ok = acc[acc["status"] == "ok"]
    van = ok[ok["method"] == "vanilla"]
    for i, (label, g) in enumerate(ok[ok["method"] != "vanilla"].groupby("label")):
        g = g.sort_values("retention")
        ax.plot(100 * g["retention"], 100 * g["accuracy"], marker=MARKERS[i % len(MARKERS)], label=label,
                color=_colour(i))
    if len(van):
        ax.axhline(100 * float(van["accuracy"].iloc[0]), color="k", ls="--", label="vanilla")
    ax.set_xlabel("retention (% of video tokens)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"SynthVideoQA-test (n={int(ok['n'].max()) if len(ok) else 0}), tiny LLaVA-OV")
    ax.legend(fontsize=7, ncol=2)
    return fig


def pareto_front(points):
    """Indices of the points not dominated (lower FLOPs and higher accuracy), sorted by FLOPs."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def accuracy_vs_flops(acc):
    """Accuracy against the LLM prefill cost in the papers' convention (the FastV formula counts one
    multiply-add as one "FLOP", so the unit is millions of multiply-adds), with the Pareto front drawn
    as a staircase: no method lies both left of and above it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ok = acc[(acc["status"] == "ok") & acc["paper_macs"].notna()].reset_index(drop=True)
    for i, (label, g) in enumerate(ok.groupby("label")):
        ax.scatter(g["paper_macs"] / 1e6, 100 * g["accuracy"], label=label, s=22, marker=MARKERS[i % len(MARKERS)],
                   color=_colour(i), zorder=3)
    pts = list(zip(ok["paper_macs"].astype(float), ok["accuracy"].astype(float)))
    if pts:
        front = pareto_front(pts)
        xs = [pts[i][0] / 1e6 for i in front] + [max(p[0] for p in pts) / 1e6]
        ys = [100 * pts[i][1] for i in front]
        ax.step(xs, ys + ys[-1:], where="post", color="k", lw=1.2, ls="--", zorder=2,
                label="Pareto front (best accuracy at this cost or less)")
    ax.set_xscale("log")
    plain_log_axis(ax.xaxis)
    ax.set_xlabel("LLM prefill cost, paper convention (FastV formula; million multiply-adds)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("SynthVideoQA-test: accuracy vs prefill cost (paper convention)")
    ax.legend(fontsize=7, ncol=2)
    return fig


def ttft_breakdown(eff):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ok = eff[eff["status"] == "ok"].reset_index(drop=True)
    names = [f"{m}\n{r}" for m, r in zip(ok["method"], ok["rtag"])]
    x = range(len(ok))
    bottom = [0.0] * len(ok)
    for col, lab in (("measured_vision_s", "vision"), ("measured_other_s", "other (reduction)"),
                     ("measured_llm_s", "LLM prefill")):
        vals = list(1e3 * ok[col])
        ax.bar(x, vals, bottom=bottom, label=lab)
        bottom = [b + v for b, v in zip(bottom, vals)]
    if "predicted_ttft_s" in ok:
        ax.scatter(list(x), list(1e3 * ok["predicted_ttft_s"]), marker="_", s=400, color="k",
                   label="cost model (fitted on vanilla)", zorder=3)
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, fontsize=7)
    ax.set_ylabel("TTFT (ms)")
    dev = ok["device"].iloc[0] if len(ok) and "device" in ok else "cpu"
    ax.set_title(f"TTFT breakdown, random-weight {ok['arch'].iloc[0] if len(ok) else ''} on {dev}")
    ax.legend(fontsize=7)
    return fig


def layouts_accuracy(onevision, video):
    """Accuracy vs retention per method on both layouts (one colour per method)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ov, vid = (t[t["status"] == "ok"] for t in (onevision, video))
    shared = sorted(set(ov["method"]) & set(vid["method"]) - {"vanilla"})
    for i, method in enumerate(shared):
        for table, ls, name in ((ov, "-", "OV"), (vid, "--", "Video")):
            g = table[table["method"] == method].sort_values("retention")
            ax.plot(100 * g["retention"], 100 * g["accuracy"], ls=ls, marker=MARKERS[i % len(MARKERS)],
                    color=_colour(i), label=f"{g['label'].iloc[0]} [{name}]" if len(g) else None)
    for table, ls, name in ((ov, "-", "OV"), (vid, "--", "Video")):
        van = table[table["method"] == "vanilla"]
        if len(van):
            ax.axhline(100 * float(van["accuracy"].iloc[0]), color="k", ls=ls, lw=0.8, label=f"vanilla [{name}]")
    ax.set_xlabel("retention (% of video tokens)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("SynthVideoQA-test, tiny models: LLaVA-OV layout (solid) vs LLaVA-Video layout (dashed)",
                 fontsize=8)
    ax.legend(fontsize=6, ncol=2)
    return fig


def write_layouts_figure(onevision_csv, video_csv, out_dir="results/figures") -> list[Path]:
    import pandas as pd

    out = Path(out_dir)
    fig = layouts_accuracy(pd.read_csv(onevision_csv), pd.read_csv(video_csv))
    png, pdf = out / "cpu_layouts_accuracy.png", out / "cpu_layouts_accuracy.pdf"
    save_figure(fig, png, pdf)
    pyplot().close(fig)
    return [png, pdf]


def write_cpu_figures(accuracy_csv, efficiency_csv, out_dir="results/figures") -> list[Path]:
    import pandas as pd

    out = Path(out_dir)
    acc = pd.read_csv(accuracy_csv)
    eff = pd.read_csv(efficiency_csv)
    written = []
    plt = pyplot()
    for name, fig in (("accuracy_vs_retention", accuracy_vs_retention(acc)),
                      ("accuracy_vs_flops", accuracy_vs_flops(acc)), ("ttft_breakdown", ttft_breakdown(eff))):
        png, pdf = out / f"cpu_{name}.png", out / f"cpu_{name}.pdf"
        save_figure(fig, png, pdf)
        plt.close(fig)
        written += [png, pdf]
    return written
