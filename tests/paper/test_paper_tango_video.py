"""Paper tier: a Tango cell on the LLaVA-Video checkpoint runs the intra-LLM stage (K = 18 of 28
scaled to the checkpoint's depth, keep 0.5 of the released visual span); on LLaVA-OV it does not."""
from __future__ import annotations

from replicate.paper.cells import Cell
from replicate.paper.shard import read_shard, run_shard


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
