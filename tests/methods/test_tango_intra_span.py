"""Tango's LLaVA-Video intra-LLM stage: the released span definition (whole visual span with grid
newlines, Python ``round``) against the paper/project one (features only, newlines kept, half up),
on a tiny random LLaVA-Video model with a hand-built reduction whose span makes the two differ.

Source of the released behaviour: xjtupanda/Tango ``intra_llm_pruning/fastv_tango.py`` and
``pre_llm_pruning/tango/llava_arch.py`` (commit 610c264), see ``methods.tango``'s docstring (C)."""
from __future__ import annotations

import pytest
import torch

from methods.adapters import LlavaOnevisionAdapter
from methods.runtime import NEWLINE, VISUAL, InnerPlan, InnerStage, inner_keep_count
from methods.tango import Tango
from methods.types import Reduction

LAYERS, K = 4, 2
# 3x3 pooled grid, a newline per row that keeps a token: frame 0 whole (9 + 3 newlines), frame 1
# row 0 (2 + 1), frame 2 one token (1 + 1): 12 features + 5 newlines = 17, 17 * 0.5 = 8.5
SOURCES = list(range(9)) + [9, 10] + [18]
FEATURES, NEWLINES = 12, 5


@pytest.fixture(scope="module")
def ad():
    return LlavaOnevisionAdapter.tiny("llava-video", seed=3, layers=LAYERS, image_size=84)


@pytest.fixture(scope="module")
def inputs(ad):
    px = torch.randn(4, 3, 84, 84, generator=torch.Generator().manual_seed(1))
    video = ad.encode_video(px)
    src = torch.tensor(SOURCES)
    red = Reduction(features=video.features.reshape(-1, video.features.shape[-1])[src], source=src)
    out = ad.build_inputs("What is in the video?", video, red)
    assert int((out.kinds == VISUAL).sum()) == FEATURES and int((out.kinds == NEWLINE).sum()) == NEWLINES
    return out


def _plan(span, rounding, keep=0.5, mode="inplace", merge="blend"):
    return InnerPlan((InnerStage(K, keep),), scoring="last", merge=merge, mode=mode, span=span,
                     rounding=rounding)


def _eager_last_row(ad, inputs, layer):
    lm = ad.lm
    lm.config._attn_implementation = "eager"
    try:
        out = lm(inputs_embeds=inputs.inputs_embeds, output_attentions=True)
    finally:
        lm.config._attn_implementation = "sdpa"
    return out.attentions[layer][0].mean(0)[-1]


def test_rounding_half_even_vs_half_up():
    assert inner_keep_count(17, 0.5, "half_even") == 8 and inner_keep_count(17, 0.5) == 9
    assert inner_keep_count(13, 0.5, "half_even") == 6 and inner_keep_count(13, 0.5) == 7
    assert inner_keep_count(15, 0.5, "half_even") == inner_keep_count(15, 0.5) == 8
    with pytest.raises(ValueError, match="rounding must be one of"):
        inner_keep_count(4, 0.5, "down")
    with pytest.raises(ValueError, match="span must be one of"):
        InnerPlan((InnerStage(1, 0.5),), span="all")
    with pytest.raises(ValueError, match="rounding must be one of"):
        InnerPlan((InnerStage(1, 0.5),), rounding="ceil")


def test_visual_span_ranks_newlines_and_rounds_half_even(ad, inputs):
    row = _eager_last_row(ad, inputs, K - 1)
    span = ((inputs.kinds == VISUAL) | (inputs.kinds == NEWLINE)).nonzero().squeeze(1)
    _, res = ad.prefill(inputs, _plan("visual", "half_even"))
    expected = span[torch.topk(row[span], 8).indices].sort().values
    assert res.stage_keeps[0].tolist() == expected.tolist()
    assert res.llm_visual[K] + res.llm_newline[K] == 8           # round(8.5) = 8, ties to even
    assert res.llm_newline[:K] == [NEWLINES] * K
    _, up = ad.prefill(inputs, _plan("visual", "half_up"))
    assert up.llm_visual[K] + up.llm_newline[K] == 9


def test_newlines_get_pruned_under_the_visual_span(ad, inputs):
    _, res = ad.prefill(inputs, _plan("visual", "half_even", keep=0.25))
    assert res.llm_newline[K] < NEWLINES                          # some newline was dropped
    kept_nl = sum(int(inputs.kinds[i]) == NEWLINE for i in res.stage_keeps[0].tolist())
    assert res.llm_newline[K] == kept_nl
    _, feat = ad.prefill(inputs, _plan("features", "half_up", keep=0.25))
    assert feat.llm_newline == [NEWLINES] * LAYERS                # features span: newlines always kept
    assert feat.llm_visual[K] == 3                                # round_half_up(12 * 0.25)


def test_tango_fidelity_picks_the_span(ad, inputs):
    released = Tango(retention=0.5, intra_llm=True, intra_k=K, llm_layers=LAYERS)
    paper = Tango(retention=0.5, intra_llm=True, intra_k=K, llm_layers=LAYERS, fidelity="paper")
    _, r = ad.prefill(inputs, released.inner_plan(LAYERS))
    _, p = ad.prefill(inputs, paper.inner_plan(LAYERS))
    assert r.llm_visual[K] + r.llm_newline[K] == 8
    assert p.llm_visual[K] == 6 and p.llm_newline == [NEWLINES] * LAYERS


@pytest.mark.parametrize("merge", ["drop", "blend"])
def test_visual_span_mask_mode_equals_inplace(ad, inputs, merge):
    a, ra = ad.prefill(inputs, _plan("visual", "half_even", 0.25, "inplace", merge))
    b, rb = ad.prefill(inputs, _plan("visual", "half_even", 0.25, "mask", merge))
    assert [t.tolist() for t in ra.stage_keeps] == [t.tolist() for t in rb.stage_keeps]
    assert ra.llm_newline == rb.llm_newline
    assert (a - b).abs().max().item() < 1e-5


@pytest.mark.parametrize("mode", ["inplace", "mask"])
def test_visual_span_cached_generation_equals_full_recompute(ad, inputs, mode):
    plan = _plan("visual", "half_even", 0.25, mode)
    cached = ad.generate(inputs, max_new_tokens=5, plan=plan)
    recomputed = ad.generate(inputs, max_new_tokens=5, plan=plan, use_cache=False)
    assert cached.tokens == recomputed.tokens
    diff = max((x - y).abs().max().item() for x, y in zip(cached.step_logits, recomputed.step_logits))
    assert diff < 1e-4, diff
