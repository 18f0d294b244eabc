"""STTS figures: the cpu tier's trained-vs-untrained-vs-random-vs-heuristic comparison (SynthVideoQA
analogue) and the analytic speed-up vs frame count beside the paper's reported 128/256-frame values."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

VARIANT_ORDER = ("stts-trained", "stts-untrained", "stts-random", "stts-heuristic")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, png, pdf=None) -> None:
    from figures.plots import save_figure

    save_figure(fig, png, pdf)


def cpu_accuracy_figure(rows: Sequence[dict], png: str | Path, pdf: Optional[str | Path] = None) -> None:
    """Bars: overall accuracy per variant at each pruning level (vanilla as a line); right panel the
    per-family accuracy at the highest pruning level. ``rows``: results/cpu/stts/accuracy.csv rows."""
    plt = _plt()
    pruned = sorted({int(r["pruned_pct"]) for r in rows if r["pruned_pct"] not in (None, "")})
    fams = sorted(k[4:] for k in rows[0] if k.startswith("acc_"))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / len(VARIANT_ORDER)
    for i, v in enumerate(VARIANT_ORDER):
        ys = [next((100 * float(r["accuracy"]) for r in rows if r["variant"] == v and r["pruned_pct"] not in (None, "")
                    and int(r["pruned_pct"]) == p), float("nan")) for p in pruned]
        ax.bar([j + i * width for j in range(len(pruned))], ys, width, label=v)
    van = [100 * float(r["accuracy"]) for r in rows if r["variant"] == "vanilla"]
    if van:
        ax.axhline(van[0], color="k", ls="--", lw=1, label="vanilla (no pruning)")
    half = [100 * float(r["accuracy"]) for r in rows if r["variant"] == "vanilla-half-frames"]
    if half:
        ax.axhline(half[0], color="grey", ls=":", lw=1, label="vanilla, every other frame (= 50 % budget)")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(pruned))], [f"{p} % pruned" for p in pruned])
    ax.set_ylabel("accuracy (%, SynthVideoQA-test)")
    ax.set_title("STTS on the tiny LLaVA-OV (analogue)")
    ax.legend(fontsize=7, loc="lower left")
    top = max(pruned) if pruned else None
    for i, v in enumerate(VARIANT_ORDER):
        r = next((r for r in rows if r["variant"] == v and r["pruned_pct"] not in (None, "")
                  and int(r["pruned_pct"]) == top), None)
        if r is not None:
            bx.bar([j + i * width for j in range(len(fams))], [100 * float(r[f"acc_{f}"]) for f in fams], width,
                   label=v)
    bx.set_xticks([j + 0.4 - width / 2 for j in range(len(fams))], fams)
    bx.set_title(f"per question family at {top} % pruned")
    bx.set_ylabel("accuracy (%)")
    fig.tight_layout()
    _save(fig, png, pdf)
    plt.close(fig)


def speedup_vs_frames_figure(points: Sequence[dict], reported: Sequence[dict], png: str | Path,
                             pdf: Optional[str | Path] = None) -> None:
    """Predicted inference / training speed-up vs frames (lines) and the paper's reported values
    (markers). ``points``: {frames, inference, training}; ``reported``: {frames, kind, value}."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    xs = [p["frames"] for p in points]
    ax.plot(xs, [p["inference"] for p in points], "o-", label="predicted inference (prefill)")
    ax.plot(xs, [p["training"] for p in points], "s-", label="predicted training step (fwd+bwd)")
    for kind, marker in (("inference", "x"), ("training", "+")):
        mine = [r for r in reported if r["kind"] == kind]
        ax.plot([r["frames"] for r in mine], [r["value"] for r in mine], marker, ms=10, color="k", ls="none",
                label=f"reported {kind} (paper)")
        for r in mine:  # the value beside its marker, inside the axes (to the left of the point)
            ax.annotate(f"{r['value']}x", (r["frames"], r["value"]), fontsize=7, ha="right",
                        va="top" if kind == "inference" else "bottom",
                        xytext=(-6, -3 if kind == "inference" else 3), textcoords="offset points")
    frames = xs + [r["frames"] for r in reported]
    if frames:
        ax.set_xlim(min(frames) / 1.5, max(frames) * 1.5)
    ax.margins(y=0.12)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("frames")
    ax.set_ylabel("speed-up over vanilla (x)")
    ax.set_title("STTS 50 % on Molmo2-4B: cost-model speed-up")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    _save(fig, png, pdf)
    plt.close(fig)
