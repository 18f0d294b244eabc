"""cpu/gpu-tier evaluators on synthetic result files: confirmed, refuted and not-run."""

import pandas as pd
import pytest

from replicate.claims import load_claims
from replicate.configuration import load_config
from replicate.io import write_csv, write_json
from replicate.verify import verify_claim

CLAIMS = {c["id"]: c for c in load_claims()}


def _acc(tmp_path, holitom_acc, tango_status="ok", vanilla=0.80):
    rows = [
        {"method": "vanilla", "rtag": "full", "status": "ok", "accuracy": vanilla},
        {"method": "holitom", "rtag": "r0.10", "status": "ok", "accuracy": holitom_acc},
        {"method": "tango", "rtag": "r0.10", "status": tango_status, "accuracy": 0.79 if tango_status == "ok" else None,
         "reason": None if tango_status == "ok" else "options rejected: x"},
    ]
    for r in rows:
        r.update(dataset="SynthVideoQA-test", n=500, vanilla_accuracy=vanilla, chance_accuracy=0.25,
                 mean_visual_tokens_llm=13, vanilla_visual_tokens=128, options_applied="{}", layers_scaled="{}",
                 perf_kept_pct=None if r["accuracy"] is None else 100 * r["accuracy"] / vanilla)
        r.setdefault("reason", None)
    write_csv(tmp_path / "results/cpu/accuracy.csv", pd.DataFrame(rows))


def _eff(tmp_path, measured, predicted, repeats=5, warmup=1):
    write_csv(tmp_path / "results/cpu/efficiency.csv", pd.DataFrame([
        {"method": "vanilla", "rtag": "full", "status": "ok", "speedup_ttft_measured": 1.0, "speedup_ttft_predicted": 1.0,
         "repeats": repeats, "warmup": warmup},
        {"method": "tango", "rtag": "r0.10", "status": "ok", "speedup_ttft_measured": measured,
         "speedup_ttft_predicted": predicted, "repeats": repeats, "warmup": warmup}]))


def _gpu(tmp_path, ttft_h, dec_h):
    def cell(m, tag, ttft, dec):
        return {"method": m, "rtag": tag, "status": "ok", "device": "cuda", "measured_vision_s": 0.5,
                "measured_other_s": 0.05, "measured_llm_s": ttft - 0.55, "measured_ttft_s": ttft,
                "measured_decode_tokens_per_s": dec, "predicted_ttft_s": ttft, "peak_memory": 17.0,
                "peak_memory_unit": "GB (cuda allocated)"}
    write_json(tmp_path / "results/gpu/efficiency/summary.json", {"cells": [
        cell("vanilla", "full", 1.687, 29.5), cell("holitom", "r0.10", ttft_h, dec_h),
        cell("tango", "r0.10", 1.687 / 1.88, 38.0)]})


def test_cpu_perf_kept_analogue_or_not_run(tmp_path):
    cfg = load_config()
    _acc(tmp_path, holitom_acc=0.77, tango_status="not-applicable")  # 96.25 % >= 94.1
    v = verify_claim(CLAIMS["holitom-perf-kept-synth-r10"], results_dir=tmp_path, config=cfg)
    assert v["verdict"] == "analogue" and v["measured"] == pytest.approx(96.25)  # recorded, never judged
    assert v["reported"] is None and v["paper_value_context"] == 99.1
    t = verify_claim(CLAIMS["tango-perf-kept-synth-r10"], results_dir=tmp_path, config=cfg)
    assert t["verdict"] == "not-run" and "did not run" in t["reason"]
    _acc(tmp_path, holitom_acc=0.70)  # 87.5 %
    v = verify_claim(CLAIMS["holitom-perf-kept-synth-r10"], results_dir=tmp_path, config=cfg, cache={})
    assert v["verdict"] == "analogue" and v["measured"] == pytest.approx(87.5)
    _acc(tmp_path, holitom_acc=0.30, vanilla=0.30)  # vanilla near chance (0.25): ratio is noise
    near = verify_claim(CLAIMS["holitom-perf-kept-synth-r10"], results_dir=tmp_path, config=cfg, cache={})
    assert near["verdict"] == "not-run" and "chance" in near["reason"]
    off = verify_claim(CLAIMS["holitom-perf-kept-synth-r10"], results_dir=tmp_path,
                       config={**cfg, "tiers": {**cfg["tiers"], "cpu": False}})
    assert off["verdict"] == "not-run" and "disabled" in off["reason"]


def test_cpu_speedup_against_the_cost_model(tmp_path):
    cfg = load_config()
    _eff(tmp_path, measured=1.5, predicted=1.6)  # 0.9375, within 1 +- 0.25
    v = verify_claim(CLAIMS["project-costmodel-cpu-ttft-tango-r10"], results_dir=tmp_path, config=cfg)
    assert v["verdict"] == "confirmed" and v["measured"] == pytest.approx(1.5 / 1.6)
    _eff(tmp_path, measured=1.0, predicted=2.0)
    v = verify_claim(CLAIMS["project-costmodel-cpu-ttft-tango-r10"], results_dir=tmp_path, config=cfg, cache={})
    assert v["verdict"] == "refuted" and v["measured"] == pytest.approx(0.5)
    _eff(tmp_path, measured=1.5, predicted=1.6, repeats=1, warmup=0)  # the smoke profile's timing
    one = verify_claim(CLAIMS["project-costmodel-cpu-ttft-tango-r10"], results_dir=tmp_path, config=cfg, cache={})
    assert one["verdict"] == "not-run" and "repeats=1" in one["reason"]
    missing = verify_claim(CLAIMS["project-costmodel-cpu-ttft-tango-r10"], results_dir=tmp_path / "nothing", config=cfg)
    assert missing["verdict"] == "not-run" and "results/cpu/efficiency.csv" in missing["reason"]


def test_gpu_evaluators(tmp_path):
    cfg = {**load_config(), "gpu": True}
    _gpu(tmp_path, ttft_h=1.687 / 2.28, dec_h=29.5 * 1.32)
    for cid in ("holitom-ttft-ov7b-r10", "holitom-decode-ov7b-r10", "tango-speedup-ov7b-r10"):
        v = verify_claim(CLAIMS[cid], results_dir=tmp_path, config=cfg, cuda=True)
        assert v["verdict"] == "confirmed", (cid, v["reason"])
    assert verify_claim(CLAIMS["holitom-ttft-ov7b-r10"], results_dir=tmp_path, config=cfg,
                        cuda=True)["measured"] == pytest.approx(2.28)
    _gpu(tmp_path, ttft_h=1.687 / 1.2, dec_h=29.5)
    v = verify_claim(CLAIMS["holitom-ttft-ov7b-r10"], results_dir=tmp_path, config=cfg, cuda=True, cache={})
    assert v["verdict"] == "refuted" and v["measured"] == pytest.approx(1.2)
    here = verify_claim(CLAIMS["holitom-ttft-ov7b-r10"], results_dir=tmp_path, config=load_config(), cuda=False)
    assert here["verdict"] == "not-run" and "no CUDA" in here["reason"]
    part = verify_claim(CLAIMS["tango-readme-vit-ms"], results_dir=tmp_path, config=cfg, cuda=True, cache={})
    assert part["measured"] == pytest.approx(500.0) and part["evidence"]["part"] == "vision"
