"""GPU-hour estimate of the paper tier (replicate.paper.cost): ToMe cells use the Method's own schedule."""
from __future__ import annotations

from pathlib import Path

import yaml

from costmodel.arch import load_arch
from costmodel.latency import predict_latency
from replicate.claims import load_claims
from replicate.paper import cells as C
from replicate.paper import cost

CONFIG = Path(__file__).resolve().parents[2] / "replicate" / "config.yaml"


def test_tome_cells_are_estimated_from_the_methods_nominal_schedule():
    config = yaml.safe_load(CONFIG.read_text())
    config["paper"] = {**config.get("paper", {}), "claims": ["stts-vs-tome-50"]}
    est = cost.estimate(load_claims(), config)
    assert est["skipped"] == [] and est["total_gpu_hours"] > 0
    tome = [c for c in cost.all_cells(load_claims(), config) if c.method == "tome"]
    assert tome
    cell = tome[0]
    arch, sched = cost.cell_schedule(cell, 16)
    assert arch.name == load_arch(cell.model).name
    assert sched.llm_visual[0] == cell.frames * 41                 # round(0.5 x 81) merged tokens per frame
    assert sched.vision[-1].tokens < sched.vision[0].tokens == arch.vision.patches_per_frame
    pred = predict_latency(arch, sched, "h100-sxm", "bf16")
    assert cost.cell_seconds(cell, "h100-sxm", "bf16", 16) == pred["ttft_s"] + 15 * pred["decode_s_per_token"]
    vanilla = C.Cell(cell.checkpoint, cell.model, cell.frames, "vanilla", None, (), cell.benchmark, cell.dataset)
    assert cost.cell_seconds(cell, "h100-sxm", "bf16", 16) < cost.cell_seconds(vanilla, "h100-sxm", "bf16", 16)


def test_decode_budget_is_each_protocols_max_new_tokens():
    """GPU-hour planning decodes as many tokens as the claim's protocol allows per benchmark: HoliTom's
    lmms-eval 0.3.0 gives EgoSchema no generation_kwargs (the wrapper's 1,024), LongVideoBench 32,
    VideoMME 16; Tango's VLMEvalKit runs 2,048."""
    from replicate.claims import load_claims
    from replicate.planning import plan_cells

    cells, _ = plan_cells(load_claims())
    tokens = {(c.paper, c.benchmark, c.answer_tokens) for c in cells}
    assert ("holitom", "egoschema", 1024) in tokens and ("holitom", "longvideobench", 32) in tokens
    assert ("holitom", "videomme", 16) in tokens and ("tango", "videomme", 2048) in tokens
    assert ("tango", "videomme", 16) in tokens  # the README runtime claims: its lmms-eval 0.7.1 copy
