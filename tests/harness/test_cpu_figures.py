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
