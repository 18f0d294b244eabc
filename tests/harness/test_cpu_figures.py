"""cpu-tier figure helpers."""
import pandas as pd

from figures.cpu import pareto_front, write_cpu_figures


def test_pareto_front_by_hand():
    # (flops, accuracy): sorted by flops 0.5 (0.3) -> 1 (0.5) -> 2 (0.4, dominated) -> 3 (0.6)
    assert pareto_front([(1, 0.5), (2, 0.4), (3, 0.6), (0.5, 0.3)]) == [3, 0, 2]
    assert pareto_front([(1, 0.5), (1, 0.5)]) == [0]


def test_figures_are_written(tmp_path):
    acc = pd.DataFrame([
        {"method": "vanilla", "label": "vanilla", "rtag": "full", "retention": None, "status": "ok", "n": 8,
         "accuracy": 0.6, "paper_macs": 100.0},
        {"method": "holitom", "label": "holitom", "rtag": "r0.10", "retention": 0.1, "status": "ok", "n": 8,
         "accuracy": 0.55, "paper_macs": 10.0},
        {"method": "dycoke", "label": "dycoke", "rtag": "r0.10", "retention": 0.1, "status": "not-applicable",
         "n": None, "accuracy": None, "paper_macs": None}])
    eff = pd.DataFrame([{"method": m, "rtag": r, "status": "ok", "arch": "cpu-bench", "device": "cpu",
                         "measured_vision_s": 0.2, "measured_other_s": o, "measured_llm_s": l, "predicted_ttft_s": 0.2 + l}
                        for m, r, o, l in (("vanilla", "full", 0.0, 0.8), ("holitom", "r0.10", 0.01, 0.1))])
    acc.to_csv(tmp_path / "a.csv", index=False)
    eff.to_csv(tmp_path / "e.csv", index=False)
    written = write_cpu_figures(tmp_path / "a.csv", tmp_path / "e.csv", tmp_path / "fig")
    assert len(written) == 6 and all(p.stat().st_size > 0 for p in written)


def test_layouts_figure_draws_each_shared_method_once_per_layout():
    from figures.cpu import layouts_accuracy

    def table(tango_acc, extra):
        rows = [{"method": "vanilla", "label": "vanilla", "retention": None, "status": "ok", "accuracy": 0.9},
                {"method": "tango", "label": "tango", "retention": 0.25, "status": "ok", "accuracy": tango_acc},
                {"method": "tango", "label": "tango", "retention": 0.10, "status": "ok", "accuracy": tango_acc - 0.1}]
        return pd.DataFrame(rows + extra)

    ov = table(0.8, [{"method": "fastv", "label": "fastv", "retention": 0.1, "status": "ok", "accuracy": 0.5}])
    video = table(0.7, [{"method": "dycoke", "label": "dycoke", "retention": 0.1, "status": "not-applicable",
                         "accuracy": None}])
    fig = layouts_accuracy(ov, video)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    # tango is the only non-vanilla method both layouts ran: one line each, sorted by retention
    assert sorted(lines) == ["tango [OV]", "tango [Video]", "vanilla [OV]", "vanilla [Video]"]
    assert list(lines["tango [Video]"].get_xdata()) == [10.0, 25.0]
    assert [round(y, 6) for y in lines["tango [Video]"].get_ydata()] == [60.0, 70.0]
    assert lines["tango [Video]"].get_linestyle() == "--" and lines["tango [OV]"].get_linestyle() == "-"
