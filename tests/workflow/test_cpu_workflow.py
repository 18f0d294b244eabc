"""The cpu tier in the workflow: planned by default, gpu timing only where CUDA exists, and a smoke
run of `cpu_all` (smoke training, accuracy cells, CPU timing, figures) in a temporary directory."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from workflow_cli import REPO, snakemake

pytestmark = pytest.mark.workflow


def test_default_plan_has_the_cpu_tier_and_no_gpu_timing_without_cuda(tmp_path):
    proc = snakemake("-n", "--cores", "2", "--directory", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for rule in ("cpu_train", "cpu_accuracy_cell", "cpu_accuracy_table", "cpu_efficiency", "cpu_figures",
                 "cpu_train_video", "cpu_video_accuracy_cell", "cpu_video_accuracy_table", "cpu_layouts_figure"):
        assert rule in out, rule
    assert "gpu_efficiency" not in out  # tiers.py: no CUDA here, so its result is not a claim input
    # one cell per (method, retention) of the config grid; vanilla once (rtag full)
    assert out.count("rule cpu_accuracy_cell:") == 1 + 12 * 3
    assert out.count("rule cpu_video_accuracy_cell:") == 1 + 3 * 3  # cpu.video: tango, holitom, visionzip


def test_smoke_run_of_the_cpu_tier(tmp_path):
    proc = snakemake("--profile", str(REPO / "profiles" / "smoke"), "--cores", "2", "--directory", str(tmp_path),
                     "cpu_all")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    res = tmp_path / "results"
    acc = pd.read_csv(res / "cpu" / "accuracy.csv")
    assert set(acc["method"]) == {"vanilla", "holitom", "tango"} and set(acc["dataset"]) == {"SynthVideoQA-test"}
    assert (acc.loc[acc["method"] == "vanilla", "perf_kept_pct"] == 100).all()
    cell = json.loads((res / "cpu" / "accuracy" / "holitom" / "r0.10.json").read_text())
    assert cell["options"]["scaled"]["inner_k"][0] == 18 and cell["provenance"]["config_hash"]
    eff = pd.read_csv(res / "cpu" / "efficiency.csv")
    assert set(eff["method"]) == {"vanilla", "holitom", "tango"}
    assert eff.loc[eff["method"] == "vanilla", "ratio_llm"].iloc[0] == pytest.approx(1.0)
    for name in ("accuracy_vs_retention", "accuracy_vs_flops", "ttft_breakdown", "layouts_accuracy"):
        for ext in ("png", "pdf"):
            assert (res / "figures" / f"cpu_{name}.{ext}").stat().st_size > 0
    # the LLaVA-Video-layout model: its own checkpoint and cells, Tango with its intra-LLM stage
    video = pd.read_csv(res / "cpu" / "video" / "accuracy.csv")
    assert set(video["method"]) == {"vanilla", "tango"} and set(video["setting"]) == {"llava-video"}
    assert set(acc["setting"]) == {"llava-onevision"}
    tango = json.loads((res / "cpu" / "video" / "accuracy" / "tango" / "r0.10.json").read_text())
    assert tango["options"]["applied"]["intra_llm"] is True and tango["tokens_per_frame"] == 9
    layout = json.loads((res / "cpu" / "video" / "model" / "synthvqa.json").read_text())["layout"]
    assert layout == {"setting": "llava-video", "time_prompt": False}
