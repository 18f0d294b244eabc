"""replicate.fidelity_effects: the analytic effects of the released-code fidelity (issue 24)."""
from __future__ import annotations

import pytest

from replicate.fidelity_effects import analytic, full_size


def test_analytic_effects():
    a = analytic()
    rows = {(r["model"], r["lam"], tuple(r["layers"] or ())): r for r in a["pdrop"]}
    for model in ("llava-onevision-7b", "llava-video-7b"):
        # lam 0.5: equal counts and FLOPs (the rank rule and renumbering never move a count)
        for layers in ((), (2, 7, 14)):
            r = rows[(model, 0.5, layers)]
            assert r["released"] == r["project"]
    r = rows[("llava-onevision-7b", 0.4, (2, 10))]
    assert r["released"]["visual"] == [6272, 2508, 1003] and r["project"]["visual"] == [6272, 2509, 1004]
    assert r["released"]["tflops"] == pytest.approx(10.537, abs=5e-4)
    assert rows[("llava-video-7b", 0.4, (2, 10))]["released"]["tflops"] == pytest.approx(19.491, abs=5e-4)
    stts = {(s["topk"], s["frames"]): (s["released"], s["project"]) for s in a["stts_pruned_groups"]}
    assert stts[(0.3, 32)] == (777, 778) and stts[(0.3, 256)] == (6220, 6221) and stts[(0.5, 64)] == (2592, 2592)
    fv = {row["retention"]: row for row in a["fastvid_per_frame"]}
    assert fv[0.10]["released"]["per_frame"] == 19 and fv[0.10]["table_budget_per_frame"] == 20
    assert fv[0.25]["released"]["per_frame"] == fv[0.25]["table_budget_per_frame"] == 49


def test_full_size_effects_at_a_small_width():
    f = full_size(dim=64)
    assert f["fastvid_r10"]["kept"]["project"] == 32 * 20 and f["fastvid_r10"]["kept"]["released"] <= 32 * 19
    assert f["fastvid_r25"]["per_frame"]["released"] == f["fastvid_r25"]["per_frame"]["project"]
    assert f["visionzip_20_per_frame"]["kept"] == 640
    assert f["stts_bias_64x27x27_random_scores"]["max_abs_log_bias_difference"] > 0
