"""Peak memory (inference and training) and training-step time in costmodel, against hand-worked
numbers and against the bytes a real full-width layer keeps for backward (measured on the CPU)."""
from __future__ import annotations

import pytest

from costmodel import (activation_bytes_per_token, inference_peak_bytes, load_arch, param_counts,
                       predict_latency, predict_training_step, training_peak_bytes)
from costmodel.memory import kv_cache_bytes

GB = 1e9


def _molmo2_schedules(frames: int):
    from methods.nominal import nominal_schedule
    from replicate.harness.stts_efficiency import predict, stts_schedule

    arch = load_arch("molmo2-4b")
    bins = predict("molmo2-4b", (frames,), 0.5)[0]["bins"]
    return arch, nominal_schedule(arch, "vanilla", frames=frames, text_tokens=64), \
        stts_schedule(arch, frames, 0.5, 3, bins, 64)


def test_activation_bytes_by_hand():
    arch = load_arch("molmo2-4b")
    # ViT block: 16 h + 4 I = 16 * 1152 + 4 * 4304
    assert activation_bytes_per_token(arch, "vision") == 16 * 1152 + 4 * 4304 == 35648
    # LLM layer: 12 h + 6 (q + kv) + 10 q + 8 kv + 8 I with h 2560, q 4096, kv 1024, I 9728
    assert activation_bytes_per_token(arch, "llm") == 12 * 2560 + 6 * 5120 + 10 * 4096 + 8 * 1024 + 8 * 9728
    with pytest.raises(ValueError, match="part must be 'vision' or 'llm'"):
        activation_bytes_per_token(arch, "projector")


@pytest.mark.molmo2
def test_activation_bytes_agree_with_a_full_width_layer_measured_on_the_cpu():
    from replicate.harness.activation_memory import llm_layer, vit_layer

    arch = load_arch("molmo2-4b")
    vit, llm = vit_layer(tokens=(729, 1458)), llm_layer(tokens=(128, 256))
    assert vit["plain"]["bytes_per_token"] == pytest.approx(activation_bytes_per_token(arch, "vision"), rel=0.03)
    assert llm["plain"]["bytes_per_token"] == pytest.approx(activation_bytes_per_token(arch, "llm"), rel=0.03)
    # checkpointed: the layer's input only (2 bytes per element of the width)
    assert vit["checkpointed"]["bytes_per_token"] == 2 * 1152
    assert llm["checkpointed"]["bytes_per_token"] == 2 * 2560


def test_training_peak_by_hand_and_under_70_gb_with_checkpointing():
    arch, van, stts = _molmo2_schedules(128)
    plain = training_peak_bytes(arch, van, checkpointing=False)
    ckpt = training_peak_bytes(arch, van, checkpointing=True)
    p = param_counts(arch).total
    assert plain["weights"] == ckpt["weights"] == plain["gradients"] == 2 * p
    vit_tokens = sum(load.total for load in van.vision)
    llm_tokens = sum(van.llm_prefill)
    assert ckpt["saved_activations"] == vit_tokens * 2 * 1152 + llm_tokens * 2 * 2560
    assert plain["saved_activations"] == vit_tokens * 35648 + llm_tokens * activation_bytes_per_token(arch, "llm")
    assert ckpt["total"] == pytest.approx(sum(v for k, v in ckpt.items() if k not in ("total", "checkpointing")))
    for frames in (128, 256):
        arch, van, stts = _molmo2_schedules(frames)
        for sched in (van, stts):
            assert training_peak_bytes(arch, sched, checkpointing=True)["total"] < 70 * GB
            assert training_peak_bytes(arch, sched, checkpointing=False)["total"] > 80 * GB  # beyond one H100
        assert (training_peak_bytes(arch, stts)["total"] < training_peak_bytes(arch, van)["total"])


def test_training_step_is_three_or_four_forwards():
    arch, van, stts = _molmo2_schedules(128)
    plain = predict_training_step(arch, van, "h100-sxm", checkpointing=False)
    ckpt = predict_training_step(arch, van, "h100-sxm", checkpointing=True)
    assert ckpt["step_s"] == pytest.approx(plain["step_s"] * 4 / 3)
    fwd = predict_latency(arch, van, "h100-sxm")        # prefill includes its weight read: compute-bound
    assert plain["vision_s"] == pytest.approx(3 * fwd["vision_s"], rel=1e-9)
    assert predict_training_step(arch, stts, "h100-sxm")["step_s"] < ckpt["step_s"]


def test_inference_peak_by_hand_for_llava_onevision_7b():
    from methods.nominal import nominal_schedule

    arch = load_arch("llava-onevision-7b")
    sched = nominal_schedule(arch, "vanilla", frames=32, text_tokens=100, decode_steps=32)
    m = inference_peak_bytes(arch, sched)
    assert m["weights"] == 2 * param_counts(arch).total
    assert m["kv_cache"] == kv_cache_bytes(arch, sched)["after_decode_total"]
    assert m["vision_transient"] == 32 * 729 * ((len(sched.vision) + 1) * 1152 + 4304) * 2
    assert m["total"] == m["weights"] + m["kv_cache"] + max(m["vision_transient"], m["prefill_transient"])
    assert 16 * GB < m["total"] < 20 * GB    # Tango's README: 18.6 GB peak (A800, VideoMME)
