"""Weights, KV cache, roofline latency, efficiency fit and the Amdahl TTFT bound."""
import pytest

from costmodel import (amdahl_ttft_bound, fit_efficiency, kv_bytes_per_token, kv_cache_bytes, load_arch,
                       load_hardware, param_counts, predict_latency, weight_bytes)
from methods.nominal import nominal_schedule
from costmodel.latency import HARDWARE_NAMES

OV = load_arch("llava-onevision-7b")


def test_kv_bytes_qwen2_7b_by_hand():
    # 2 (K,V) · 4 KV heads · 128 head dim · 2 bytes = 2048 bytes per token per layer in bf16
    assert kv_bytes_per_token(OV, "bf16") == 2 * 4 * 128 * 2 == 2048
    s = nominal_schedule(OV, "vanilla", text_tokens=100, decode_steps=10)
    kv = kv_cache_bytes(OV, s)
    assert kv["prefill_total"] == 28 * 6373 * 2048
    assert kv["after_decode_total"] == 28 * 6383 * 2048
    assert kv["per_layer_prefill"][0] == 6373 * 2048
    assert kv_cache_bytes(OV, s, "fp32", decode_steps=0)["after_decode_total"] == 28 * 6373 * 4096


def test_kv_follows_inner_pruning():
    s = nominal_schedule(OV, "holitom", retention=0.1)
    per_layer = kv_cache_bytes(OV, s)["per_layer_prefill"]
    assert per_layer[17] == (627 + 1) * 2048 and per_layer[18] == (314 + 1) * 2048


def test_param_counts_match_published_sizes():
    assert param_counts(OV).total / 1e9 == pytest.approx(8.03, abs=0.01)  # HF: 8.03 B
    assert param_counts(load_arch("llava-onevision-72b")).total / 1e9 == pytest.approx(73.2, abs=0.1)
    assert param_counts(load_arch("qwen2.5-vl-7b")).total / 1e9 == pytest.approx(8.29, abs=0.01)
    assert weight_bytes(OV, "bf16")["total"] == 2 * param_counts(OV).total
    with pytest.raises(ValueError, match="unknown dtype 'fp12'"):
        weight_bytes(OV, "fp12")


def test_hardware_table_has_sources():
    assert set(HARDWARE_NAMES) >= {"h100-sxm", "h200", "a100-80g", "a800", "cpu-2core"}
    h100 = load_hardware("h100-sxm")
    assert (h100.peak_tflops_bf16, h100.hbm_tbps) == (989, 3.35)
    assert all(load_hardware(n).source for n in HARDWARE_NAMES)
    with pytest.raises(ValueError, match="unknown hardware 'tpu'.*h100-sxm"):
        load_hardware("tpu")


def test_roofline_regimes():
    s = nominal_schedule(OV, "vanilla", text_tokens=100, decode_steps=100)
    h100, h200 = predict_latency(OV, s, "h100-sxm"), predict_latency(OV, s, "h200")
    assert h100["prefill_s"] == pytest.approx(h200["prefill_s"])  # same compute peak: compute-bound
    assert h200["decode_s_per_token"] < h100["decode_s_per_token"]  # more bandwidth: memory-bound
    assert h100["ttft_s"] == pytest.approx(h100["vision_s"] + h100["other_s"] + h100["prefill_s"])
    # decode ≈ (weights without embedding + KV) / (bandwidth · 0.7)
    p = param_counts(OV)
    expected = (2 * p.llm_per_token_read + (28 * 6373 + 28 * 50.5) * 2048) / (3.35e12 * 0.7)
    assert h100["decode_s_per_token"] == pytest.approx(expected, rel=1e-9)
    pruned = predict_latency(OV, nominal_schedule(OV, "holitom", retention=0.1, text_tokens=100), "h100-sxm")
    assert pruned["prefill_s"] < 0.15 * h100["prefill_s"] and pruned["vision_s"] == h100["vision_s"]


def test_fit_efficiency():
    predicted = [1.0, 2.0, 4.0]
    assert fit_efficiency([2.0, 4.0, 8.0], predicted) == pytest.approx(0.5)
    s = nominal_schedule(OV, "vanilla")
    half = predict_latency(OV, s, "h100-sxm", efficiency={"prefill": 0.3})
    full = predict_latency(OV, s, "h100-sxm", efficiency={"prefill": 0.6})
    assert half["prefill_s"] == pytest.approx(2 * full["prefill_s"])
    with pytest.raises(ValueError, match="same non-zero length"):
        fit_efficiency([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="bad efficiency"):
        predict_latency(OV, s, "h100-sxm", efficiency={"prefill": 1.5})


def test_amdahl_bound_reproduces_holitom_h3():
    """HoliTom figure: vanilla 500+45+1142 ms; HoliTom 500+85+156 ms -> 2.28x. If only the LLM part
    shrank (to 156/1142), the bound is (1687)/(545+156) = 2.41x; with an empty LLM, 3.10x."""
    assert amdahl_ttft_bound(500, 45, 1142, 156 / 1142) == pytest.approx(1687 / 701)
    assert amdahl_ttft_bound(500, 45, 1142, 0.0) == pytest.approx(1687 / 545)
    assert amdahl_ttft_bound(500, 45, 1142, 1.0) == 1.0
    with pytest.raises(ValueError, match="llm_fraction_kept"):
        amdahl_ttft_bound(1, 1, 1, 1.5)


@pytest.mark.parametrize("name,config_cls,model_cls", [
    ("llava-onevision-7b", "LlavaOnevisionConfig", "LlavaOnevisionForConditionalGeneration"),
    ("qwen2.5-vl-7b", "Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration"),
    ("molmo2-4b", "Molmo2Config", "Molmo2ForConditionalGeneration"),
])
def test_param_counts_equal_hf_model_on_meta(name, config_cls, model_cls):
    """The analytic parameter count equals the HF model built from the shipped config (meta device)."""
    import torch
    import transformers

    from costmodel import load_config

    def clean(d):
        return {k: clean(v) if isinstance(v, dict) else v for k, v in d.items() if not k.startswith("_")}

    config = getattr(transformers, config_cls)(**clean(load_config(name)))
    with torch.device("meta"):
        model = getattr(transformers, model_cls)(config)
    assert param_counts(load_arch(name)).total == sum(p.numel() for p in model.parameters())
