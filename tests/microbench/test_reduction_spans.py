"""``python -m replicate.microbench.reduction_spans`` (issue 26, item 4): each reduction's span on a
device, eager and compiled. On the CPU this tests the code at a tiny shape; the targets are judged
only on a GPU at the full shape."""
from __future__ import annotations

import json

import pytest
import torch

from replicate.microbench import reduction_spans as R
from replicate.microbench.videos import INPUTS, video_tokens


def test_tokens_move_with_features_in_the_model_dtype():
    tokens = video_tokens(R.TINY_SPEC, INPUTS["cut-2"], seed=0)
    moved = R.on_device(tokens, torch.device("cpu"), torch.bfloat16)
    assert moved.features.dtype == moved.keys.dtype == moved.global_features.dtype == torch.bfloat16
    assert all(s.dtype == torch.float32 for s in moved.saliency.values()) and moved.timestamps.dtype == torch.float32
    assert torch.equal(moved.features, tokens.features.bfloat16()) and moved.grid == tokens.grid


def test_targets_are_judged_on_a_gpu_at_the_full_shape_only():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert R._target("tango", 14.9, cuda, R.SPEC) == {"target_ms": 15.0, "meets_target": True}
    assert R._target("visionzip", 5.1, cuda, R.SPEC) == {"target_ms": 5.0, "meets_target": False}
    assert R._target("tango", 1.0, cpu, R.SPEC)["meets_target"] is None
    assert R._target("tango", 1.0, cuda, R.TINY_SPEC)["meets_target"] is None
    assert R._target("prunevid", 1.0, cuda, R.SPEC) == {"target_ms": None, "meets_target": None}


def test_cli_dry_run_writes_eager_and_compiled_spans(tmp_path):
    out = tmp_path / "spans.json"
    assert R.main(["--tiny", "--compile", "--out", str(out), "--repeats", "2", "--warmup", "0",
                   "--inputs", "cut-2", "cut-8", "--methods", "tango", "visionzip"]) == 0
    rec = json.loads(out.read_text())
    assert rec["device"] == "cpu" and rec["dtype"] == "float32" and rec["shape"] == [4, 4, 4, 64]
    eager = [r for r in rec["records"] if r["variant"] == "eager"]
    compiled = [r for r in rec["records"] if r["variant"] == "compiled"]
    assert [(r["input"], r["method"]) for r in eager] == [(i, m) for i in ("cut-2", "cut-8") for m in ("tango", "visionzip")]
    assert all(len(r["runs_ms"]) == 2 and r["median_ms"] > 0 and r["ops"] > r["kernels"] > 0 for r in eager)
    assert [(r["input"], r["method"]) for r in compiled] == [("cut-2", "tango"), ("cut-2", "visionzip")]
    assert all(r["indices_equal"] and r["max_abs_feature_diff"] == 0.0 and r["first_call_s"] > 0 for r in compiled)


def test_a_compilation_that_fails_is_recorded_and_one_that_would_not_fit_is_skipped(monkeypatch):
    tokens = R.on_device(video_tokens(R.TINY_SPEC, INPUTS["cut-2"], seed=0), torch.device("cpu"), torch.float32)
    broken = R.compiled_span("visionzip", tokens, 1, 0, backend="no-such-backend")
    assert "error" in broken and "median_ms" not in broken
    recs = R.run(torch.device("cpu"), torch.float32, ["cut-2"], ["dycoke"], 1, 0, True, R.TINY_SPEC, "eager",
                 eager=False, time_left=lambda: 10.0, compile_estimate_s=90.0)
    assert len(recs) == 1 and "10 s left" in recs[0]["skipped"]


def test_cli_refuses_a_device_it_cannot_use(tmp_path, capsys):
    for device, needle in (("tpu:7", "--device"), ("cuda", "cuda.is_available")):
        if device == "cuda" and torch.cuda.is_available():
            continue
        with pytest.raises(SystemExit) as e:
            R.main(["--out", str(tmp_path / "x.json"), "--device", device, "--tiny"])
        assert e.value.code == 2 and needle in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
