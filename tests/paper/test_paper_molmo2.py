"""The paper tier on tiny Molmo2 rehearsal checkpoints, in process: loading from the local path, the
STTS scorer taken from the checkpoint, and computed verdicts for stts-accuracy-drop-13tasks and
stts-vs-tome-50 (training-free ToMe on the vanilla checkpoint)."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from costmodel.nominal import round_half_up
from replicate.claims import claims_by_id
from replicate.paper import cells as C
from replicate.paper import rehearsal
from replicate.paper.checkpoints import load_adapter
from replicate.paper.shard import read_shard, run_shard, summarise_cell
from replicate.verify import verify_claim

CLAIM = "stts-accuracy-drop-13tasks"
TOME_CLAIM = "stts-vs-tome-50"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("molmo2_rehearsal")
    cfg = yaml.safe_load(rehearsal.make(root, n=3, claims=[CLAIM, TOME_CLAIM], shards=1).read_text())
    return root, cfg


def test_rehearsal_writes_real_molmo2_checkpoints_and_no_stts80(made):
    from methods.adapters.molmo2 import Molmo2VideoAdapter
    from methods.adapters.molmo2_loading import load_scorer_state

    _, cfg = made
    ckpts = cfg["paths"]["checkpoints"]
    assert {"molmo2-4b", "molmo2-4b-lite-50"} <= set(ckpts) and "molmo2-4b-stts-80-local" not in ckpts
    adapter, info = load_adapter(cfg, "molmo2-4b-lite-50")
    assert isinstance(adapter, Molmo2VideoAdapter) and info["model_type"] == "molmo2"
    assert adapter.checkpoint_dir == ckpts["molmo2-4b-lite-50"]
    assert hasattr(adapter.tokenizer, "save_pretrained"), "the checkpoint's own tokenizer files are loaded"
    assert load_scorer_state(ckpts["molmo2-4b"]) is None
    state = load_scorer_state(ckpts["molmo2-4b-lite-50"])
    assert state is not None and {"mlp.0.weight", "q_proj.weight"} <= set(state)


def _run_cells(claim, cfg, work):
    for cell in C.claim_cells(claim, cfg):
        shard = work / cell.shard_path(0, 1)
        header = run_shard(cell, 0, 1, cfg, shard, progress=False)
        assert header["status"] == "ok", header.get("reason")
        out = work / cell.summary_path
        out.write_text(json.dumps(summarise_cell(cell, [shard])))
        yield cell, header, read_shard(shard)[1]


def test_stts_cell_runs_on_the_tiny_molmo2_and_the_claim_gets_a_verdict(made):
    root, cfg = made
    claim = claims_by_id()[CLAIM]
    work = root / "work"
    frames = int(claim["setting"]["frames"])
    per_frame = 9                                        # 3 x 3 pooled tokens of the tiny Molmo2
    seen = set()
    for cell, header, rows in _run_cells(claim, cfg, work):
        seen.add(cell.method)
        assert rows and all(r["prediction"] in "ABCDEFGH" for r in rows)
        if cell.method == "stts":
            assert header["trained_scorer"] and "molmo2-4b-lite-50" in header["stts_scorer"]
            assert header["options"]["label"] == "stts"
            # topk 0.5 of the groups pruned, first frame kept: strictly fewer tokens reach the LLM
            assert all(r["visual_tokens_kept"] == frames * per_frame - round(0.5 * per_frame * frames) for r in rows)
        else:
            assert all(r["visual_tokens_kept"] == frames * per_frame for r in rows)
    assert seen == {"stts", "vanilla"}
    (work / C.CELLS_INDEX).write_text("{}")
    out = verify_claim(claim, results_dir=work, config=cfg)
    assert out["verdict"] in ("confirmed", "refuted"), out.get("reason")
    assert out["evidence"]["rehearsal"].startswith("REHEARSAL")


def test_tome_cells_run_on_the_vanilla_molmo2_and_stts_vs_tome_gets_a_verdict(made):
    root, cfg = made
    claim = claims_by_id()[TOME_CLAIM]
    work = root / "work_tome"
    frames = int(claim["setting"]["frames"])
    per_frame = 9                                        # 3 x 3 pooled tokens of the tiny Molmo2
    merged = round_half_up(0.5 * per_frame)              # ToMe merges each frame down to 5 tokens
    seen = set()
    for cell, header, rows in _run_cells(claim, cfg, work):
        seen.add((cell.method, cell.checkpoint))
        assert rows and all(r["prediction"] in "ABCDEFGH" for r in rows)
        if cell.method == "tome":
            assert all(r["visual_tokens_kept"] == frames * merged for r in rows)
        else:
            assert all(r["visual_tokens_kept"] == frames * per_frame - round(0.5 * per_frame * frames) for r in rows)
    assert seen == {("stts", "molmo2-4b-lite-50"), ("tome", "molmo2-4b")}
    (work / C.CELLS_INDEX).write_text("{}")
    out = verify_claim(claim, results_dir=work, config=cfg)
    assert out["verdict"] in ("confirmed", "refuted"), out.get("reason")
    assert out["evidence"]["rehearsal"].startswith("REHEARSAL")


def test_stts_on_a_molmo2_checkpoint_without_a_scorer_fails_naming_the_key(made, tmp_path):
    _, cfg = made
    cell = C.Cell("molmo2-4b", "molmo2-4b", 4, "stts", 0.5, (("topk", 0.5), ("prune_at", 3)), "videomme", "videomme",
                  "stts-molmo2")
    header = run_shard(cell, 0, 1, cfg, tmp_path / "s.jsonl", progress=False)
    assert header["status"] == "error"
    assert "paths.checkpoints.molmo2-4b" in header["reason"] and "carries no STTS scorer" in header["reason"]


def test_the_checkpoints_scorer_is_the_one_stts_runs(made):
    from methods.pipeline import run
    from methods.registry import get_method
    from replicate.paper.checkpoints import attach_stts_scorer

    _, cfg = made
    adapter, _ = load_adapter(cfg, "molmo2-4b-lite-50")
    loaded = get_method("stts", topk=0.5, seed=123)
    info = attach_stts_scorer(adapter, loaded, "molmo2-4b-lite-50")
    assert info["trained_scorer"]
    written = get_method("stts", topk=0.5, seed=11).scorer(adapter).state_dict()  # rehearsal.make's seed
    init = get_method("stts", topk=0.5, seed=123).scorer(adapter).state_dict()
    used = loaded.scorer(adapter).state_dict()
    assert all(torch.equal(used[k], written[k]) for k in written)
    assert not all(torch.equal(used[k], init[k]) for k in init)
    r = run(adapter, loaded, torch.randn(4, 3, adapter.image_size, adapter.image_size), "q")
    assert int(r.video.keep.sum()) == 4 * 9 - round(0.5 * 9 * 4)
