"""STTS pure pieces: grouping, scorer, training signals, selection, packing (docs/sources.md#stts)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from methods.stts import (
    STTSConfig, TemporalTokenScorer, attention_bias, auxiliary_loss, group_index,
    groups_to_patch_mask, novelty_targets, pack_first_fit_decreasing, rearrange_tokens,
    select_groups, unpack,
)


# ---------------------------------------------------------------- grouping

def test_group_index_27x27_first_and_last_group():
    idx = group_index((27, 27))
    assert idx.shape == (81, 9)
    assert idx[0].tolist() == [0, 1, 2, 27, 28, 29, 54, 55, 56]
    assert idx[80].tolist() == [24 * 27 + 24, 24 * 27 + 25, 24 * 27 + 26,
                                25 * 27 + 24, 25 * 27 + 25, 25 * 27 + 26,
                                26 * 27 + 24, 26 * 27 + 25, 26 * 27 + 26]
    assert sorted(idx.flatten().tolist()) == list(range(729))


def test_group_index_pads_to_multiple_of_three():
    idx = group_index((4, 4))  # padded to 6x6 -> 2x2 groups
    assert idx.shape == (4, 9)
    assert idx[1].tolist() == [3, -1, -1, 7, -1, -1, 11, -1, -1]
    assert idx[3].tolist() == [15, -1, -1, -1, -1, -1, -1, -1, -1]


# ---------------------------------------------------------------- scorer

def test_scorer_shape_range_and_first_frame_sees_zero_context():
    torch.manual_seed(0)
    scorer = TemporalTokenScorer(dim=16, mlp_dim=32, heads=4)
    x = torch.randn(3, 81, 16)  # 9x9 grid -> 9 groups
    s = scorer(x, (9, 9))
    assert s.shape == (3, 9)
    assert bool(((s > 0) & (s < 1)).all())
    # frame 0's score depends only on frame 0 (previous context is zeros)
    x2 = x.clone()
    x2[1:] = torch.randn(2, 81, 16)
    s2 = scorer(x2, (9, 9))
    assert torch.allclose(s[0], s2[0])
    assert not torch.allclose(s[2], s2[2])


def test_scorer_init_is_truncated_normal_fan_in_with_zero_bias():
    torch.manual_seed(0)
    scorer = TemporalTokenScorer(dim=64, mlp_dim=256, heads=4)
    first = scorer.mlp[0]
    assert float(first.bias.detach().abs().max()) == 0.0
    std = float(first.weight.detach().std())
    expected = math.sqrt(1.0 / 128) * 0.88  # truncation at 2 std shrinks std by ~0.88
    assert abs(std - expected) / expected < 0.05
    assert float(first.weight.detach().abs().max()) <= 2 * math.sqrt(1.0 / 128) + 1e-6


def test_scorer_group_query_ignores_padding():
    torch.manual_seed(0)
    scorer = TemporalTokenScorer(dim=8, mlp_dim=8, heads=2)
    x = torch.randn(1, 16, 8)
    z = scorer.group_vectors(x, (4, 4))
    # group 3 holds only patch 15: attention over one valid key returns v(patch 15)
    expected = scorer.o_proj(scorer.v_proj(x[0, 15]))
    assert torch.allclose(z[0, 3], expected, atol=1e-6)


# ---------------------------------------------------------------- training signals

def test_novelty_targets_identical_and_opposite_frames():
    a = torch.randn(1, 6, 6, 5)
    hidden = torch.cat([a, a, -a], dim=0)
    t = novelty_targets(hidden)
    assert t.shape == (3, 4)
    assert torch.allclose(t[0], torch.ones(4))
    assert torch.allclose(t[1], torch.zeros(4), atol=1e-6)
    assert torch.allclose(t[2], torch.full((4,), 2.0), atol=1e-6)


def test_auxiliary_loss_ignores_first_frame():
    scores = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    targets = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.2, 0.4]])
    expected = (0.25 + 0.25 + 0.0 + 0.16) / 4
    assert math.isclose(float(auxiliary_loss(scores, targets)), expected, rel_tol=1e-6)


def test_attention_bias_range_and_first_frame():
    torch.manual_seed(0)
    scores = torch.rand(4, 9)
    bias = attention_bias(scores, (9, 9))
    assert bias.shape == (4, 81)
    assert float(bias.min()) >= -2.0 - 1e-5 and float(bias.max()) <= 1e-6
    assert torch.all(bias[0] == 0)
    for t in range(1, 4):
        assert math.isclose(float(bias[t].min()), -2.0, abs_tol=1e-5)
        # released: (s - min) / (max - min + 1e-6), so the top of a row sits just below 1
        assert math.isclose(float(bias[t].max()), 0.0, abs_tol=1e-5)
    # each group's value is copied to its 9 patches
    idx = group_index((9, 9))
    assert torch.all(bias[1, idx[4]] == bias[1, idx[4][0]])


def test_attention_bias_hand_value_project_per_frame():
    scores = torch.tensor([[0.3, 0.3, 0.3, 0.3], [0.2, 0.6, 0.4, 1.0]])
    bias = attention_bias(scores, (6, 6), fidelity="project")
    lo = math.exp(-2)
    unit = torch.tensor([0.0, 0.5, 0.25, 1.0])
    expected = torch.log(lo + (1 - lo) * unit)
    idx = group_index((6, 6))
    assert torch.allclose(bias[1, idx[:, 0]], expected, atol=1e-6)


def test_gradient_flows_from_attention_through_bias_to_scorer():
    torch.manual_seed(0)
    scorer = TemporalTokenScorer(dim=8, mlp_dim=16, heads=2)
    x = torch.randn(3, 36, 8)
    bias = attention_bias(scorer(x, (6, 6)), (6, 6))       # (T, N)
    q = torch.randn(3, 1, 36, 8)
    out = F.scaled_dot_product_attention(q, x[:, None], x[:, None], attn_mask=bias[:, None, None, :])
    out.square().sum().backward()
    grads = [p.grad for p in scorer.parameters()]
    assert all(g is not None for g in grads)
    assert float(scorer.mlp[0].weight.grad.abs().sum()) > 0
    assert float(scorer.q_proj.weight.grad.abs().sum()) > 0


# ---------------------------------------------------------------- selection

def test_select_groups_budget_is_video_global_and_first_frame_kept():
    scores = torch.tensor([[0.0, 0.0, 0.0, 0.0],     # lowest, but first frame
                           [0.1, 0.9, 0.2, 0.8],
                           [0.7, 0.3, 0.95, 0.6]])
    keep = select_groups(scores, 0.25)  # round(4 * 0.25 * 3) = 3 pruned
    assert keep.tolist() == [[True, True, True, True],
                             [False, True, False, True],
                             [True, False, True, True]]


def test_select_groups_caps_at_non_first_frames():
    keep = select_groups(torch.rand(2, 4), 0.9)  # round(7.2) = 7 > 4 prunable
    assert keep[0].all() and not keep[1].any()


def test_groups_to_patch_mask():
    keep = torch.tensor([[True, False, False, True]])
    m = groups_to_patch_mask(keep, (6, 6))
    assert int(m.sum()) == 18 and bool(m[0, 0]) and not bool(m[0, 3]) and bool(m[0, 35])


# ---------------------------------------------------------------- packing

def test_first_fit_decreasing_hand_counts():
    p = pack_first_fit_decreasing(torch.tensor([729, 400, 300, 200, 100]), 729)
    assert p.num_bins == 3
    assert p.bin_of.tolist() == [0, 1, 1, 2, 2]
    assert p.offset.tolist() == [0, 0, 400, 0, 200]
    q = pack_first_fit_decreasing(torch.tensor([100, 300, 500, 200]), 729)
    # sorted 500(f2)->b0, 300(f1)->b1, 200(f3)->b0 (229 free), 100(f0)->b1 (429 free)
    assert q.bin_of.tolist() == [1, 1, 0, 0]
    assert q.offset.tolist() == [300, 0, 0, 500]


def test_first_fit_decreasing_rejects_overfull_frame():
    with pytest.raises(ValueError, match="capacity"):
        pack_first_fit_decreasing(torch.tensor([10, 3]), 8)


def _toy_pack():
    torch.manual_seed(0)
    T, N, D = 5, 8, 6
    counts = [8, 4, 3, 2, 1]
    keep = torch.zeros(T, N, dtype=torch.bool)
    for t, c in enumerate(counts):
        keep[t, torch.randperm(N)[:c]] = True
    hidden = torch.randn(T, N, D)
    return hidden, keep, rearrange_tokens(hidden, keep)


def test_rearrange_bins_and_refill_rule():
    hidden, keep, packed = _toy_pack()
    # counts [8,4,3,2,1], capacity 8: f0->b0, f1->b1, f2->b1, f3->b2, f4->b1 (last free slot)
    assert packed.packing.bin_of.tolist() == [0, 1, 1, 2, 1]
    assert packed.num_bins == 3
    # f3 sits alone in bin 2 -> its 6 pruned tokens come back; f0 alone but fully kept anyway
    assert packed.refill_mask.sum(1).tolist() == [0, 0, 0, 6, 0]
    assert packed.active_mask[3].all()
    assert torch.equal(packed.keep_mask, keep)


def test_block_diagonal_mask():
    _, _, packed = _toy_pack()
    fos = packed.frame_of_slot
    assert fos[1].tolist() == [1, 1, 1, 1, 2, 2, 2, 4]
    for b in range(packed.num_bins):
        for i in range(8):
            for j in range(8):
                expect = (fos[b, i] == fos[b, j] and fos[b, i] >= 0) or i == j
                assert bool(packed.attn_mask[b, i, j]) == bool(expect)


def test_pack_unpack_restores_active_tokens_exactly():
    hidden, _, packed = _toy_pack()
    back = unpack(packed.hidden, packed)
    act = packed.active_mask
    assert torch.equal(back[act], hidden[act])
    assert torch.all(back[~act] == 0)
    assert int((packed.frame_of_slot >= 0).sum()) == int(act.sum())


def test_packed_attention_equals_per_frame_attention():
    hidden, _, packed = _toy_pack()
    torch.manual_seed(1)
    mha = torch.nn.MultiheadAttention(6, 2, batch_first=True)
    with torch.no_grad():
        # packed: one pass per bin with the block-diagonal mask (True in MHA = masked out)
        out_packed, _ = mha(packed.hidden, packed.hidden, packed.hidden, attn_mask=~packed.attn_mask.repeat_interleave(2, 0))
        got = unpack(out_packed, packed)
        # SDPA with the boolean mask (True = attend) gives the same
        sdpa = F.scaled_dot_product_attention(packed.hidden[:, None], packed.hidden[:, None],
                                              packed.hidden[:, None], attn_mask=packed.attn_mask[:, None])
        sdpa_ref = F.scaled_dot_product_attention(hidden[:, None], hidden[:, None], hidden[:, None],
                                                  attn_mask=(packed.active_mask[:, None, :] & packed.active_mask[:, :, None])[:, None])
        for t in range(hidden.shape[0]):
            a = packed.active_mask[t]
            x = hidden[t, a][None]
            ref, _ = mha(x, x, x)
            assert torch.allclose(got[t, a], ref[0], atol=1e-5)
        assert torch.allclose(unpack(sdpa[:, 0], packed)[packed.active_mask],
                              sdpa_ref[:, 0][packed.active_mask], atol=1e-5)


def test_config_validation():
    assert STTSConfig().topk == 0.5 and STTSConfig().prune_at == 3
    assert math.isclose(STTSConfig().rescale_min, math.exp(-2))
    with pytest.raises(ValueError, match="topk"):
        STTSConfig(topk=1.0)


def test_packing_marks_frames_alone_in_their_bin():
    # counts [8, 4, 3, 2, 1], capacity 8: bins {f0}, {f1, f2, f4}, {f3} (see test_rearrange_bins_and_refill_rule)
    p = pack_first_fit_decreasing([8, 4, 3, 2, 1], 8)
    assert p.bin_of.tolist() == [0, 1, 1, 2, 1] and p.alone.tolist() == [True, False, False, True, False]
    # released: the one empty frame gets the last bin, alone; project: no bin, not alone
    assert pack_first_fit_decreasing([3, 0, 2], 4).alone.tolist() == [True, True, True]
    assert pack_first_fit_decreasing([3, 0, 2], 4, "project").alone.tolist() == [True, False, True]


def test_video_with_no_kept_token_packs_into_no_bin():
    """Two or more frames and nothing kept: no bin under either rule (this raised an IndexError before)."""
    hidden = torch.randn(3, 4, 2)
    for fidelity in ("released", "project"):
        packed = rearrange_tokens(hidden, torch.zeros(3, 4, dtype=torch.bool), fidelity=fidelity)
        assert packed.num_bins == 0 and packed.hidden.shape == (0, 4, 2) and packed.attn_mask.shape == (0, 4, 4)
        assert not packed.active_mask.any() and (packed.index == -1).all()
        assert torch.equal(unpack(packed.hidden, packed), torch.zeros(3, 4, 2))
