"""replicate.microbench.methods runs end to end at tiny sizes and writes the documented JSON fields."""
from __future__ import annotations

import json

from replicate.microbench.methods import main


def test_bench_tiny_writes_json_with_provenance(tmp_path):
    out = tmp_path / "bench" / "methods.json"
    assert main(["--out", str(out), "--frames", "2", "--grid", "4", "--dim", "16", "--repeats", "1",
                 "--overhead-repeats", "2", "--methods", "random", "uniform-pool", "nope"]) == 0
    d = json.loads(out.read_text())
    assert {"packages", "threads", "commit", "config_hash"} <= set(d["provenance"])
    r = d["reductions"]
    assert r["shape"] == {"frames": 2, "grid": [4, 4], "dim": 16, "dtype": "float32", "device": "cpu"}
    assert r["methods"]["random"]["kept"] == 3 and r["methods"]["random"]["median_s"] > 0   # round(0.1*32)
    assert "not registered" in r["methods"]["nope"]["skipped"]
    o = d["adapter_overhead"]
    assert o["target_overhead"] == 0.05
    for part in ("llm_prefill", "end_to_end"):
        assert o[part]["hf"]["median_s"] > 0 and o[part]["adapter"]["median_s"] > 0
        assert o[part]["overhead"] == o[part]["adapter"]["median_s"] / o[part]["hf"]["median_s"] - 1.0
    assert not [p for p in out.parent.iterdir() if p.name not in ("methods.json", "methods.json.sha256")]  # + digest


def test_inner_stage_and_stts_steps_at_tiny_sizes():
    from replicate.microbench.methods import bench_inner_stage, bench_stts_steps

    inner = bench_inner_stage(visual=20, text=6, repeats=1, hidden=32, heads=4, kv_heads=2)
    assert inner["visual_per_layer"] == [20, 10]            # PDrop's default plan at layer 1: 0.5
    for key in ("score_last_row", "score_every_row", "prefill_pdrop", "prefill_no_plan"):
        assert inner[key]["median_s"] > 0
    stts = bench_stts_steps(frames=3, side=6, dim=8, repeats=1)
    assert stts["pruned_groups"] == 6 and stts["bins"] >= 2   # int(4 * 0.5 * 3) of 12 groups
    assert stts["pack"]["median_s"] > 0


def test_fidelity_pairs_at_tiny_sizes():
    from replicate.microbench.methods import bench_fidelity_pairs

    out = bench_fidelity_pairs(frames=2, grid=(4, 4), dim=16, key_dim=8, repeats=1, stts_frames=3, stts_side=6,
                               stts_dim=8)
    assert set(out) == {"visionzip", "fastvid", "stts_bias", "stts_select_and_pack"}
    for v in out.values():
        assert v["ratio"] == v["released"]["median_s"] / v["project"]["median_s"] > 0
