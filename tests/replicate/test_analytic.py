"""The analytic tier's rows reproduce the hand-computed HoliTom FLOPs (docs/sources.md#flops-convention)."""
from __future__ import annotations

import pytest

from replicate.analytic import Setting, compute_rows, effective_retention, grid_settings, stage_summary


def _rows(*settings, rounding="per_frame_ceil"):
    rows, schedules = compute_rows(list(settings), rounding)
    return {r["key"]: r for r in rows}, schedules


def test_holitom_r10_per_frame_budget_and_inner_merge():
    s = Setting("llava-onevision-7b", "holitom", 32, 0.10, (("k", 18), ("r", 0.5)))
    rows, schedules = _rows(s)
    row = rows[s.key]
    assert row["stages"] == "0-17:640 18-27:320"          # ceil(0.1*196)=20 per frame, halved at layer 18
    assert row["paper_tflops"] == pytest.approx(2.8153, abs=1e-3)
    assert row["paper_tflops_global_round"] == pytest.approx(2.7579, abs=1e-3)  # 627 tokens
    assert row["vanilla_paper_tflops"] == pytest.approx(40.765, abs=1e-3)
    assert rows[s.vanilla().key]["llm_visual_first"] == 6272
    assert s.key in schedules


def test_per_frame_ceil_is_what_reproduces_7_0_T_at_20_percent():
    s = Setting("llava-onevision-7b", "visionzip", 32, 0.20)
    row = _rows(s)[0][s.key]
    assert row["llm_visual_first"] == 1280 and round(row["paper_tflops"], 1) == 7.0
    assert round(row["paper_tflops_global_round"], 2) == 6.89


def test_effective_retention_rounds_per_frame_only_for_pre_llm_budgets():
    assert effective_retention(Setting("llava-onevision-7b", "visionzip", 32, 0.15), 196, "per_frame_ceil") == 30 / 196
    assert effective_retention(Setting("llava-onevision-7b", "visionzip", 32, 0.25), 196, "per_frame_ceil") == 49 / 196
    assert effective_retention(Setting("llava-onevision-7b", "fastv", 32, 0.2), 196, "per_frame_ceil") == 0.2
    assert effective_retention(Setting("llava-onevision-7b", "visionzip", 32, 0.15), 196, "global_round") == 0.15
    with pytest.raises(ValueError, match="unknown budget_rounding 'floor'"):
        effective_retention(Setting("llava-onevision-7b", "visionzip", 32, 0.15), 196, "floor")


def test_grid_expansion():
    grid = [{"models": ["llava-onevision-7b"], "methods": ["vanilla", "fastv", "holitom"],
             "retentions": [0.1, 0.2], "options": {"fastv": {"k": 2}}}]
    settings = grid_settings(grid)
    assert len(settings) == 1 + 2 + 2
    assert Setting("llava-onevision-7b", "fastv", 32, 0.2, (("k", 2),)) in settings


def test_unknown_model_is_named():
    with pytest.raises(KeyError, match="unknown model 'llava-1.5'"):
        grid_settings([{"models": ["llava-1.5"], "methods": ["vanilla"]}])


def test_stage_summary():
    assert stage_summary((5, 5, 3, 3, 3)) == "0-1:5 2-4:3"
    assert stage_summary((7,)) == "0-0:7"


def test_predictions_cover_gpu_speedup_claims_and_are_sane():
    from replicate.analytic import predict_speedups
    from replicate.claims import load_claims

    rows = {r["id"]: r for r in predict_speedups(load_claims(), "h100-sxm")}
    assert "holitom-ttft-ov7b-r10" in rows and "stts-efficiency-128f" in rows
    assert "stts-efficiency-128f-train" not in rows
    h = rows["holitom-ttft-ov7b-r10"]
    # pruning only shortens the LLM part: speedup > 1 and below the LLM-only (Amdahl) bound
    assert 1 < h["ttft_speedup"] < h["llm_only_ttft_bound"]
    assert h["method_ttft_ms"] < h["baseline_ttft_ms"]
