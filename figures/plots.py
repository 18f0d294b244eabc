"""Figures regenerated from result files (matplotlib, Agg backend)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: the workflow sets it to the run's scale (replicate.scale; replicate/rules/common.smk), so every
#: figure a smoke / rehearsal / custom run writes says so on its face
SCALE_ENV = "REPLICATE_RUN_SCALE"


def mark_scale(fig, scale: Optional[str] = None) -> None:
    """Label ``fig`` with the run's scale unless it is a full run (``scale`` or $REPLICATE_RUN_SCALE)."""
    scale = scale if scale is not None else os.environ.get(SCALE_ENV, "")
    if scale and scale != "full" and not getattr(fig, "_scale_marked", False):
        # above the figure's own area (the saved image grows to hold it: bbox_inches="tight"), clear of
        # titles and of the footnotes some figures carry below
        fig.text(0.5, 1.0, f"{scale} run: not the replication's numbers", ha="center", va="bottom",
                 fontsize=9, color="#b26a00", fontweight="bold")
        fig._scale_marked = True


def plain_log_axis(axis) -> None:
    """Log-scale tick labels as plain numbers (2, 5, 10, 20) instead of 2×10⁰ labels that overlap."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def save_figure(fig, png: str | Path, pdf: Optional[str | Path], *, dpi: int = 150) -> None:
    """Write ``fig`` as a PNG (and a PDF when ``pdf``), each file atomically, labelled with the run's
    scale when it is not a full run (mark_scale)."""
    from figures.files import atomic_path

    mark_scale(fig)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    if pdf:
        with atomic_path(pdf) as tmp:
            fig.savefig(tmp, bbox_inches="tight", format="pdf")


def flops_vs_retention(flops, models: Sequence[str] = (), methods: Sequence[str] = ()):
    """Paper-convention TFLOPs vs retention: one panel per model, one line per method, the vanilla
    cost as a dashed line. `flops` is the frame of results/analytic/flops.csv."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(models) or sorted(flops["model"].unique())
    methods = list(methods) or sorted(m for m in flops["method"].unique() if m != "vanilla")
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.4), squeeze=False)
    for ax, model in zip(axes[0], models):
        sub = flops[flops["model"] == model]
        frames = sub["frames"].mode().iloc[0] if not sub.empty else None
        sub = sub[sub["frames"] == frames]
        for method in methods:
            m = sub[(sub["method"] == method) & sub["retention"].notna()].sort_values("retention")
            if not m.empty:
                ax.plot(100 * m["retention"], m["paper_tflops"], marker="o", label=method)
        vanilla = sub[sub["method"] == "vanilla"]["paper_tflops"]
        if not vanilla.empty:
            ax.axhline(vanilla.iloc[0], color="k", ls="--", lw=1, label="vanilla")
        ax.set_title(f"{model} ({frames} frames)" if frames is not None else model)
        ax.set_xlabel("retention (%)")
        ax.set_ylabel("prefill TFLOPs (paper convention)")
        ax.set_yscale("log")
        plain_log_axis(ax.yaxis)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_flops_vs_retention(flops_csv: str | Path, *, png: str, pdf: str | None = None,
                             models: Sequence[str] = (), methods: Sequence[str] = ()):
    import pandas as pd
    import matplotlib.pyplot as plt

    fig = flops_vs_retention(pd.read_csv(flops_csv), models, methods)
    save_figure(fig, png, pdf, dpi=120)
    plt.close(fig)
