"""DyCoke: TTM (4-frame windows, reference frames, budget from retention) and the decode-time KV rule."""
import math

import pytest
import torch

from methods.attach import apply_method
from methods.primitives import cache_blocking
from methods.baselines.dycoke import (DyCokeConfig, dycoke_decode_keep, dycoke_decode_refresh, dycoke_reduce,
                            ttm_budgets, ttm_keep_mask, ttm_references, ttm_similarity)
from methods.registry import get_method
from methods.types import VideoTokens


def angles(theta):
    t = torch.tensor(theta, dtype=torch.float32)
    return torch.stack([t.cos(), t.sin()], dim=-1)


def window_video():
    """One 4-frame window, N=4 unit vectors in 2-D given by their angles (radians)."""
    x = torch.stack([
        angles([0.0, 0.0, 0.0, 0.0]),    # frame 0: reference
        angles([0.1, 1.0, 0.5, 1.5]),    # frame 1 vs frame 0: least similar 3, 1
        angles([1.2, 0.0, 0.3, 0.9]),    # frame 2 vs frame 0: least similar 0, 3
        angles([0.0, 1.2, 0.3, 0.9]),    # frame 3 vs frame 2: differs at 0, 1 (vs frame 0 it would be 1, 3)
    ])
    return VideoTokens(x, (2, 2))


def test_references_follow_the_official_comparisons():
    assert ttm_references(4).tolist() == [-1, 0, 0, 2]
    assert ttm_references(8).tolist() == [-1, 0, 0, 2, -1, 4, 4, 6]
    assert ttm_references(6).tolist() == [-1, 0, 0, 2, -1, 4]      # trailing partial window
    assert ttm_references(1).tolist() == [-1]
    with pytest.raises(ValueError, match="frames"):
        ttm_references(0)


def test_which_tokens_are_pruned_in_a_window():
    t = window_video()
    sim = ttm_similarity(t.features)
    assert torch.isnan(sim[0]).all()
    assert torch.allclose(sim[1], torch.tensor([0.1, 1.0, 0.5, 1.5]).cos(), atol=1e-6)
    assert torch.allclose(sim[3], torch.tensor([1.2, 1.2, 0.0, 0.0]).cos(), atol=1e-6)  # vs frame 2
    # retention 10/16: frame 0 whole (4), the other 6 tokens split 2/2/2 over frames 1-3
    red = dycoke_reduce(t, DyCokeConfig(retention=10 / 16))
    assert red.source.tolist() == [0, 1, 2, 3, 5, 7, 8, 11, 12, 13]
    assert torch.equal(red.features, t.features.reshape(16, 2)[red.source])
    assert red.positions == "contiguous"
    assert red.info["tokens_per_frame"] == [4, 2, 2, 2]
    assert red.info["prune_rate_compared"] == pytest.approx(0.5)


def test_keep_mask_ties_go_to_lower_positions():
    sim = torch.tensor([[float("nan")] * 3, [0.5, 0.5, 0.9]])
    mask = ttm_keep_mask(sim, torch.tensor([3, 1]))
    assert mask.tolist() == [[True, True, True], [True, False, False]]


def test_budget_arithmetic():
    # 8 frames x 16: round(0.5 * 128) = 64; references 0 and 4 keep 32; 32 over 6 compared frames
    b = ttm_budgets(8, 16, 0.5)
    assert b.tolist() == [16, 6, 6, 5, 16, 5, 5, 5] and int(b.sum()) == 64
    # HoliTom's 25 % row at 32 x 196: only the reference frames survive
    b = ttm_budgets(32, 196, 0.25)
    assert int(b.sum()) == 32 * 196 // 4 and set(b[1::4].tolist()) == {0}
    with pytest.raises(ValueError, match=r"retention must be >= 2/8"):
        ttm_budgets(8, 16, 0.2)
    with pytest.raises(ValueError, match="retention"):
        DyCokeConfig(retention=0.0)


def test_reduce_counts_match_round_half_up_and_are_deterministic():
    g = torch.Generator().manual_seed(0)
    t = VideoTokens(torch.randn(7, 9, 5, generator=g), (3, 3))
    a = dycoke_reduce(t, DyCokeConfig(retention=0.41))
    b = dycoke_reduce(t, DyCokeConfig(retention=0.41))
    assert a.num_tokens == math.floor(0.41 * 63 + 0.5) == 26
    assert torch.equal(a.source, b.source) and torch.equal(a.features, b.features)
    assert torch.equal(a.source, a.source.sort().values)
    assert ((a.source // 9 == 0).sum(), (a.source // 9 == 4).sum()) == (9, 9)  # references whole


def test_decode_keep_rule():
    attn = torch.tensor([0.1, 0.5, 0.2, 0.05, 0.15])
    assert dycoke_decode_keep(attn, 0.6).tolist() == [1, 2]           # int(5 * 0.4) = 2
    row = torch.arange(10, dtype=torch.float32).flip(0)
    assert dycoke_decode_keep(row, 0.7).tolist() == [0, 1, 2]         # int(10 * 0.3) = 3 (truncation)
    assert dycoke_decode_keep(row, 0.0).numel() == 10
    with pytest.raises(ValueError, match="p"):
        dycoke_decode_keep(row, 1.0)


def test_decode_refresh_only_when_attention_changes():
    a = torch.tensor([0.7, 0.1, 0.1, 0.1])
    keep, sim = dycoke_decode_refresh(a, None, 0.5)                   # first step: similarity 0
    assert sim == 0.0 and keep.tolist() == [0, 1]
    keep, sim = dycoke_decode_refresh(a * 2, a, 0.5)                  # same direction: cos 1
    assert keep is None and sim == pytest.approx(1.0)
    b = torch.tensor([0.0, 0.1, 0.1, 0.8])
    keep, sim = dycoke_decode_refresh(b, a, 0.5)
    assert sim < 0.9 and keep.tolist() == [1, 3]                      # top-2: 3, then 1 (tie 1/2 -> lower)
    with pytest.raises(ValueError, match="prev_row"):
        dycoke_decode_refresh(b, a[:3], 0.5)


def test_method_declares_but_does_not_apply_decode_stage():
    m = get_method("dycoke", retention=0.3)
    pol = m.decode_policy()
    assert (pol.layer, pol.prune, pol.sim_threshold, pol.applied) == (3, 0.7, 0.9, False)
    assert m.inner_plan(28) is None and "NOT applied" in m.description
    # nominal: stage (a)'s round_half_up(0.3 * 32 * 196) = 1882 in every layer (stage (b) not modelled)
    assert m.nominal_schedule("llava-onevision-7b").llm_visual == (1882,) * 28
    with pytest.raises(ValueError, match="decode_prune"):
        get_method("dycoke", retention=0.3, decode_prune=1.0)


def test_end_to_end_tiny_schedule(tiny_adapter):
    ad = tiny_adapter
    px = torch.randn(8, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    with apply_method(ad, "dycoke", retention=0.5) as h:
        g = ad.run(px, "What moves?", max_new_tokens=3)
    rec = g.schedule
    assert len(g.tokens) == 3 and rec.decode_steps == 2
    assert rec.llm_visual == (64,) * ad.num_layers                      # round(0.5 * 8 * 16)
    nom = h.method.nominal_schedule(ad, frames=8, text_tokens=rec.text_tokens, decode_steps=rec.decode_steps)
    for field in ("llm_visual", "llm_newline", "text_tokens", "decode_steps", "projector_tokens", "vision"):
        assert getattr(rec, field) == getattr(nom, field), field


@pytest.fixture(scope="module")
def tiny_adapter():
    from methods.adapters import LlavaOnevisionAdapter

    return LlavaOnevisionAdapter.tiny("llava-onevision", seed=0, layers=4, image_size=112)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_blocked_similarity_equals_the_batched_pass(dtype):
    """Fails when the CPU path (one window at a time) drifts from the batched strided pass a GPU
    runs: bitwise equal similarities (so equal kept sets) for full and partial windows."""
    g = torch.Generator().manual_seed(3)
    for frames in range(1, 11):
        x = torch.randn(frames, 6, 40, generator=g).to(dtype)
        with cache_blocking(False):
            batched = ttm_similarity(x)
        with cache_blocking(True):
            blocked = ttm_similarity(x)
        assert torch.equal(batched.isnan(), blocked.isnan()), frames
        assert torch.equal(batched.nan_to_num(), blocked.nan_to_num()), frames
