"""Tango ``fidelity``: the released code's behaviours A and B against the paper's description, the
per-setting sinks and the salient floor at small grids (hand-built cases that show each difference)."""
from __future__ import annotations

import math

import pytest
import torch

from methods.primitives import dpc_knn_scores, make_generator
from methods.tango import (
    OV_SINKS, RELEASED_MERGER_TAU, VIDEO_SINKS, TangoConfig, context_merge, empirical_sinks,
    salient_split, tango_reduce,
)
from methods.types import VideoTokens


def _tokens(X, grid, sal=None, newline="one_token"):
    if sal is None:
        sal = torch.rand(X.shape[0], X.shape[1], generator=torch.Generator().manual_seed(1))
    return VideoTokens(features=X, grid=grid, saliency={"map_head_attn": sal}, newline_policy=newline)


def _two_frames_with_cos(cos: float, n_pairs: int, N: int = 16, D: int = 32) -> torch.Tensor:
    """Frame 1 repeats frame 0 at positions < n_pairs rotated to cosine ``cos``; the rest is random."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.nn.functional.normalize(torch.randn(N, D, generator=g), dim=-1)
    x1 = torch.nn.functional.normalize(torch.randn(N, D, generator=g), dim=-1)
    y = x1[:n_pairs] - (x1[:n_pairs] * x0[:n_pairs]).sum(-1, keepdim=True) * x0[:n_pairs]
    y = torch.nn.functional.normalize(y, dim=-1)
    x1[:n_pairs] = cos * x0[:n_pairs] + math.sqrt(1 - cos * cos) * y
    return torch.stack([x0, x1])


def test_config_fidelity_and_static_tau():
    assert TangoConfig(retention=0.1).fidelity == "released"
    assert TangoConfig(retention=0.1).static_tau == RELEASED_MERGER_TAU == 0.8
    assert TangoConfig(retention=0.1, fidelity="paper").static_tau == 0.65
    assert TangoConfig(retention=0.1, tau=0.7).static_tau == 0.8        # released ignores tau here
    with pytest.raises(ValueError, match="fidelity"):
        TangoConfig(retention=0.1, fidelity="official")
    with pytest.raises(ValueError, match="sink_indices"):
        TangoConfig(retention=0.1, sink_indices="ov")
    with pytest.raises(ValueError, match="sink_indices"):
        TangoConfig(retention=0.1, sink_indices=["a"])
    assert TangoConfig(retention=0.1, sink_indices=[3, 4]).sink_indices == (3, 4)


# ------------------------------------------------------------------ behaviour A: static-mask tau

def test_behaviour_a_static_mask_tau():
    # 6 positions at cosine 0.7: static for tau 0.65 (segmentation merges the two frames) but not 0.8
    X = _two_frames_with_cos(0.7, 6)
    vt = _tokens(X, (4, 4))
    paper = tango_reduce(vt, TangoConfig(retention=0.1, fidelity="paper"))
    released = tango_reduce(vt, TangoConfig(retention=0.1))
    assert paper.info["segments"] == released.info["segments"] == [(0, 1)]  # both segment with 0.65
    assert paper.info["static_positions"] == [6] and released.info["static_positions"] == [0]
    # paper: r' = 0.1 * 32 / 26; static ceil(6 r') = 1; dynamic 10/frame: raw 2 = 1 salient + 1 context
    assert math.isclose(paper.info["segment_retention"][0], 0.1 * 32 / 26)
    assert paper.num_tokens == 1 + 2 * 2
    # released: nothing static, r' = 0.1; 16/frame: raw ceil(1.6) = 2 = 1 salient + 1 context
    assert released.info["segment_retention"][0] == 0.1
    assert released.num_tokens == 2 * 2
    # with cosines above 0.8 both fidelities agree on the static split
    X2 = _two_frames_with_cos(0.9, 6)
    for fid in ("paper", "released"):
        assert tango_reduce(_tokens(X2, (4, 4)), TangoConfig(retention=0.1, fidelity=fid)).info[
            "static_positions"] == [6]


# ------------------------------------------------------------------ behaviour B: merged-row placement

def _two_clusters() -> torch.Tensor:
    """Positions 0-2: a loose cluster; positions 3-7: a tight (denser) cluster far away."""
    g = torch.Generator().manual_seed(0)
    loose = torch.tensor([10.0, 0.0]) + 0.4 * torch.randn(3, 2, generator=g)
    tight = torch.tensor([-10.0, 0.0]) + 0.05 * torch.randn(5, 2, generator=g)
    return torch.cat([loose, tight])


def test_behaviour_b_context_merge_writes_rows_in_score_order():
    pts = _two_clusters()
    feats = torch.arange(8, dtype=torch.float32)[:, None] * torch.ones(1, 3)  # feature = own index
    scores = dpc_knn_scores(pts, 2, variant="tango", generator=make_generator(0))
    top2 = torch.topk(scores, 2).indices.tolist()
    assert top2[0] >= 3 and top2[1] <= 2  # the tight cluster's peak scores highest (larger position)
    p_idx, p_rows = context_merge(feats, pts, 2, beta=0.6, k=2, generator=make_generator(0))
    r_idx, r_rows = context_merge(feats, pts, 2, beta=0.6, k=2, generator=make_generator(0),
                                  fidelity="released")
    assert p_idx.tolist() == sorted(top2) and r_idx.tolist() == top2
    assert torch.equal(p_rows, r_rows)  # same merged rows, built for the anchors in position order
    lo, hi = sorted(top2)
    loose_row = 0.6 * feats[lo] + 0.4 * feats[:3].mean(0)  # w = max(1/3, 0.6)
    tight_row = 0.6 * feats[hi] + 0.4 * feats[3:].mean(0)
    assert torch.allclose(p_rows[0], loose_row) and torch.allclose(p_rows[1], tight_row)
    # released: the loose cluster's merge sits at the tight cluster's anchor and vice versa
    placed = dict(zip(r_idx.tolist(), r_rows))
    assert torch.allclose(placed[hi], loose_row) and torch.allclose(placed[lo], tight_row)


def test_behaviour_b_end_to_end_same_positions_permuted_context_rows():
    g = torch.Generator().manual_seed(4)
    X = torch.randn(1, 36, 24, generator=g)
    vt = _tokens(X, (6, 6))
    paper = tango_reduce(vt, TangoConfig(retention=0.5, fidelity="paper"))
    released = tango_reduce(vt, TangoConfig(retention=0.5))
    assert torch.equal(paper.source, released.source)  # kept positions are the same
    same = (paper.features == released.features).all(-1)
    assert int(same.sum()) >= 10 and not bool(same.all())  # salient rows agree; context rows moved
    key = lambda t: sorted(map(tuple, t.tolist()))
    assert key(paper.features) == key(released.features)  # ... as a permutation of the same rows


# ------------------------------------------------------------------ sinks per setting

def test_auto_sinks_follow_the_setting():
    def sinks(grid, newline):
        N = grid[0] * grid[1]
        X = torch.randn(1, N, 8, generator=torch.Generator().manual_seed(0))
        return tango_reduce(_tokens(X, grid, newline=newline), TangoConfig(retention=0.2)).info["sinks"]

    assert sinks((14, 14), "one_token") == list(OV_SINKS)
    assert sinks((13, 13), "grid") == list(VIDEO_SINKS)
    assert sinks((13, 13), "one_token") == [] and sinks((3, 3), "one_token") == []


def test_empirical_sinks_recover_fixed_high_positions():
    g = torch.Generator().manual_seed(0)
    sal = torch.rand(20, 49, generator=g)
    sal[:, [3, 40]] += 5.0
    sal[:10, 7] += 5.0  # high in only half the frames: not a sink
    assert empirical_sinks(sal, top=3, min_fraction=0.9) == (3, 40)
    with pytest.raises(ValueError, match="top"):
        empirical_sinks(sal, top=0)


# ------------------------------------------------------------------ salient floor

def test_salient_split_rule():
    assert salient_split(1, 0.4, floor=False) == (0, 1)  # the official truncation
    assert salient_split(1, 0.4, floor=True) == (1, 0)
    assert salient_split(20, 0.4, floor=True) == salient_split(20, 0.4, floor=False) == (12, 8)
    assert salient_split(0, 0.4, floor=True) == (0, 0)


def test_small_grid_budget_of_one_keeps_the_salient_token():
    # 3x3 frame, r = 0.1: budget ceil(0.9) = 1. Token 4 is by far the most salient.
    X = torch.randn(1, 9, 16, generator=torch.Generator().manual_seed(0))
    sal = torch.full((1, 9), 0.01)
    sal[0, 4] = 1.0
    floor = tango_reduce(_tokens(X, (3, 3), sal), TangoConfig(retention=0.1))
    assert floor.info["salient_floor"] and floor.source.tolist() == [4]
    assert torch.equal(floor.features[0], X[0, 4])  # kept as is, not merged
    trunc = tango_reduce(_tokens(X, (3, 3), sal), TangoConfig(retention=0.1, salient_floor=False))
    assert trunc.num_tokens == 1 and not torch.equal(trunc.features[0], X[0, 4])  # a merged anchor


def test_floor_off_under_released_at_paper_grids():
    X = torch.randn(1, 196, 8, generator=torch.Generator().manual_seed(0))
    assert not tango_reduce(_tokens(X, (14, 14)), TangoConfig(retention=0.1)).info["salient_floor"]
    assert tango_reduce(_tokens(X, (14, 14)), TangoConfig(retention=0.1, fidelity="paper")).info["salient_floor"]
