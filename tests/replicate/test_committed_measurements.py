"""Committed GPU measurements serve the gpu tier where no CUDA device is present (replicate/gpu/committed.py).

The measurement file here is a TEST FIXTURE written by the test into a temporary folder (made-up
numbers, a GPU named "TEST FIXTURE GPU"): it exercises the path, it is no measurement and nothing
like it is committed. A real one comes from replicate/gpu/device_run.sh on a lent GPU."""
from __future__ import annotations

import json

import pytest

from replicate.claims import load_claims
from replicate.gpu import committed as C
from replicate.tiers import NO_CUDA, tier_status

FIXTURE_GPU = "TEST FIXTURE GPU"
WHEN = "2099-01-01T00:00:00Z"
# made-up seconds: TTFT parts (vision, other, llm) and decode tok/s per method
FAKE = {"vanilla": (0.30, 0.0, 0.60, 30.0), "tango": (0.30, 0.05, 0.08, 39.0), "holitom": (0.30, 0.03, 0.09, 38.0)}


def _cell(method: str) -> dict:
    v, o, l, tok = FAKE[method]
    return {"record": "measurement", "section": "llava-onevision-7b", "arch": "llava-onevision-7b", "device": "cuda",
            "method": method, "rtag": "full" if method == "vanilla" else "r0.10",
            "retention": None if method == "vanilla" else 0.10, "label": method, "status": "ok",
            "measured": {"vision_s": v, "other_s": o, "llm_s": l, "ttft_s": v + o + l, "decode_tokens_per_s": tok},
            "memory": {"peak_allocated_gb": 17.5}, "visual_tokens_llm": 100,
            "host_syncs": {"timed_stages": {"prefill": 3}}}


def _stts_summary(train_ok: bool = True) -> dict:
    row = {"frames": 128, "device": "cuda:0", "dtype": "bfloat16", "checkpointing": True, "stts_bins": 65,
           "vanilla_inference_s": 1.6, "stts_inference_s": 1.0, "inference_speedup": 1.6}
    if train_ok:
        row.update(vanilla_train_step_s=4.0, stts_train_step_s=2.5, training_speedup=1.6)
    else:
        row.update(vanilla_train_step_status="out-of-memory", vanilla_train_step_reason="CUDA out of memory",
                   stts_train_step_s=2.5)
    return {"record": "stts-summary", "section": "molmo2-4b", "rows": [row]}


def write_fixture(folder, *, tiny: bool = False, device: str = "cuda", train_ok: bool = True):
    header = {"record": "header", "device": device, "tiny": tiny, "gpu": FIXTURE_GPU, "driver": "0.0", "cuda": "0.0",
              "torch": "0.0", "transformers": "0.0", "commit": "f" * 40, "timestamp": WHEN, "dtype": "bf16",
              "attn_implementation": "sdpa", "note": "TEST FIXTURE, not a measurement"}
    records = [header, *(_cell(m) for m in FAKE), _stts_summary(train_ok)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / C.FILE_NAME).write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def config(tmp_path):
    return {"gpu": False, "tiers": {}, "paths": {"gpu_measurements": str(tmp_path / "measured")}}


def test_only_a_real_gpu_run_counts(config, tmp_path):
    assert C.find(config) is None
    write_fixture(tmp_path / "measured" / "cpu-dry-run", tiny=True, device="cpu")
    assert C.find(config) is None                     # a dry run is never a measurement
    st = tier_status("gpu", config, cuda=False)
    assert not st.runnable and st.reason.startswith(NO_CUDA)
    write_fixture(tmp_path / "measured" / "fixture-gpu")
    found = C.find(config)
    assert found is not None and found.header["gpu"] == FIXTURE_GPU
    assert tier_status("gpu", config, cuda=False).source == "committed"
    assert tier_status("gpu", {**config, "gpu": True}, cuda=True).source == "device"   # a GPU box measures afresh


def _verify(claim_id, config, root):
    from replicate.verify import verify_claim

    claim = {c["id"]: c for c in load_claims()}[claim_id]
    return verify_claim(claim, results_dir=root, config=config, cuda=False)


def test_gpu_verdicts_from_the_committed_run_name_where_and_when(config, tmp_path):
    write_fixture(tmp_path / "measured" / "fixture-gpu")
    root = tmp_path / "run"
    C.write_results(C.find(config), root / "results/gpu/efficiency/summary.json",
                    root / "results/gpu/stts/efficiency.json")
    for cid in ("holitom-ttft-ov7b-r10", "tango-speedup-ov7b-r10", "tango-readme-peak-mem-gb",
                "stts-efficiency-128f", "stts-efficiency-128f-train"):
        r = _verify(cid, config, root)
        assert r["verdict"] in ("confirmed", "refuted"), (cid, r["reason"])
        assert f"measured on {FIXTURE_GPU}" in r["reason"] and WHEN in r["reason"], r["reason"]
    ttft = _verify("holitom-ttft-ov7b-r10", config, root)
    assert ttft["measured"] == pytest.approx(0.90 / 0.42)
    assert ttft["evidence"]["measurement_source"]["file"].endswith(C.FILE_NAME)
    assert _verify("tango-readme-peak-mem-gb", config, root)["measured"] == 17.5


def test_an_out_of_memory_training_step_leaves_its_claim_not_run_with_the_reason(config, tmp_path):
    write_fixture(tmp_path / "measured" / "fixture-gpu", train_ok=False)
    root = tmp_path / "run"
    C.write_results(C.find(config), root / "results/gpu/efficiency/summary.json",
                    root / "results/gpu/stts/efficiency.json")
    r = _verify("stts-efficiency-128f-train", config, root)
    assert r["verdict"] == "not-run"
    assert "training did not complete (vanilla: CUDA out of memory)" in r["reason"], r["reason"]
    assert _verify("stts-efficiency-128f", config, root)["verdict"] in ("confirmed", "refuted")


def test_nothing_is_committed_as_a_measurement_yet(repo_root):
    """No lent GPU has run the device script for this repository: the folder holds no run (a real
    one is the device script's file, copied as it came back)."""
    assert C.find({}, repo=repo_root) is None
