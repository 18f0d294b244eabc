"""Every registered method runs end to end on a tiny LLaVA-OV (encode -> reduce -> prefill ->
greedy generation) and its KV-cached generation equals recomputing the whole prefix each step.

The tiny LLM has 4 layers, so inner-LLM layers are given explicitly (the paper defaults, e.g.
HoliTom's K=18, do not exist at this depth)."""
from __future__ import annotations

import pytest
import torch

from methods import apply_method, list_methods
from methods.adapters import LlavaOnevisionAdapter

FRAMES = 8
# options that make each method valid on a 4-layer LLM / 2-layer tower, at a moderate retention
OPTIONS = {
    "vanilla": {},
    "random": {"retention": 0.5},
    "uniform-pool": {"retention": 0.25},
    "visionzip": {"retention": 0.5},
    "dycoke": {"retention": 0.5},
    "prunevid": {"retention": 0.5, "selected_layer": 1},
    "fastvid": {"retention": 0.5},
    "holitom-wo-m": {"retention": 0.5},
    "holitom": {"retention": 0.5, "inner_k": 2, "inner_r": 0.5},
    "tango": {"retention": 0.5},
    "fastv": {"k": 2, "keep": 0.5},
    "pdrop": {"lam": 0.5, "layers": (1, 2, 3)},
    "stts": {"topk": 0.5, "prune_at": 0},
    "stts-random": {"topk": 0.5, "prune_at": 0},
    "stts-heuristic": {"topk": 0.5, "prune_at": 0},
    "stts-easy": {"topk": 0.5, "prune_at": 0},
    "tome": {"retention": 1.0},   # 2-block tower: 16 -> 8 -> 4 per frame (as many as pooling gives)
}


def test_every_registered_method_is_covered_here():
    assert set(list_methods()) == set(OPTIONS), "add options for new methods to this test"


@pytest.fixture(scope="module")
def adapter():
    return LlavaOnevisionAdapter.tiny(seed=0)


@pytest.fixture(scope="module")
def video(adapter):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, 3, adapter.image_size, adapter.image_size, generator=g)
    # half the frames repeat the first one, so temporal methods find static content
    noise = torch.randn(FRAMES, 3, adapter.image_size, adapter.image_size, generator=g)
    pixels = base.repeat(FRAMES, 1, 1, 1) + (torch.arange(FRAMES) >= FRAMES // 2).float().view(-1, 1, 1, 1) * noise
    return pixels, torch.arange(FRAMES, dtype=torch.float32) * 0.5


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_cached_generation_equals_recompute_and_schedule_is_recorded(adapter, video, name):
    pixels, times = video
    with apply_method(adapter, name, **OPTIONS[name]) as handle:
        tokens = adapter.encode_video(pixels, times)
        reduction = handle.method.reduce(tokens) if handle.method.has_pre_llm else None
        inputs = adapter.build_inputs("What happens in the video?", tokens, reduction)
        cached = adapter.generate(inputs, max_new_tokens=4, use_cache=True)
        recomputed = adapter.generate(inputs, max_new_tokens=4, use_cache=False)
    assert cached.tokens == recomputed.tokens
    for a, b in zip(cached.step_logits, recomputed.step_logits):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    sched = cached.schedule
    assert sched.decode_steps == 3
    full = FRAMES * adapter.tokens_per_frame
    # in-ViT methods without a pre-LLM stage (tome) hand the LLM what their tower produced
    expected_in = tokens.num_tokens if reduction is None else reduction.num_tokens
    assert sched.llm_visual[0] == expected_in
    assert all(a >= b for a, b in zip(sched.llm_visual, sched.llm_visual[1:])), "tokens never come back"
    if name != "vanilla":  # fewer LLM tokens, or (in-ViT methods) less vision-tower work
        tower_work = sum(v.total for v in sched.vision)
        assert (sum(sched.llm_visual) < adapter.num_layers * full
                or tower_work < adapter.vision_layers * FRAMES * adapter.tower_tokens), f"{name} pruned nothing"
    assert adapter.method is None  # detached
