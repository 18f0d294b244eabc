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
    assert not [p for p in out.parent.iterdir() if p.name != "methods.json"]
