"""Verdict logic on synthetic inputs: within/outside tolerance and the not-run reasons."""
from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from replicate.analytic import COLUMNS, setting_from_claim
from replicate.claims import claims_by_id
from replicate.tiers import NO_CUDA
from replicate.verify import judge, verify_claim


@pytest.fixture(scope="module")
def registry():
    return claims_by_id()


@pytest.mark.parametrize("measured,tol,verdict", [
    (2.84, {"abs": 0.05}, "confirmed"),
    (2.75, {"abs": 0.05}, "confirmed"),   # edge: exactly on the band
    (2.86, {"abs": 0.05}, "refuted"),
    (2.5, {"rel": 0.1}, "refuted"),       # 10 % of 2.8 = 0.28 < 0.3
    (2.55, {"rel": 0.1}, "confirmed"),
    (3.5, {"abs": 0.5, "comparator": "at_least"}, "confirmed"),
    (2.2, {"abs": 0.5, "comparator": "at_least"}, "refuted"),
    (3.4, {"abs": 0.5, "comparator": "at_most"}, "refuted"),
])
def test_judge(measured, tol, verdict):
    assert judge(measured, 2.8, {**tol, "rationale": "test band"})[0] == verdict


def _flops_fixture(tmp_path, claim, paper_tflops, vanilla=40.77):
    """A one-row analytic results file as rule analytic_flops would write it."""
    s = setting_from_claim(claim["setting"])
    row = {c: None for c in COLUMNS}
    row.update(key=s.key, model=s.model, method=s.method, frames=s.frames, retention=s.retention,
               retention_effective=s.retention, options="{}", budget_rounding="per_frame_ceil",
               llm_visual_first=640, llm_visual_last=320, llm_visual_mean=500.0, vanilla_visual=6272,
               stages="0-17:640 18-27:320", vit_tokens_full=23328, vit_tokens_last=23328,
               paper_tflops=paper_tflops, paper_tflops_global_round=paper_tflops, vanilla_paper_tflops=vanilla,
               paper_ratio_pct=100 * paper_tflops / vanilla, exact_prefill_tflops=1.0, exact_total_tflops=2.0,
               exact_vision_tflops=1.0, exact_prefill_over_paper=1.0)
    out = tmp_path / "results" / "analytic"
    out.mkdir(parents=True)
    pd.DataFrame([row], columns=COLUMNS).to_csv(out / "flops.csv", index=False)
    (out / "flops.json").write_text(json.dumps({s.key: {"schedule": {"label": "x"}, "notes": []}}))


def test_analytic_claim_confirmed_and_refuted_from_the_results_file(tmp_path, registry, config):
    claim = registry["holitom-t1-flops-holitom-r10"]
    _flops_fixture(tmp_path, claim, 2.83)
    res = verify_claim(claim, results_dir=tmp_path, config=config)
    assert res["verdict"] == "confirmed" and res["measured"] == pytest.approx(2.83)
    assert res["evidence"]["result_file"] == "results/analytic/flops.csv"
    assert res["evidence"]["llm_visual_per_layer"] == "0-17:640 18-27:320"
    assert res["provenance"]["config_hash"] and "packages" in res["provenance"]
    for key in ("id", "paper", "quantity", "reported", "measured", "unit", "verdict", "reason", "evidence",
                "tolerance", "provenance"):
        assert key in res

    tmp2 = tmp_path / "b"
    _flops_fixture(tmp2, claim, 2.9)
    res = verify_claim(claim, results_dir=tmp2, config=config)
    assert res["verdict"] == "refuted" and res["measured"] == pytest.approx(2.9)
    assert res["reason"].startswith("outside tolerance")


def test_ratio_claim_records_fraction_and_printed_precision(tmp_path, registry, config):
    claim = registry["holitom-flops-ov7b-r10"]
    _flops_fixture(tmp_path, claim, 2.76)  # the global-round budget: 2.76/40.77 = 6.77 %
    res = verify_claim(claim, results_dir=tmp_path, config=config)
    assert res["measured"] == pytest.approx(6.770, abs=1e-3)
    assert res["verdict"] == "confirmed"  # |6.77 - 6.9| = 0.13 <= 0.19
    assert res["evidence"]["ratio_fraction"] == pytest.approx(0.0677, abs=1e-4)
    assert res["evidence"]["ratio_pct_from_printed_precision"] == pytest.approx(100 * 2.8 / 40.8)


def test_missing_results_file_is_not_run_naming_it(tmp_path, registry, config):
    res = verify_claim(registry["holitom-t1-flops-holitom-r10"], results_dir=tmp_path, config=config)
    assert res["verdict"] == "not-run" and res["measured"] is None
    assert "results/analytic/flops.csv" in res["reason"]


def test_gpu_claim_not_run_without_cuda(tmp_path, registry, config):
    config["gpu"] = True
    res = verify_claim(registry["holitom-ttft-ov7b-r10"], results_dir=tmp_path, config=config, cuda=False)
    assert res["verdict"] == "not-run" and res["reason"] == (
        f"gpu tier cannot run: {NO_CUDA}. To run it: on a machine with a CUDA device, snakemake --cores all "
        "--profile profiles/gpu (sets gpu: true)")


def test_paper_claim_not_run_names_config_keys(tmp_path, registry, config):
    res = verify_claim(registry["holitom-perf-kept-ov7b-r10"], results_dir=tmp_path, config=config)
    assert res["verdict"] == "not-run"
    assert "paths.checkpoints.llava-onevision-7b is empty" in res["reason"]
    assert "paths.datasets.egoschema is empty" in res["reason"]


def test_runnable_tier_without_evaluator_says_so(tmp_path, registry, config):
    claim = copy.deepcopy(registry["holitom-ttft-ov7b-r10"])
    claim["evaluator"] = "no_such_evaluator"  # a name no module registers
    config["gpu"] = True
    res = verify_claim(claim, results_dir=tmp_path, config=config, cuda=True)
    assert res["verdict"] == "not-run"
    assert res["reason"] == "evaluator 'no_such_evaluator' for gpu-tier claims is not implemented in this workflow yet"
    del claim["evaluator"]
    res = verify_claim(claim, results_dir=tmp_path, config=config, cuda=True)
    assert res["reason"] == "claim names no evaluator"


def test_evaluator_registry_rejects_duplicates():
    from replicate.evaluators import LISTED, Evaluator, build_registry

    with pytest.raises(ValueError, match="'paper_flops' is listed twice"):
        build_registry([*LISTED, Evaluator("paper_flops", "analytic", lambda c, ctx: None)])


def test_not_run_gpu_claim_carries_the_prediction_as_evidence(tmp_path, registry, config):
    out = tmp_path / "results" / "analytic"
    out.mkdir(parents=True)
    pd.DataFrame([{"id": "holitom-ttft-ov7b-r10", "ttft_speedup": 3.4, "predicted": 3.4, "predicted_unit": "x",
                   "hardware": "a100-80g", "dtype": "bf16", "attention": "sdpa", "hardware_basis": "assumed",
                   "llm_only_ttft_bound": 4.5}]).to_csv(out / "predictions.csv", index=False)
    res = verify_claim(registry["holitom-ttft-ov7b-r10"], results_dir=tmp_path, config=config, cuda=False)
    assert res["verdict"] == "not-run" and res["measured"] is None
    assert res["evidence"]["analytic_prediction"]["ttft_speedup"] == 3.4
    assert "not a measurement" in res["evidence"]["note"]
    assert res["predicted"]["value"] == 3.4 and res["predicted"]["hardware"] == "a100-80g"
    assert res["predicted"]["amdahl_ttft_bound"] == 4.5


def test_a_listed_evaluator_of_a_new_tier_verifies_its_claims(tmp_path, monkeypatch, registry, config):
    """How a tier plugs in: its evaluator joins the list; its claims then verify."""
    from replicate import evaluators
    from replicate.evaluator_base import Measurement
    from replicate.rulelib import verify_claims

    def demo(claim, ctx):
        return Measurement(float(ctx.path("results/demo.txt").read_text()), {"file": "results/demo.txt"})

    listed = [*evaluators.LISTED, evaluators.Evaluator("demo_cpu_accuracy", "cpu", demo, ("results/demo.txt",))]
    monkeypatch.setattr(evaluators, "EVALUATORS", evaluators.build_registry(listed))
    claim = copy.deepcopy(registry["holitom-perf-kept-ov7b-r10"])
    claim.update(tier="cpu", evaluator="demo_cpu_accuracy", id="demo-claim")
    (tmp_path / "claims.yaml").write_text(
        __import__("yaml").safe_dump({"version": 1, "claims": [claim]}, sort_keys=False))
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "demo.txt").write_text("99.0")
    [res] = verify_claims(ids=["demo-claim"], claims_file=str(tmp_path / "claims.yaml"),
                          outputs=[str(tmp_path / "out" / "demo-claim.json")], config=config,
                          results_dir=str(tmp_path))
    assert res["verdict"] == "confirmed" and res["measured"] == 99.0
    assert json.loads((tmp_path / "out" / "demo-claim.json").read_text())["verdict"] == "confirmed"


def _all_reasons(config, results_dir):
    from replicate.claims import load_claims
    from replicate.verify import verify_many

    return [r for r in verify_many(load_claims(), results_dir=results_dir, config=config, cuda=False)
            if r["verdict"] == "not-run"]


def test_every_not_run_reason_says_what_would_make_it_run(tmp_path, config):
    """Default config, nothing computed yet: each reason names the command, or the config key and the
    file, that would run the claim, and cites no file outside the repository."""
    not_run = _all_reasons(config, tmp_path)
    assert len(not_run) > 300
    for r in not_run:
        why, _, todo = r["reason"].partition(". To run it: ")
        assert why and todo, r["reason"]
        assert "snakemake --cores all" in todo or ("replicate/config.yaml" in todo and "tiers." in todo), r["reason"]
        if r["tier"] == "paper":
            assert "paths." in todo and "replicate/config.yaml" in todo, r["reason"]
        assert "reference/papers" not in r["reason"] and "/work/" not in r["reason"], r["reason"]


def test_a_smoke_scale_reason_reads_as_a_scale_statement(tmp_path):
    from replicate.configuration import load_config
    from replicate.verify import _scale_reason

    smoke = {"scale": "smoke", "default": False, "differs": ["stts.analytic"]}
    text = _scale_reason(smoke, ValueError("measured at frames/topk (16, 0.5), the claim needs (128, 0.5)"))
    assert text.startswith("not measured at this smoke run's scale: measured at frames/topk (16, 0.5)")
    assert text.endswith("To run it: the full default run, snakemake --cores all (no profile; the smaller sizes "
                         "come from profiles/smoke/smoke.yaml)")
    custom = _scale_reason({"scale": "custom", "differs": ["cpu.n_samples"]}, ValueError("x"))
    assert custom.endswith("the smaller sizes come from the changed keys cpu.n_samples)")
    assert load_config()  # the default config is a full run: its evaluator failures stay 'evaluator ... failed'
