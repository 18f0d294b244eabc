"""FastVID DySeg + STPrune + DTM (docs/sources.md#fastvid): budget arithmetic, anchors, merge rule."""
from __future__ import annotations

import pytest
import torch

from methods.baselines.fastvid import FastVIDConfig, anchor_frames, fastvid_frame_budget, fastvid_reduce
from methods.types import VideoTokens


def _tokens(X, grid, sal, gf):
    return VideoTokens(features=X, grid=grid, saliency={"map_head_attn": sal}, global_features=gf)


def test_frame_budget_and_anchor_frames():
    assert fastvid_frame_budget(196, 0.10, 0.4) == (20 - 8, 8)   # retained 20, floor(8.0) contextual
    assert fastvid_frame_budget(16, 0.25, 0.4) == (3, 1)          # retained 4, floor(1.6) = 1
    assert anchor_frames(0, 5, 4) == [1, 5]                       # counted from the segment end
    assert anchor_frames(3, 3, 4) == [3]
    assert anchor_frames(2, 10, 4) == [2, 6, 10]


def test_one_segment_count_salient_and_anchor_frames():
    g = torch.Generator().manual_seed(0)
    F, N = 6, 16
    X = torch.randn(F, N, 8, generator=g)
    sal = torch.rand(F, N, generator=g)
    gf = torch.ones(F, 3)  # identical global features: no cut with c = 1
    red = fastvid_reduce(_tokens(X, (4, 4), sal, gf), FastVIDConfig(retention=0.25, c=1))
    assert red.info["segments"] == [(0, 5)]
    assert red.positions == "original"
    # 3 salient per frame + (6 frames * 1 context) // 2 anchor frames = 3 anchors in frames 1 and 5
    assert red.num_tokens == 6 * 3 + 2 * 3
    top3 = {f * N + i for f in range(F) for i in torch.topk(sal[f], 3).indices.tolist()}
    src = red.source.tolist()
    assert top3 <= set(src)
    ctx = [s for s in src if s not in top3]
    assert len(ctx) == 6 and {s // N for s in ctx} == {1, 5}
    assert src == sorted(src)
    # salient tokens are passed through unchanged
    for j, s in enumerate(src):
        if s in top3:
            assert torch.equal(red.features[j], X[s // N, s % N])


def test_dyseg_cuts_at_low_global_similarity():
    X = torch.randn(6, 4, 8)
    gf = torch.zeros(6, 2)
    gf[:4, 0] = 1.0
    gf[4:, 1] = 1.0
    red = fastvid_reduce(_tokens(X, (2, 2), torch.rand(6, 4), gf), FastVIDConfig(retention=0.5, c=1))
    assert red.info["segments"] == [(0, 3), (4, 5)]


def test_dtm_merge_hand_formula():
    # one frame, 4 tokens, r = 0.5, d = 0.5: token 3 salient, one anchor among tokens 0..2
    X = torch.tensor([[[2.0, -0.2], [2.0, 0.0], [2.0, 0.3], [0.0, 5.0]]])
    sal = torch.tensor([[0.1, 0.2, 0.3, 0.9]])
    red = fastvid_reduce(_tokens(X, (2, 2), sal, torch.ones(1, 2)), FastVIDConfig(retention=0.5, d=0.5))
    assert red.source.tolist() == [1, 3]
    x = X[0]
    # anchor = densest (middle) token; all 3 join it; w = max(1/(3+1), 0.6)
    assert torch.allclose(red.features[0], 0.6 * x[1] + 0.4 * x[:3].mean(0), atol=1e-6)
    assert torch.equal(red.features[1], x[3])


def test_requires_global_features_and_saliency():
    X = torch.randn(2, 4, 8)
    with pytest.raises(KeyError, match="global_features"):
        fastvid_reduce(VideoTokens(features=X, grid=(2, 2), saliency={"map_head_attn": torch.rand(2, 4)}),
                       FastVIDConfig(retention=0.5))
    with pytest.raises(KeyError, match="map_head_attn"):
        fastvid_reduce(VideoTokens(features=X, grid=(2, 2), global_features=torch.ones(2, 3)),
                       FastVIDConfig(retention=0.5))
    with pytest.raises(ValueError, match="tau"):
        FastVIDConfig(retention=0.5, tau=1.5)
