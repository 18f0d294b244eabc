"""Paper tier: a Tango cell on the LLaVA-Video checkpoint runs the intra-LLM stage (K = 18 of 28
scaled to the checkpoint's depth, keep 0.5 of the released visual span); on LLaVA-OV it does not.
The claims tango-video-layer-avg-r10/15/20 plan those cells with their vanilla cells, and
lmms_eval_layer_avg_ratio turns the summaries' token counts into the layer-averaged ratio."""
from __future__ import annotations

import copy
import json

import pytest

from costmodel.arch import load_arch
from replicate.claims import claims_by_id
from methods.setting import PaperSetting
from methods.tango import Tango
from replicate.paper import cells as C
from replicate.paper import cost, rehearsal
from replicate.paper.cells import Cell
from replicate.paper.shard import read_shard, run_shard, summarise_cell
from replicate.verify import verify_claim

LAYER_AVG = {0.10: "tango-video-layer-avg-r10", 0.15: "tango-video-layer-avg-r15", 0.20: "tango-video-layer-avg-r20"}


@pytest.fixture(scope="module")
def claims():
    return claims_by_id()


def _tango(model):
    return Cell(model, model, 8, "tango", 0.25, (), "videomme", "videomme")


def test_tango_video_cell_prunes_inside_the_llm_and_ov_cell_does_not(paper_inputs, paper_config, tmp_path):
    cfg = paper_config()
    # the same tiny HF checkpoint; the checkpoint name picks the LLaVA-Video setting (grid newlines)
    cfg["paths"]["checkpoints"]["llava-video-7b"] = paper_inputs["checkpoint"]
    video, ov = _tango("llava-video-7b"), _tango("llava-onevision-7b")
    hv = run_shard(video, 0, 1, cfg, tmp_path / "v.jsonl", progress=False)
    ho = run_shard(ov, 0, 1, cfg, tmp_path / "o.jsonl", progress=False)
    assert hv["status"] == ho["status"] == "ok", (hv, ho)
    assert hv["options"]["applied"]["intra_llm"] is True and hv["options"]["scaled"]["intra_k"] == [18, 3]
    assert "intra_llm" not in ho["options"]["applied"]
    rows_v, rows_o = read_shard(tmp_path / "v.jsonl")[1], read_shard(tmp_path / "o.jsonl")[1]
    assert all(r["visual_tokens_layer_avg"] < r["visual_tokens_kept"] for r in rows_v)   # fewer from K on
    assert all(r["visual_tokens_layer_avg"] == r["visual_tokens_kept"] for r in rows_o)


@pytest.mark.parametrize("r", sorted(LAYER_AVG))
def test_layer_avg_claims_plan_tango_video_cells_with_the_intra_stage_and_vanilla(claims, r):
    """(a) One Tango cell at the claim's r and tau on llava-video-7b, 64 frames, and the vanilla cell of
    the same checkpoint, frames and benchmark; at the paper model's depth the options the shard applies
    switch the intra-LLM stage on, and its nominal schedule averages to r over the 28 layers."""
    claim = claims[LAYER_AVG[r]]
    cells = C.claim_cells(claim, {"paper": {}})
    tango = [c for c in cells if c.method == "tango"]
    vanilla = [c for c in cells if c.method == "vanilla"]
    assert len(tango) == len(vanilla) == 1 and len(cells) == 2
    t, v = tango[0], vanilla[0]
    assert (t.checkpoint, t.frames, t.benchmark, t.retention) == ("llava-video-7b", 64, "videomme", r)
    assert dict(t.options) == {"tau": 0.65 if r <= 0.10 else 0.8}
    assert (v.checkpoint, v.frames, v.benchmark, v.tag) == ("llava-video-7b", 64, "videomme", "vanilla")
    arch = load_arch(t.model)
    applied = Tango.from_setting(PaperSetting.for_arch(arch, t.retention, t.method_options,
                                                       newline=arch.newline)).applied
    assert (applied["intra_llm"], applied["intra_k"], applied["intra_keep"]) == (True, 18, 0.5)
    sched = cost.cell_schedule(t, 16)[1]
    full = cost.cell_schedule(v, 16)[1].llm_visual[0]
    assert sched.llm_visual[17] > sched.llm_visual[18]                    # the intra stage at layer 18
    ratio = 100 * sum(sched.llm_visual) / len(sched.llm_visual) / full
    assert abs(ratio - claim["reported"]["value"]) <= claim["tolerance"]["abs"], ratio


def test_rehearsal_builds_the_llava_video_checkpoint_for_these_claims():
    assert rehearsal.needs(sorted(LAYER_AVG.values())) == ({"llava-video-7b"}, 64)


@pytest.fixture
def video_config(tmp_path):
    ckpt, data = tmp_path / "ckpt", tmp_path / "data"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    data.mkdir()
    return {"paths": {"checkpoints": {"llava-video-7b": str(ckpt)}, "datasets": {"videomme": str(data)}},
            "paper": {}, "seeds": [0]}


def _summary(results, cell, score, **tokens):
    path = results / cell.summary_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cell": cell.as_dict(), "status": "ok", "headline_accuracy": score, "n": 10,
                                "rehearsal": False, **tokens}))
    (results / C.CELLS_INDEX).write_text("{}")


def test_layer_avg_ratio_from_hand_written_summaries(claims, video_config, tmp_path):
    """(b) 100 x 1082.0 / 10816 = 10.0037 %: confirmed at r = 0.10 (+-1.0 pp), with the scores beside it;
    the same summaries refute r = 0.20's 20 %."""
    claim = claims["tango-video-layer-avg-r10"]
    tango, vanilla = sorted(C.claim_cells(claim, video_config), key=lambda c: c.method)
    _summary(tmp_path, tango, 60.0, mean_visual_tokens_kept=1317.0, mean_visual_tokens_layer_avg=1082.0)
    _summary(tmp_path, vanilla, 64.0, mean_visual_tokens_kept=10816.0, mean_visual_tokens_layer_avg=10816.0)
    out = verify_claim(claim, results_dir=tmp_path, config=video_config)
    assert out["verdict"] == "confirmed" and out["measured"] == pytest.approx(1082.0 / 108.16)
    ev = out["evidence"]
    assert ev["pre_llm_ratio_pct"] == pytest.approx(1317.0 / 108.16)
    assert ev["accuracy"]["method"] == 60.0 and ev["accuracy"]["vanilla"] == 64.0
    assert ev["accuracy"]["perf_kept_pct"] == pytest.approx(93.75) and "not accessible" in ev["accuracy"]["reported"]
    assert "newline" in ev["definition"]["newlines"]
    r20 = claims["tango-video-layer-avg-r20"]
    t20 = [c for c in C.claim_cells(r20, video_config) if c.method == "tango"][0]
    _summary(tmp_path, t20, 61.0, mean_visual_tokens_kept=1317.0, mean_visual_tokens_layer_avg=1082.0)
    out = verify_claim(r20, results_dir=tmp_path, config=video_config)
    assert out["verdict"] == "refuted" and out["measured"] == pytest.approx(1082.0 / 108.16)


def test_layer_avg_ratio_is_not_run_naming_the_missing_cell_or_key(claims, video_config, tmp_path):
    claim = claims["tango-video-layer-avg-r15"]
    tango, vanilla = sorted(C.claim_cells(claim, video_config), key=lambda c: c.method)
    _summary(tmp_path, tango, 60.0, mean_visual_tokens_kept=2000.0, mean_visual_tokens_layer_avg=1600.0)
    out = verify_claim(claim, results_dir=tmp_path, config=video_config)
    assert out["verdict"] == "not-run"
    assert f"baseline side: cell summary {vanilla.summary_path} missing" in out["reason"]
    _summary(tmp_path, vanilla, 64.0, mean_visual_tokens_kept=10816.0)
    _summary(tmp_path, tango, 60.0, mean_visual_tokens_kept=2000.0)
    out = verify_claim(claim, results_dir=tmp_path, config=video_config)
    assert out["verdict"] == "not-run"
    assert f"method side: cell summary {tango.summary_path} has no mean_visual_tokens_layer_avg" in out["reason"]
    cfg = copy.deepcopy(video_config)
    cfg["paths"]["checkpoints"]["llava-video-7b"] = ""
    out = verify_claim(claim, results_dir=tmp_path, config=cfg)
    assert out["verdict"] == "not-run" and "config key paths.checkpoints.llava-video-7b is empty" in out["reason"]


def test_tiny_llava_video_run_keeps_fewer_tokens_on_average_than_it_feeds_the_llm(claims, paper_inputs,
                                                                                   paper_config, tmp_path):
    """(c) The claim's Tango and vanilla cells (at the fixtures' 8 frames) through the real shard, summary
    and evaluator on a tiny LLaVA-Video checkpoint: layer average < entering the LLM < vanilla."""
    cfg = paper_config()
    cfg["paths"]["checkpoints"]["llava-video-7b"] = paper_inputs["checkpoint"]
    claim = copy.deepcopy(claims["tango-video-layer-avg-r20"])
    claim["setting"]["frames"] = 8
    for cell in C.claim_cells(claim, cfg):
        shard = tmp_path / cell.shard_path(0, 1)
        assert run_shard(cell, 0, 1, cfg, shard, progress=False)["status"] == "ok"
        summary = summarise_cell(cell, [shard])
        (tmp_path / cell.summary_path).write_text(json.dumps(summary))
    (tmp_path / C.CELLS_INDEX).write_text("{}")
    out = verify_claim(claim, results_dir=tmp_path, config=cfg)
    assert out["verdict"] in ("confirmed", "refuted"), out["reason"]
    tok = out["evidence"]["tokens"]
    assert 0 < tok["method_layer_avg"] < tok["method_entering_llm"] < tok["vanilla"]
    assert out["measured"] == pytest.approx(100 * tok["method_layer_avg"] / tok["vanilla"])
    assert out["evidence"]["method_options"]["intra_llm"] is True

