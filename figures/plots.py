"""Figures regenerated from result files (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, png: str | Path, pdf: Optional[str | Path]) -> None:
    """Write ``fig`` as a PNG (and a PDF when ``pdf``), each file atomically."""
    from figures.files import atomic_path

    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format="png")
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
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_flops_vs_retention(flops_csv: str | Path, *, png: str, pdf: str | None = None,
                             models: Sequence[str] = (), methods: Sequence[str] = ()):
    import pandas as pd
    import matplotlib.pyplot as plt

    from figures import files as io

    fig = flops_vs_retention(pd.read_csv(flops_csv), models, methods)
    for path in (png, pdf):
        if path:
            with io.atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip("."))
    plt.close(fig)
