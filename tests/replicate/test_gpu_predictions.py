"""A cost-model prediction beside every gpu-tier claim: peak memory and training-step time too."""
from __future__ import annotations

import pytest

from replicate.analytic import predict_claims
from replicate.claims import load_claims, load_document

#: the gpu claims that had no prediction before peak memory, training steps and PDrop's retention
#: (mapped onto the harness's PDrop options) were predicted
FORMERLY_UNPREDICTED = ("tango-readme-peak-mem-gb", "stts-efficiency-128f-train", "stts-efficiency-256f-train",
                        "holitom-f-ttft-vit-pdrop", "holitom-f-ttft-other-pdrop", "holitom-f-ttft-llm-pdrop",
                        "holitom-f-decode-pdrop")


@pytest.fixture(scope="module")
def rows(repo_root):
    claims = load_claims(repo_root / "replicate" / "claims.yaml")
    targets = load_document(repo_root / "replicate" / "claims.yaml").get("predictions")
    return claims, {r["id"]: r for r in predict_claims(claims, targets)}


def test_every_gpu_claim_has_a_prediction(rows):
    claims, by_id = rows
    gpu = [c["id"] for c in claims if c["tier"] == "gpu"]
    assert not [c for c in gpu if c not in by_id]
    assert set(FORMERLY_UNPREDICTED) <= set(by_id)


def test_training_and_memory_predictions_are_the_cost_models(rows):
    from costmodel import inference_peak_bytes, load_arch, predict_training_step
    from methods.nominal import nominal_schedule

    _, by_id = rows
    mem = by_id["tango-readme-peak-mem-gb"]
    arch = load_arch("llava-onevision-7b")
    sched = nominal_schedule(arch, "tango", retention=0.1, frames=32, text_tokens=100, decode_steps=64,
                             budget="per_frame")
    assert mem["predicted_unit"] == "GB" and mem["hardware"] == "a800"
    assert mem["predicted"] == pytest.approx(inference_peak_bytes(arch, sched)["total"] / 1e9)
    for f in (128, 256):
        row = by_id[f"stts-efficiency-{f}f-train"]
        assert row["predicted_unit"] == "x" and row["train_checkpointing"] is True
        assert row["predicted"] == pytest.approx(row["baseline_train_step_ms"] / row["method_train_step_ms"])
        assert row["train_peak_memory_gb"] < row["baseline_train_peak_memory_gb"] < 70
    molmo = load_arch("molmo2-4b")
    van = nominal_schedule(molmo, "vanilla", frames=128, text_tokens=100, decode_steps=64)
    assert by_id["stts-efficiency-128f-train"]["baseline_train_step_ms"] == pytest.approx(
        1e3 * predict_training_step(molmo, van, "h100-sxm")["step_s"])


def test_pdrop_at_a_retention_is_predicted_with_the_harness_options(rows):
    from types import SimpleNamespace

    from replicate.analytic import _gpu_setting
    from replicate.harness.options import cell_setting

    _, by_id = rows
    r = by_id["holitom-f-ttft-llm-pdrop"]
    llava_ov_7b = SimpleNamespace(num_layers=28, vision_layers=None, newline_policy=None)  # what the harness runs
    applied = cell_setting(llava_ov_7b, "pdrop", 0.10).applied
    predicted = dict(_gpu_setting({"setting": {"model": "llava-onevision-7b", "method": "pdrop", "frames": 32,
                                               "retention": 0.10}}).options)
    assert predicted == {"lam": applied["lam"], "layers": list(applied["layers"])}
    assert r["retention"] is None and r["predicted_unit"] == "ms" and 0 < r["predicted"] < r["baseline_ttft_ms"]
    assert applied["lam"] == pytest.approx(0.10 ** (1 / len(applied["layers"])))


def test_the_report_explains_a_training_prediction_off_its_band():
    from replicate.report import disagreements

    result = {"id": "stts-efficiency-128f-train", "paper": "stts", "kind": "paper", "quantity": "efficiency_speedup",
              "evaluator": "gpu_training_speedup", "reported": 1.62, "unit": "x",
              "tolerance": {"rel": 0.15}, "predicted": {"value": 1.96, "unit": "x", "hardware": "h100-sxm"},
              "evidence": {"analytic_prediction": {"baseline_train_step_ms": 1390.0, "method_train_step_ms": 709.0,
                                                   "train_checkpointing": True}}}
    lines = disagreements([result])
    assert len(lines) == 1 and "four forward passes" in lines[0] and "1390 ms" in lines[0].replace(",", "")
