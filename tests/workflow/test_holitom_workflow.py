"""HoliTom's rules in the workflow: planned by the default target, and smoke runs of them.

The whole-workflow smoke test (tests/workflow/test_workflow.py) already executes every HoliTom rule
(they are targets of `all`); here: the plan, a cheap smoke run of the analytic sweep
and the benchmark, and (slow) the whole `holitom_all` target at smoke scale with its outputs checked."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from workflow_cli import REPO, snakemake

SMOKE = str(REPO / "profiles" / "smoke")

pytestmark = pytest.mark.workflow


def test_default_plan_includes_the_holitom_rules(tmp_path):
    proc = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), timeout=200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for rule in ("holitom_analytic", "holitom_cpu_cell", "holitom_wo_m_cpu_cell", "holitom_cpu_sweeps",
                 "holitom_bench", "holitom_tables", "holitom_figures", "holitom_notebook"):
        assert f"rule {rule}:" in out, rule
    # K sweep 2/7/14/21 + R sweep 0.3/0.4/0.6/0.7 at K=14 + mean merge + K=18 at 15/20 %: 11 new cells
    # (K=18, R=0.5, running-pairwise at 10/25 % is the cpu grid's holitom cell, reused)
    assert out.count("rule holitom_cpu_cell:") == 11
    assert out.count("rule holitom_wo_m_cpu_cell:") == 2  # 15 and 20 %, outside the cpu grid
    assert "k18-R0.50-running-pairwise/r0.10.json" not in out


def test_smoke_run_of_the_analytic_sweeps_and_benchmark(tmp_path):
    proc = snakemake("--profile", SMOKE, "--cores", "2", "--directory", str(tmp_path),
                     "results/holitom/analytic/sweeps.csv", "results/bench/holitom_stages.json", timeout=200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    sweeps = pd.read_csv(tmp_path / "results" / "holitom" / "analytic" / "sweeps.csv")
    assert set(sweeps["sweep"]) == {"retention", "k", "r", "frames"}
    assert sorted(sweeps[sweeps["sweep"] == "k"]["k"]) == [2, 18]  # profiles/smoke/smoke.yaml
    assert set(sweeps[sweeps["sweep"] == "frames"]["frames"]) == {16, 32}
    bench = json.loads((tmp_path / "results" / "bench" / "holitom_stages.json").read_text())
    cell = bench["results"]["r0.10"]
    assert bench["threads"] == 1 and bench["provenance"]["config_hash"]
    assert 0 < cell["stage1"]["median_s"] <= cell["stages_1_2"]["median_s"]
    assert cell["temporally_reduced"] > 0 and cell["tau"] == 0.65  # the static windows are found


@pytest.mark.slow
def test_smoke_run_of_holitom_all(tmp_path):
    proc = snakemake("--profile", SMOKE, "--cores", "2", "--directory", str(tmp_path), "holitom_all", timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    res = tmp_path / "results"
    cpu = pd.read_csv(res / "holitom" / "cpu" / "sweeps.csv")
    assert set(cpu["sweep"]) == {"retention", "k", "r", "merge"} and (cpu["status"] == "ok").all()
    assert set(cpu[cpu["sweep"] == "merge"]["merge"]) == {"running-pairwise", "mean"}
    assert json.loads((res / "holitom" / "cpu" / "frames_sweep.json").read_text())["status"] == "not-run"
    main = pd.read_csv(res / "tables" / "holitom_main.csv")
    assert (main["flops_tier"] == "analytic").all()
    assert main["mvbench_reproduced"].astype(str).str.startswith("not-run (paper tier:").all()
    assert "SynthVideoQA" in (res / "tables" / "holitom_main.md").read_text()
    for n in ("ttft", "decode", "ksweep", "frames"):
        assert (res / "figures" / f"holitom_{n}.pdf").stat().st_size > 0
    assert (res / "figures" / "notebook" / "holitom" / "holitom_main.md").stat().st_size > 0
