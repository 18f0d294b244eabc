"""The shared inner-LLM pruning runtime: the acceptance criteria of methods.runtime.

- keep-all reproduces the unmodified HF model (prefill logits and greedy generation);
- masking mode == in-place removal;
- greedy generation with the ragged KV cache == recomputing the whole prefix each step;
- scores equal the head-averaged eager attention of layer K-1;
- the KV cache is full below K and pruned from K, decode positions continue the original ones.
"""
from __future__ import annotations

import pytest
import torch

from methods.adapters import LlavaOnevisionAdapter
from methods.runtime import (InnerPlan, InnerStage, VISUAL, inner_keep_count, llm_prefill,
                             merge_dropped, score_visual)

LAYERS = 4


@pytest.fixture(scope="module")
def ad():
    return LlavaOnevisionAdapter.tiny("llava-onevision", seed=3, layers=LAYERS, image_size=84)


@pytest.fixture(scope="module")
def inputs(ad):
    px = torch.randn(4, 3, 84, 84, generator=torch.Generator().manual_seed(1))
    return ad.build_inputs("What is in the video?", ad.encode_video(px))  # 4 x 9 visual tokens


def _plan(merge="drop", scoring="last", mode="inplace", stages=((2, 0.5),)):
    return InnerPlan(tuple(InnerStage(k, p) for k, p in stages), scoring=scoring, merge=merge, mode=mode)


def test_keep_all_plan_equals_no_plan(ad, inputs):
    full, _ = ad.prefill(inputs, all_logits=True)
    kept, res = ad.prefill(inputs, _plan(stages=((1, 1.0),)), all_logits=True)
    assert res.llm_visual == [36] * LAYERS
    assert (full - kept).abs().max().item() == 0.0


@pytest.mark.parametrize("merge", ["drop", "mean", "blend", "running-pairwise"])
@pytest.mark.parametrize("scoring", ["last", "mean"])
def test_mask_mode_equals_inplace(ad, inputs, merge, scoring):
    a, ra = ad.prefill(inputs, _plan(merge, scoring, "inplace"))
    b, rb = ad.prefill(inputs, _plan(merge, scoring, "mask"))
    assert [t.tolist() for t in ra.stage_keeps] == [t.tolist() for t in rb.stage_keeps]
    assert ra.llm_visual == rb.llm_visual == [36, 36, 18, 18]
    assert (a - b).abs().max().item() < 1e-5


def test_mask_equals_inplace_multistage_and_extreme_layers(ad, inputs):
    for stages in (((1, 0.5), (2, 0.25), (3, 0.125)), ((1, 0.3),), ((LAYERS - 1, 0.5),)):
        a, _ = ad.prefill(inputs, _plan("mean", "last", "inplace", stages))
        b, _ = ad.prefill(inputs, _plan("mean", "last", "mask", stages))
        assert (a - b).abs().max().item() < 1e-5


@pytest.mark.parametrize("merge,mode", [("drop", "inplace"), ("running-pairwise", "inplace"),
                                        ("blend", "mask")])
def test_cached_generation_equals_full_recompute(ad, inputs, merge, mode):
    plan = _plan(merge, "last", mode, ((1, 0.5), (3, 0.25)))
    cached = ad.generate(inputs, max_new_tokens=6, plan=plan)
    recomputed = ad.generate(inputs, max_new_tokens=6, plan=plan, use_cache=False)
    assert cached.tokens == recomputed.tokens
    diff = max((x - y).abs().max().item() for x, y in zip(cached.step_logits, recomputed.step_logits))
    assert diff < 1e-4, diff


def test_masked_generation_equals_inplace_generation(ad, inputs):
    a = ad.generate(inputs, max_new_tokens=5, plan=_plan("mean", mode="inplace"))
    b = ad.generate(inputs, max_new_tokens=5, plan=_plan("mean", mode="mask"))
    assert a.tokens == b.tokens
    assert max((x - y).abs().max().item() for x, y in zip(a.step_logits, b.step_logits)) < 1e-4


def test_ragged_cache_lengths_and_decode_positions(ad, inputs):
    _, res = ad.prefill(inputs, _plan(stages=((2, 0.5),)))
    L = inputs.length
    assert res.cache.lengths() == (L, L, L - 18, L - 18)
    assert res.next_position == L          # first generated token continues the unpruned prompt
    assert int(res.index[-1]) == L - 1      # text after the video is never pruned
    newline = int((inputs.kinds == 2).nonzero()[0])
    assert newline in res.index.tolist()    # newline tokens are never pruned inside the LLM


def test_scores_equal_eager_attention_of_layer_k_minus_1(ad, inputs):
    lm = ad.lm
    lm.config._attn_implementation = "eager"
    try:
        out = lm(inputs_embeds=inputs.inputs_embeds, output_attentions=True, output_hidden_states=True)
    finally:
        lm.config._attn_implementation = "sdpa"
    layer = 1
    h_in = out.hidden_states[layer]                               # input of decoder layer 1
    cos, sin = lm.rotary_emb(h_in, inputs.position_ids[None])
    attn = out.attentions[layer][0].mean(0)                       # (L, L) heads averaged
    last = score_visual(lm, layer, h_in, cos, sin, None, "last")
    mean = score_visual(lm, layer, h_in, cos, sin, None, "mean", chunk=7)
    assert torch.allclose(last, attn[-1], atol=1e-6)
    assert torch.allclose(mean, attn.mean(0), atol=1e-6)


def test_kept_tokens_are_the_top_scored(ad, inputs):
    lm = ad.lm
    lm.config._attn_implementation = "eager"
    try:
        out = lm(inputs_embeds=inputs.inputs_embeds, output_attentions=True)
    finally:
        lm.config._attn_implementation = "sdpa"
    row = out.attentions[1][0].mean(0)[-1]
    vis = (inputs.kinds == VISUAL).nonzero().squeeze(1)
    expected = vis[torch.topk(row[vis], 18).indices].sort().values
    _, res = ad.prefill(inputs, _plan(stages=((2, 0.5),)))
    assert res.stage_keeps[0].tolist() == expected.tolist()


def test_merge_rules_by_hand():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.1], [4.0, 0.0], [0.1, 3.0]])
    kept, dropped = torch.tensor([0, 1]), torch.tensor([2, 3, 4])  # 2,3 -> token 0; 4 -> token 1
    assert torch.allclose(merge_dropped(h, kept, dropped, "drop"), h[:2])
    mean = merge_dropped(h, kept, dropped, "mean")
    assert torch.allclose(mean, torch.tensor([[7.0 / 3, 0.1 / 3], [0.05, 2.0]]))
    blend = merge_dropped(h, kept, dropped, "blend", 0.6)
    assert torch.allclose(blend, 0.6 * h[:2] + 0.4 * mean)
    rp = merge_dropped(h, kept, dropped, "running-pairwise")
    seq = h[:2].clone()
    for d, t in ((2, 0), (3, 0), (4, 1)):     # HoliTom's sequential loop
        seq[t] = (seq[t] + h[d]) / 2
    assert torch.allclose(rp, seq)


def test_keep_count_and_plan_validation():
    assert inner_keep_count(36, 0.5) == 18 and inner_keep_count(5, 0.5) == 3  # half rounds up
    assert _plan(stages=((1, 0.5), (2, 0.25))).nominal_visual(36, 4) == (36, 18, 9, 9)
    with pytest.raises(ValueError, match=r"K=4 is outside the allowed range \[1, 3\]"):
        _plan(stages=((4, 0.5),)).validate(4)
    with pytest.raises(ValueError, match=r"K=0 is outside"):
        _plan(stages=((0, 0.5),)).validate(4)
    with pytest.raises(ValueError, match=r"keep must be in \(0, 1\]"):
        InnerStage(2, 1.5)
    with pytest.raises(ValueError, match="scoring must be one of"):
        InnerPlan((InnerStage(1, 0.5),), scoring="first")
    with pytest.raises(ValueError, match="must not increase"):
        _plan(stages=((1, 0.25), (2, 0.5)))


def test_batch_size_guard(ad, inputs):
    with pytest.raises(ValueError, match="batch size 1"):
        llm_prefill(ad.lm, inputs.inputs_embeds.expand(2, -1, -1), inputs.position_ids, inputs.kinds)
