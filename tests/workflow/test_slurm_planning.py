"""GPU-hour planning for a cluster run (replicate/planning.py): the cells come from the paper-tier
claims, the cost per question from the cost model's latency prediction, the totals scale with the
question counts, and what cannot be estimated is listed with the reason."""
from __future__ import annotations

import pytest

from costmodel.latency import predict_latency
from replicate.analytic import schedule_for, setting_from_claim
from replicate.planning import gpu_hours, parse_questions, plan_cells, seconds_per_question

CLAIMS = [
    {"id": "holitom-x", "tier": "paper",
     "setting": {"model": "llava-onevision-7b", "method": "holitom", "retention": 0.1, "frames": 32,
                 "k": 18, "r": 0.5, "baseline": "vanilla", "benchmarks": ["videomme", "mvbench"]}},
    {"id": "stts-y", "tier": "paper",
     "setting": {"model": "molmo2-4b", "method": "stts", "baseline": "tome", "frames": 64,
                 "options": {"topk": 0.5, "prune_at": 3}, "benchmarks": ["videomme"]}},
    {"id": "holitom-z", "tier": "analytic", "setting": {"model": "llava-onevision-7b", "benchmarks": ["mvbench"]}},
]


def test_cells_are_the_paper_tier_settings_and_vanilla_baselines():
    cells, skipped = plan_cells(CLAIMS)
    keys = {(c.paper, c.setting.method, c.benchmark) for c in cells}
    assert keys == {("holitom", "holitom", "videomme"), ("holitom", "holitom", "mvbench"),
                    ("holitom", "vanilla", "videomme"), ("holitom", "vanilla", "mvbench"), ("stts", "stts", "videomme")}
    assert list(skipped) == ["stts-y baseline tome"]


def test_cost_per_question_is_the_predicted_ttft_plus_decode():
    setting = setting_from_claim(CLAIMS[0]["setting"])
    arch, schedule = schedule_for(setting)
    lat = predict_latency(arch, schedule, "h100-sxm")
    assert seconds_per_question(setting, "h100-sxm", 16) == pytest.approx(lat["ttft_s"] + 16 * lat["decode_s_per_token"])
    assert seconds_per_question(setting, "h100-sxm") < seconds_per_question(setting.vanilla(), "h100-sxm")


def test_hours_scale_with_question_counts_and_hardware():
    cells, _ = plan_cells(CLAIMS)
    base = gpu_hours(cells, "h100-sxm")
    assert base["questions"] == {"videomme": 1000, "mvbench": 1000}
    doubled = gpu_hours(cells, "h100-sxm", {"videomme": 2000, "mvbench": 2000})
    assert doubled["papers"]["holitom"]["gpu_hours"] == pytest.approx(2 * base["papers"]["holitom"]["gpu_hours"])
    assert base["papers"]["holitom"]["cells"] == 4 and base["papers"]["holitom"]["gpu_hours"] > 0
    assert gpu_hours(cells, "a100-80g")["papers"]["holitom"]["gpu_hours"] > base["papers"]["holitom"]["gpu_hours"]


def test_unschedulable_settings_are_listed_not_guessed():
    claim = {"id": "holitom-w", "tier": "paper",
             "setting": {"model": "llava-onevision-7b", "method": "holitom-wo-m", "frames": 16, "benchmarks": ["mvbench"]}}
    cells, _ = plan_cells([claim])
    entry = gpu_hours(cells, "h100-sxm")["papers"]["holitom"]
    assert entry["cells"] == 0 and entry["gpu_hours"] == 0
    assert "retention" in next(iter(entry["skipped"].values()))


def test_bad_question_count_is_named():
    assert parse_questions("videomme=2700, mvbench=4000") == {"videomme": 2700, "mvbench": 4000}
    with pytest.raises(ValueError, match="'videomme=lots'"):
        parse_questions("videomme=lots")


def test_tango_on_llava_video_is_planned_with_its_intra_llm_stage():
    """The grid-newline setting switches Tango's intra-LLM stage on, as in the shard: the planned
    schedule halves the visual tokens at layer 18 and averages to r over the 28 layers."""
    claim = {"id": "tango-v", "tier": "paper",
             "setting": {"model": "llava-video-7b", "method": "tango", "retention": 0.1, "frames": 64,
                         "benchmarks": ["videomme"]}}
    (cell,), _ = plan_cells([claim])
    assert cell.setting.newline == "grid" and cell.setting.options == ()  # Tango.from_setting adds the stage
    _, sched = schedule_for(cell.setting)
    assert sched.llm_visual[18] < sched.llm_visual[17]
    assert sum(sched.llm_visual) / len(sched.llm_visual) / (64 * 169) == pytest.approx(0.10, abs=0.005)
    ov = {**claim, "setting": {**claim["setting"], "model": "llava-onevision-7b", "frames": 32}}
    (ov_cell,), _ = plan_cells([ov])
    _, ov_sched = schedule_for(ov_cell.setting)
    assert ov_cell.setting.newline == "one_token" and ov_sched.llm_visual[18] == ov_sched.llm_visual[17]
