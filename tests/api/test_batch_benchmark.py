"""The batch-vs-loop benchmark writes its JSON and checks its outputs (timings are recorded, not
asserted: docs/measured/batch_generation_*.json holds a run)."""
from __future__ import annotations

import json
from pathlib import Path

from replicate.harness.batch_generation import main

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_writes_json_with_equal_greedy_tokens(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["--out", str(out), "--families", "llava-onevision", "--batch", "2", "--new-tokens", "3",
                 "--repeats", "1", "--frames", "4"]) == 0
    d = json.loads(out.read_text())
    assert {r["method"] for r in d["rows"]} == {"vanilla", "holitom"}
    for r in d["rows"]:
        assert r["greedy_tokens_equal"] is True and r["batch"] == 2
        assert r["batch_s_per_request"] > 0 and r["loop_s_per_request"] > 0
        assert r["loop_over_batch"] == r["loop_s_per_request"] / r["batch_s_per_request"]
    assert d["setting"]["new_tokens"] == 3 and "provenance" in d


def test_committed_measurement_shows_the_batch_faster_per_request():
    """The recorded run (batch 4, 16 new tokens, tiny checkpoints): per request, one call on the
    batch took less CPU time than the loop, on every family and method, with equal greedy tokens."""
    files = sorted((REPO / "docs" / "measured").glob("batch_generation_*.json"))
    assert files, "no recorded run: python -m replicate.harness.batch_generation --out docs/measured/..."
    d = json.loads(files[-1].read_text())
    assert d["setting"]["batch"] == 4 and {r["family"] for r in d["rows"]} == {"llava-onevision", "qwen2.5-vl", "molmo2"}
    for r in d["rows"]:
        assert r["greedy_tokens_equal"] and r["loop_over_batch_cpu"] > 1, r["family"] + "/" + r["method"]
