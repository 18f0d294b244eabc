"""Tango pre-LLM reduction (docs/sources.md#tango): hand-checked behaviour of every stage."""
from __future__ import annotations

import math

import pytest
import torch

from methods.primitives import make_generator, st_rope
from methods.tango import (
    OV_SINKS, VIDEO_SINKS, TangoConfig, context_merge, diverse_salient_selection, tango_pre_llm_retention,
    tango_reduce,
)
from methods.types import VideoTokens


def _tokens(X, grid, sal=None, **kw):
    if sal is None:
        sal = torch.rand(X.shape[0], X.shape[1], generator=torch.Generator().manual_seed(1))
    return VideoTokens(features=X, grid=grid, saliency={"map_head_attn": sal}, **kw)


# ---------------------------------------------------------------- config and retention

def test_pre_llm_retention_matches_official_numbers():
    assert [round(tango_pre_llm_retention(r), 4) for r in (0.10, 0.15, 0.20)] == [0.1217, 0.1826, 0.2435]
    cfg = TangoConfig(retention=0.10, intra_llm=True)
    assert math.isclose(cfg.pre_llm_retention, 2.8 / 23)
    assert TangoConfig(retention=0.10).pre_llm_retention == 0.10


def test_tau_defaults_by_retention():
    assert TangoConfig(retention=0.10).resolved_tau == 0.65
    assert TangoConfig(retention=0.15).resolved_tau == 0.8
    assert TangoConfig(retention=0.10, tau=0.7).resolved_tau == 0.7


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="retention"):
        TangoConfig(retention=0.0)
    with pytest.raises(ValueError, match="segment"):
        TangoConfig(retention=0.1, segment="dycoke")
    with pytest.raises(ValueError, match="alpha"):
        TangoConfig(retention=0.1, alpha=0.5)


def test_sink_constants():
    assert OV_SINKS == (28, 27, 41, 169, 11, 12) and VIDEO_SINKS == (26, 157, 11)


# ---------------------------------------------------------------- salient selection

def test_alpha_one_selection_is_plain_topk_per_frame():
    g = torch.Generator().manual_seed(0)
    sal, rope = torch.rand(5, 30, generator=g), torch.randn(5, 30, 8, generator=g)
    for n in (1, 4):
        got = diverse_salient_selection(sal, rope, n, alpha=1.0, k=7, generator=make_generator(0))
        expect = torch.sort(torch.topk(sal, n, dim=1).indices, dim=1).values
        assert torch.equal(got, expect)
    # one salient per frame with alpha = 1.5 has floor(1.5) = 1 candidate: still plain top-1
    got = diverse_salient_selection(sal, rope, 1, alpha=1.5, k=7, generator=make_generator(0))
    assert torch.equal(got[:, 0], sal.argmax(1))


def test_diversity_replaces_near_duplicate_by_next_distinct_candidate():
    # Candidates (alpha 1.5, 2 salient -> 3): tokens 0 and 1 share a feature, token 2 differs.
    rope = torch.zeros(1, 5, 4)
    rope[0, 0, 0] = rope[0, 1, 0] = 1.0
    rope[0, 2, 1] = 1.0
    rope[0, 3, 2] = rope[0, 4, 3] = 1.0
    sal = torch.tensor([[0.9, 0.8, 0.7, 0.1, 0.05]])
    got = diverse_salient_selection(sal, rope, 2, alpha=1.5, k=7, generator=make_generator(0))
    assert got.tolist() == [[0, 2]]  # plain top-2 would be [0, 1]


def test_selection_is_vectorised_consistently_over_frames():
    g = torch.Generator().manual_seed(3)
    sal = torch.rand(4, 40, generator=g)
    rope = torch.nn.functional.normalize(torch.randn(4, 40, 6, generator=g), dim=-1)  # like ST-RoPE
    # (the 1e-6 density noise is drawn per call, so frames agree only while no near-ties exist)
    batched = diverse_salient_selection(sal, rope, 6, alpha=1.5, k=7, generator=make_generator(0))
    for f in range(4):
        one = diverse_salient_selection(sal[f:f + 1], rope[f:f + 1], 6, alpha=1.5, k=7,
                                        generator=make_generator(0))
        assert torch.equal(one[0], batched[f])
    assert all(len(set(row)) == 6 for row in batched.tolist())
    # every selected token is one of the top floor(1.5 * 6) = 9 by saliency
    top9 = torch.topk(sal, 9, dim=1).indices
    assert all(set(b) <= set(t) for b, t in zip(batched.tolist(), top9.tolist()))


def test_sinks_never_selected_when_zeroed():
    N = 196
    sal = torch.rand(1, N, generator=torch.Generator().manual_seed(0)) * 0.1
    sal[0, list(OV_SINKS)] = 10.0  # sinks dominate the raw signal
    X = torch.randn(1, N, 32, generator=torch.Generator().manual_seed(1))
    base = dict(retention=0.05, context_ratio=0.0)
    with_sinks = tango_reduce(_tokens(X, (14, 14), sal), TangoConfig(**base, sink_indices=()))
    assert len(set(OV_SINKS) & set(with_sinks.source.tolist())) >= 4  # contrast: sinks win unmasked
    for sinks in (OV_SINKS, "auto"):  # auto: a 14x14 one-newline grid is LLaVA-OV's setting
        masked = tango_reduce(_tokens(X, (14, 14), sal), TangoConfig(**base, sink_indices=sinks))
        assert masked.num_tokens == math.ceil(N * 0.05) == 10
        assert not set(OV_SINKS) & set(masked.source.tolist())
        assert masked.info["sinks"] == list(OV_SINKS)


def test_bad_sink_index_and_missing_saliency():
    X = torch.randn(2, 4, 8)
    with pytest.raises(ValueError, match="sink_indices"):
        tango_reduce(_tokens(X, (2, 2)), TangoConfig(retention=0.5, sink_indices=(4,)))
    with pytest.raises(KeyError, match="map_head_attn"):
        tango_reduce(VideoTokens(features=X, grid=(2, 2)), TangoConfig(retention=0.5))


# ---------------------------------------------------------------- segmentation and budget

def test_identical_frames_form_one_static_segment():
    X = torch.randn(1, 16, 32).repeat(6, 1, 1)
    red = tango_reduce(_tokens(X, (4, 4)), TangoConfig(retention=0.1))
    assert red.info["segments"] == [(0, 5)]
    # all 16 positions static: r' = min(0.1 / (16/96), 1) = 0.6 -> ceil(16 * 0.6) = 10 tokens in frame 0
    assert math.isclose(red.info["segment_retention"][0], 0.6)
    assert red.num_tokens == 10
    assert int(red.source.max()) < 16


def test_token_count_follows_budget_arithmetic():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(4, 16, 32, generator=g)
    X[1, :10] = X[0, :10]  # frames 0-1 share 10 static positions; frames 2, 3 unrelated
    red = tango_reduce(_tokens(X, (4, 4)), TangoConfig(retention=0.25))
    assert red.info["segments"] == [(0, 1), (2, 2), (3, 3)]
    r_seg = 0.25 / (22 / 32)
    assert math.isclose(red.info["segment_retention"][0], r_seg)
    # static: ceil(10 r') = 4; dynamic (6 per frame): raw = ceil(6 r') = 3, salient int(1.8) = 1,
    # context 2 per frame -> pool of 10 merged into 4; singletons: ceil(16 * 0.25) = 4 each
    src = red.source.tolist()
    frame = [v // 16 for v in src]
    assert red.num_tokens == 4 + (2 * 1 + 4) + 4 + 4
    assert frame.count(0) + frame.count(1) == 10 and frame.count(2) == 4 and frame.count(3) == 4
    assert sum(1 for v in src if v < 10) == 4  # the static tokens, at frame 0's static positions
    # static tokens live at frame 0 positions 0..9; frame 1 only holds dynamic positions 10..15
    assert all(s % 16 >= 10 for s in red.source.tolist() if 16 <= s < 32)


def test_output_sorted_unique_and_contiguous():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1, 16, 24, generator=g).repeat(8, 1, 1) + 0.3 * torch.randn(8, 16, 24, generator=g)
    red = tango_reduce(_tokens(X, (4, 4)), TangoConfig(retention=0.2))
    src = red.source.tolist()
    assert src == sorted(src) and len(set(src)) == len(src)
    assert red.positions == "contiguous"
    assert red.features.dtype == X.dtype and red.features.shape == (len(src), 24)


def test_deterministic_under_seed():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1, 36, 24, generator=g).repeat(6, 1, 1) + 0.4 * torch.randn(6, 36, 24, generator=g)
    vt = _tokens(X, (6, 6))
    a = tango_reduce(vt, TangoConfig(retention=0.2, seed=5))
    b = tango_reduce(vt, TangoConfig(retention=0.2, seed=5))
    assert torch.equal(a.source, b.source) and torch.equal(a.features, b.features)


def test_fastvid_segmentation_uses_global_features():
    X = torch.randn(6, 4, 16)
    gf = torch.zeros(6, 3)
    gf[:3, 0] = 1.0
    gf[3:, 1] = 1.0  # one scene cut after frame 2
    with pytest.raises(KeyError, match="global_features"):
        tango_reduce(_tokens(X, (2, 2)), TangoConfig(retention=0.5, segment="fastvid"))
    red = tango_reduce(_tokens(X, (2, 2), global_features=gf),
                       TangoConfig(retention=0.5, segment="fastvid", fastvid_c=2))
    assert red.info["segments"] == [(0, 2), (3, 5)]


# ---------------------------------------------------------------- merging

def test_merged_value_equals_hand_formula_on_four_tokens():
    # single frame, 4 tokens: budget ceil(4 * 0.5) = 2 -> 1 salient (token 3) + 1 context anchor.
    th = 0.3
    dirs = torch.tensor([[math.cos(-th), math.sin(-th)], [1.0, 0.0], [math.cos(th), math.sin(th)], [0.0, -1.0]])
    norms = torch.tensor([2.0, 1.0, 3.0, 5.0])
    X = (dirs * norms[:, None]).reshape(1, 4, 2)
    sal = torch.tensor([[0.1, 0.2, 0.3, 0.9]])
    cfg = TangoConfig(retention=0.5, context_ratio=0.5, alpha=1.0, use_st_rope=False)
    red = tango_reduce(_tokens(X, (2, 2), sal), cfg)
    assert red.source.tolist() == [1, 3]
    x = X[0]
    # anchor = the middle direction (densest); w = max(1/3, 0.6); mean over all 3 pool tokens, un-normalised
    expected = 0.6 * x[1] + 0.4 * (x[0] + x[1] + x[2]) / 3
    assert torch.allclose(red.features[0], expected, atol=1e-6)
    assert torch.equal(red.features[1], x[3])


def test_context_merge_keeps_pool_when_within_budget():
    feats = torch.randn(3, 4)
    idx, out = context_merge(feats, feats, 5, beta=0.6, k=7, generator=make_generator(0))
    assert idx.tolist() == [0, 1, 2] and torch.equal(out, feats)


def test_st_rope_changes_assignments_for_far_apart_identical_tokens():
    # Row of 14 tokens; content only in the column section of D = 64 (columns 44..63).
    D, W = 64, 14
    a, b = torch.zeros(D), torch.zeros(D)
    a[44:] = torch.randn(20, generator=torch.Generator().manual_seed(0))
    b[44:] = a[44:] + 0.3 * torch.randn(20, generator=torch.Generator().manual_seed(1))
    a, b = a / a.norm(), b / b.norm()
    X = torch.randn(1, W, D, generator=torch.Generator().manual_seed(2))
    X[0, 0], X[0, 1], X[0, 12], X[0, 13] = a, b, a, b
    pool = torch.tensor([0, 1, 12, 13])
    rope = st_rope(X, torch.zeros(1), (1, W))[0, pool]
    plain = torch.nn.functional.normalize(X[0, pool], dim=-1)
    d = torch.cdist(rope, rope)
    assert d[0, 1] < d[0, 2] and d[2, 3] < d[1, 3]  # the construction: RoPE makes space dominate
    # without ST-RoPE identical contents pair up: merged tokens are exactly a and b
    _, out_plain = context_merge(X[0, pool], plain, 2, beta=0.6, k=7, generator=make_generator(0))
    assert sorted(torch.cdist(out_plain, torch.stack([a, b])).argmin(1).tolist()) == [0, 1]
    assert torch.cdist(out_plain, torch.stack([a, b])).min(1).values.max() < 1e-5
    # with ST-RoPE spatial neighbours pair up: {0, 1} and {12, 13}, each anchor blended with a and b
    idx, out_rope = context_merge(X[0, pool], rope, 2, beta=0.6, k=7, generator=make_generator(0))
    assert idx[0] in (0, 1) and idx[1] in (2, 3)
    for i, out in zip(idx.tolist(), out_rope):
        assert torch.allclose(out, 0.6 * X[0, pool[i]] + 0.4 * (a + b) / 2, atol=1e-6)
