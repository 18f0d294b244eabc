"""Figures read as they should: plain log-axis tick labels, a visible Pareto front, labels inside the
axes, and a label on the face of every figure a reduced (smoke / rehearsal / custom) run writes."""
from __future__ import annotations

import pandas as pd
import pytest

from figures.cpu import accuracy_vs_flops
from figures.plots import SCALE_ENV, mark_scale, pyplot, save_figure
from figures.stts import speedup_vs_frames_figure


def _acc(accuracies=(0.5, 0.5, 0.5)):
    rows = [("vanilla", 30.6e6), ("holitom", 2.2e6), ("tango", 3.2e6)]
    return pd.DataFrame([{"method": m, "label": m, "status": "ok", "paper_macs": macs, "accuracy": a, "n": 8}
                         for (m, macs), a in zip(rows, accuracies)])


def _tick_texts(fig, axis="x"):
    fig.canvas.draw()
    ax = fig.axes[0]
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks if t.get_text()]


def test_accuracy_vs_flops_has_plain_tick_labels_a_named_unit_and_a_visible_front():
    fig = accuracy_vs_flops(_acc())
    labels = _tick_texts(fig)
    assert labels and all("times" not in t and "^" not in t for t in labels), labels
    assert set(labels) >= {"2", "3", "5", "10", "20", "30"}
    ax = fig.axes[0]
    assert "million multiply-adds" in ax.get_xlabel() and "FLOPs" not in ax.get_xlabel()
    front = [l for l in ax.get_lines() if l.get_label().startswith("Pareto front")]
    # all three at 50 %: the front is one point, drawn as a step reaching the costliest point
    assert len(front) == 1 and len(set(front[0].get_xdata())) >= 2
    assert max(front[0].get_xdata()) == pytest.approx(30.6)
    pyplot().close(fig)


def test_stts_speedup_labels_stay_inside_the_axes(tmp_path):
    points = [{"frames": 16, "inference": 1.72, "training": 1.73}]
    reported = [{"frames": 128, "kind": "inference", "value": 1.61}, {"frames": 128, "kind": "training", "value": 1.62},
                {"frames": 256, "kind": "inference", "value": 2.22}, {"frames": 256, "kind": "training", "value": 2.25}]
    plt = pyplot()
    captured = {}
    real_close = plt.close
    plt.close = lambda fig: captured.setdefault("fig", fig)
    try:
        speedup_vs_frames_figure(points, reported, tmp_path / "s.png")
    finally:
        plt.close = real_close
    fig = captured["fig"]
    fig.canvas.draw()
    ax = fig.axes[0]
    box = ax.get_window_extent()
    for text in ax.texts:
        ext = text.get_window_extent()
        assert box.x0 <= ext.x0 and ext.x1 <= box.x1 and box.y0 <= ext.y0 and ext.y1 <= box.y1, text.get_text()
    real_close(fig)


def test_reduced_runs_label_their_figures(tmp_path, monkeypatch):
    plt = pyplot()
    monkeypatch.setenv(SCALE_ENV, "smoke")
    fig, _ = plt.subplots()
    save_figure(fig, tmp_path / "a.png", None)
    assert [t.get_text() for t in fig.texts] == ["smoke run: not the replication's numbers"]
    mark_scale(fig)  # once only
    assert len(fig.texts) == 1
    monkeypatch.setenv(SCALE_ENV, "full")
    fig2, _ = plt.subplots()
    save_figure(fig2, tmp_path / "b.png", None)
    assert fig2.texts == []
    monkeypatch.delenv(SCALE_ENV)
    fig3, _ = plt.subplots()
    mark_scale(fig3)
    assert fig3.texts == []
    for f in (fig, fig2, fig3):
        plt.close(f)
