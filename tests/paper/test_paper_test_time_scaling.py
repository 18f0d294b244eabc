"""stts-test-time-scaling on the rehearsal inputs, in process: the LVBench fixture in its official
layout, STTS at 128 frames and the vanilla cell at 64 frames computed by the shard function the
rule calls, and a computed (rehearsal-labelled) verdict."""
from __future__ import annotations

import json

import pytest
import yaml

from replicate.benchmarks import load_benchmark
from replicate.claims import claims_by_id
from replicate.paper import cells as C
from replicate.paper import rehearsal
from replicate.paper.shard import read_shard, run_shard, summarise_cell
from replicate.verify import verify_claim

CLAIM = "stts-test-time-scaling"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("tts_rehearsal")
    cfg = yaml.safe_load(rehearsal.make(root, n=3, claims=[CLAIM], shards=1).read_text())
    return root, cfg


def test_rehearsal_writes_lvbench_in_its_official_layout(made):
    import av

    _, cfg = made
    root = cfg["paths"]["datasets"]["lvbench"]
    samples = load_benchmark("lvbench", root, strict=True)
    assert len(samples) == 3 and all(s.video_path.parent.name == "videos" for s in samples)
    with av.open(str(samples[0].video_path)) as c:
        n_frames = sum(1 for _ in c.decode(video=0))
    assert n_frames >= 128, "the clips carry as many frames as the claim's STTS cells sample"


def test_test_time_scaling_cells_run_and_the_claim_gets_a_verdict(made):
    root, cfg = made
    claim = claims_by_id()[CLAIM]
    work = root / "work"
    tokens: dict[str, set[int]] = {"stts": set(), "vanilla": set()}
    frames = {}
    for cell in C.claim_cells(claim, cfg):
        shard = work / cell.shard_path(0, 1)
        header = run_shard(cell, 0, 1, cfg, shard, progress=False)
        assert header["status"] == "ok", (cell.dir, header.get("reason"))
        rows = read_shard(shard)[1]
        assert len(rows) == 3 and all(r["prediction"] in "ABCDE"[:len(r["options"])] for r in rows)
        tokens[cell.method] |= {r["visual_tokens_kept"] for r in rows}
        frames[cell.method] = cell.frames
        (work / cell.summary_path).write_text(json.dumps(summarise_cell(cell, [shard])))
    assert frames == {"stts": 128, "vanilla": 64}
    # the matched budget, measured: STTS at 128 frames hands the LLM as many visual tokens as
    # vanilla at 64 frames
    assert len(tokens["stts"]) == 1 and tokens["stts"] == tokens["vanilla"], tokens
    (work / C.CELLS_INDEX).write_text("{}")
    out = verify_claim(claim, results_dir=work, config=cfg)
    assert out["verdict"] in ("confirmed", "refuted"), out.get("reason")
    assert out["evidence"]["rehearsal"].startswith("REHEARSAL")
    ev = out["evidence"]
    assert set(ev["method"]["per_dataset"]) == set(ev["baseline"]["per_dataset"]) == {
        "videomme", "longvideobench", "mlvu", "lvbench"}
    assert out["measured"] == pytest.approx(ev["method"]["average"] - ev["baseline"]["average"])
