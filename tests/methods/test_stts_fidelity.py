"""STTS's ``fidelity`` (issue 24): the released code (tidalove/molmo2fish ``olmo/nn/temporal_image_vit.py``;
commit in methods/stts.py) against this project's earlier reading: the bias rescale on a 2 x 27 x 27
patch grid, the pruned-group count, and the one-empty-frame packing case. Expected numbers are worked
out by hand from the released rules; the released ``rearrange_tokens`` (a pure-torch top-level
function) also runs beside ours where a local mirror of that repository exists (skipped otherwise).
"""
from __future__ import annotations

import math

import pytest
import torch

from methods import get_method
from methods.stts import (STTSConfig, attention_bias, group_index, pack_first_fit_decreasing, rearrange_tokens,
                          select_groups, stts_pruned_groups)
from methods.stts_method import STTSMethodConfig
from official_code import official_function

LO = math.exp(-2)
STTS_REPO, STTS_COMMIT, STTS_FILE = "tidalove/molmo2fish", "95e0c4c56403c9a47db9c0afda28581b6a949c2f", \
    "olmo/nn/temporal_image_vit.py"


def _scores() -> torch.Tensor:
    """(2, 81) group scores on the 9 x 9 group grid of 27 x 27 patches: frame 1, group (r, c) =
    0.1 + 0.05 r + 0.01 (r + 1) c, so row r spans 0.08 (r + 1) and the frame 0.1 .. 1.22."""
    r = torch.arange(9, dtype=torch.float64)[:, None]
    c = torch.arange(9, dtype=torch.float64)[None, :]
    frame1 = 0.1 + 0.05 * r + 0.01 * (r + 1) * c
    return torch.stack([torch.full((9, 9), 0.5, dtype=torch.float64), frame1]).reshape(2, 81)


def test_bias_rescales_per_row_of_groups_on_a_2x27x27_grid():
    scores = _scores()
    bias = attention_bias(scores, (27, 27))
    idx = group_index((27, 27))                                   # (81, 9) patches of every group
    assert torch.all(bias[0] == 0)                                # the first frame: score 1
    for r in range(9):
        for c in range(9):
            unit = 0.01 * (r + 1) * c / (0.08 * (r + 1) + 1e-6)   # (s - row min) / (row range + 1e-6)
            expected = math.log(LO + (1 - LO) * unit)
            assert torch.allclose(bias[1, idx[9 * r + c]], torch.tensor(expected, dtype=bias.dtype), atol=1e-9)
    # project: one min-max over the frame (min 0.1 at (0, 0), max 1.22 at (8, 8))
    old = attention_bias(scores, (27, 27), fidelity="project")
    s = 0.1 + 0.05 * 4 + 0.01 * 5 * 4                             # group (4, 4) = 0.5
    assert old[1, idx[40, 0]].item() == pytest.approx(math.log(LO + (1 - LO) * (s - 0.1) / 1.12), abs=1e-9)
    assert bias[1, idx[40, 0]].item() == pytest.approx(math.log(LO + (1 - LO) * 0.2 / (0.4 + 1e-6)), abs=1e-9)
    assert (bias - old).abs().max() > 0.5


def test_per_row_equals_the_released_tensor_steps():
    """The released order of operations: group scores reshaped (T, 9, 9), repeated 3x along both axes
    to (T, 27, 27), min-max over the last axis (+1e-6), flattened -- a patch row holds its group row's
    9 scores three times, so this is the per-group-row rescale."""
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(3, 81, generator=g)
    grid = scores.reshape(-1, 9, 9).repeat_interleave(3, dim=1).repeat_interleave(3, dim=2)
    lo, hi = grid.min(dim=-1, keepdim=True).values, grid.max(dim=-1, keepdim=True).values
    rescaled = (LO + (grid - lo) * (1.0 - LO) / (hi - lo + 1e-6)).reshape(3, -1)
    rescaled[0] = 1.0
    assert torch.allclose(attention_bias(scores, (27, 27)), torch.log(rescaled), atol=1e-6)


def test_pruned_group_counts_int_in_float32():
    """int(81 * topk * T) as the released code computes it (float32): 30 % at 32 frames prunes
    int(777.6) = 777 groups, round() gave 778."""
    table = {(0.3, 32): (777, 778), (0.3, 64): (1555, 1555), (0.3, 128): (3110, 3110),
             (0.3, 256): (6220, 6221), (0.5, 32): (1296, 1296), (0.5, 64): (2592, 2592),
             (0.5, 128): (5184, 5184), (0.5, 256): (10368, 10368), (0.5, 7): (283, 284)}
    for (topk, frames), (released, project) in table.items():
        assert stts_pruned_groups(81, topk, frames) == released, (topk, frames)
        assert stts_pruned_groups(81, topk, frames, "project") == project, (topk, frames)
    # float32, not Python's float64, either way round: int(81 * 0.03 * 100) = int(242.99999999999997) =
    # 242 but 243 in float32; int(81 * 0.15 * 660) = 8019 but 8018 in float32
    assert int(81 * 0.03 * 100) == 242 and stts_pruned_groups(81, 0.03, 100) == 243
    assert int(81 * 0.15 * 660) == 8019 and stts_pruned_groups(81, 0.15, 660) == 8018
    assert stts_pruned_groups(81, 0.5, 1) == 0                    # the first frame is always kept
    scores = torch.rand(32, 81, generator=torch.Generator().manual_seed(0))
    assert int((~select_groups(scores, 0.3)).sum()) == 777
    assert int((~select_groups(scores, 0.3, "project")).sum()) == 778


def _one_empty_frame():
    """4 frames of 4 patches (capacity 4): kept counts 4, 3, 0, 1. FFD: frame 0 -> bin 0, frame 1 ->
    bin 1 (3 slots), frame 3 -> bin 1 (its 4th slot); frame 2 keeps nothing."""
    x = torch.arange(4 * 4 * 2, dtype=torch.float32).view(4, 4, 2)
    keep = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 1], [0, 0, 0, 0], [0, 0, 1, 0]], dtype=torch.bool)
    return x, keep


def test_one_empty_frame_gets_a_bin_of_its_own_and_is_refilled():
    x, keep = _one_empty_frame()
    rel = rearrange_tokens(x, keep)
    assert rel.num_bins == 3 and rel.packing.bin_of.tolist() == [0, 1, 2, 1]
    assert torch.equal(rel.hidden[2], x[2])                       # frame 2 whole in the new bin
    assert rel.refill_mask[2].all() and int(rel.refill_mask.sum()) == 4
    assert torch.equal(rel.keep_mask, keep)                       # the LLM still gets none of it
    assert torch.equal(rel.hidden[1], torch.stack([x[1, 0], x[1, 2], x[1, 3], x[3, 2]]))
    old = rearrange_tokens(x, keep, fidelity="project")
    assert old.num_bins == 2 and old.packing.bin_of.tolist() == [0, 1, -1, 1]
    assert int(old.refill_mask.sum()) == 0
    # two empty frames: neither gets a bin under either rule
    two = keep.clone()
    two[3] = False
    assert pack_first_fit_decreasing(two.sum(1), 4).bin_of.tolist() == [0, 1, -1, -1]


def test_one_empty_frame_against_the_released_rearrange_tokens():
    """The official ``rearrange_tokens`` run beside ours (local mirror only): same number of packed
    frames, same packed rows, same refill mask, in the one- and two-empty-frame cases."""
    official = official_function(STTS_REPO, STTS_COMMIT, STTS_FILE, "rearrange_tokens")
    x, keep = _one_empty_frame()
    for mask in (keep, torch.cat([keep[:3], torch.zeros(1, 4, dtype=torch.bool)])):
        rearranged, attn, new_locs, refill = official(x, mask)
        ours = rearrange_tokens(x, mask)
        assert rearranged.shape[0] == ours.num_bins
        assert torch.equal(rearranged, ours.hidden)
        assert torch.equal(refill, ours.refill_mask)
        assert torch.equal(attn[:, 0], ours.attn_mask & (ours.frame_of_slot >= 0)[:, :, None])


def test_defaults_are_released_and_unknown_fidelity_is_refused():
    assert STTSMethodConfig().fidelity == "released"
    method = get_method("stts")
    assert method.config.fidelity == "released"
    with pytest.raises(ValueError, match=r"stts fidelity must be one of \['released', 'project'\], got 'paper'"):
        get_method("stts", fidelity="paper")
    with pytest.raises(ValueError, match="stts fidelity"):
        attention_bias(torch.rand(2, 4), (6, 6), fidelity="official")
    assert STTSConfig().topk == 0.5


def test_nominal_lite_counts_follow_the_fidelity():
    from costmodel import load_arch

    arch = load_arch("molmo2-4b")                                 # 81 pooled tokens per frame
    for frames, rel, old in ((32, 32 * 81 - 777, 32 * 81 - 778), (256, 256 * 81 - 6220, 256 * 81 - 6221)):
        assert get_method("stts", topk=0.3).nominal_schedule(arch, frames).llm_visual[0] == rel
        assert get_method("stts", topk=0.3, fidelity="project").nominal_schedule(arch, frames).llm_visual[0] == old
