"""Tango's figures rendered from the tables ``replicate.tango_tables`` writes.

- ``flops_figure``: LLM-prefill FLOPs (paper convention) vs retention, one panel per backbone
  (LLaVA-OV-7B, LLaVA-Video-7B pre-LLM and with the intra-LLM stage, Qwen2.5-VL-7B), vanilla as a line;
- ``ttft_figure``: TTFT split bars (vision / other / LLM prefill): the cost model's A800 prediction
  for vanilla and Tango beside the README's A800 reference for Tango, each bar labelled with its source;
- ``behaviour_figure``: tokens kept and static positions under ``released`` vs ``paper`` fidelity.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from figures.plots import plain_log_axis, pyplot, save_figure

PANEL_TITLES = {"llava-onevision-7b": "LLaVA-OV-7B (32 f)", "llava-video-7b": "LLaVA-Video-7B (64 f)",
                "qwen2.5-vl-7b": "Qwen2.5-VL-7B (32 f, assumed)"}


def read_rows(path: str | Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def flops_figure(rows: Sequence[dict]):
    plt = pyplot()
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), squeeze=False)
    for ax, model in zip(axes[0], models):
        mine = [r for r in rows if r["model"] == model]
        for i, method in enumerate(dict.fromkeys(r["method"] for r in mine)):
            pts = sorted((float(r["retention"]), float(r["paper_tflops"])) for r in mine if r["method"] == method)
            ax.plot([100 * x for x, _ in pts], [y for _, y in pts], marker="osD"[i % 3], label=method)
        ax.axhline(float(mine[0]["vanilla_paper_tflops"]), color="grey", ls="--", lw=1, label="vanilla")
        ax.set_yscale("log")
        plain_log_axis(ax.yaxis)
        ax.set_title(PANEL_TITLES.get(model, model), fontsize=10)
        ax.set_xlabel("retention r (%)")
        ax.set_ylabel("LLM prefill FLOPs, paper convention (T)")
        ax.legend(fontsize=8)
    fig.suptitle("Tango: analytic FLOPs vs retention (cost model; Tango prints no FLOPs)", fontsize=10)
    fig.tight_layout()
    return fig


def ttft_figure(rows: Sequence[dict]):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    labels, bottom = [], [0.0] * len(rows)
    for r in rows:
        src = "README, measured" if r["source"].startswith("reported") else "predicted"
        labels.append(f"{r['method']}\n({src})")
    for part, colour in (("vision_ms", "#4c72b0"), ("other_ms", "#dd8452"), ("llm_ms", "#55a868")):
        vals = [float(r[part]) for r in rows]
        ax.bar(labels, vals, bottom=bottom, color=colour, label=part.replace("_ms", ""))
        bottom = [b + v for b, v in zip(bottom, vals)]
    for x, total in enumerate(bottom):
        ax.text(x, total, f"{total:.0f} ms", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("TTFT split (ms)")
    ax.set_title("LLaVA-OV-7B, r = 0.10, A800: roofline prediction vs Tango README reference\n"
                 "(predicted 'other' = projector + pooling; Tango's pruning time is not modelled)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def behaviour_figure(rows: Sequence[dict]):
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4))
    rets = sorted({float(r["retention"]) for r in rows})
    width = 0.38
    for j, (quantity, title) in enumerate((("tokens_kept", "tokens kept"), ("static_positions", "static positions"))):
        ax = axes[j]
        for i, fid in enumerate(("released", "paper")):
            vals = [next(float(r[quantity]) for r in rows if r["fidelity"] == fid and float(r["retention"]) == x)
                    for x in rets]
            ax.bar([k + (i - 0.5) * width for k in range(len(rets))], vals, width, label=fid)
        ax.set_xticks(range(len(rets)), [f"r={x:g}" for x in rets])
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle("Behaviour A (static-mask tau) on the synthetic 32x196x3584 video", fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {"flops": flops_figure, "ttft": ttft_figure, "behaviour": behaviour_figure}


def write_one(kind: str, src_csv: str | Path, out_dir: str | Path) -> list[Path]:
    """Render one figure kind ('flops', 'ttft', 'behaviour') from its CSV to tango_<kind>.{png,pdf}."""
    if kind not in FIGURES:
        raise KeyError(f"unknown Tango figure {kind!r}; allowed: {sorted(FIGURES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(FIGURES[kind](read_rows(src_csv)), out / f"tango_{kind}.png", out / f"tango_{kind}.pdf")
    return [out / f"tango_{kind}.png", out / f"tango_{kind}.pdf"]


def write_figures(flops_csv: str | Path, ttft_csv: str | Path, out_dir: str | Path,
                  behaviour_csv: str | Path | None = None) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    jobs = [("tango_flops", flops_figure, flops_csv), ("tango_ttft", ttft_figure, ttft_csv)]
    if behaviour_csv:
        jobs.append(("tango_behaviour", behaviour_figure, behaviour_csv))
    for stem, fn, src in jobs:
        fig = fn(read_rows(src))
        save_figure(fig, out / f"{stem}.png", out / f"{stem}.pdf")
        written += [out / f"{stem}.png", out / f"{stem}.pdf"]
    return written
