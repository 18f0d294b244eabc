"""VisionZip's ``fidelity`` (issue 24): HoliTom's port (cokeshao/HoliTom ``visionzip/llava_arch.py``;
commit in methods/baselines/pre_llm.py) against this project's earlier reading, at 20 and 40 tokens
per frame. The official ``visionzip`` is a function nested inside ``prepare_inputs_labels_for_multimodal``
(not importable on its own), so the expected numbers are worked out by hand from its rule.

One frame of N = 50 tokens with attention n (token 49 the most attended), features (n, 1) and keys
chosen so that every non-dominant token has exactly one target with an equal one-hot key.
"""
from __future__ import annotations

import pytest
import torch

from methods import get_method
from methods.baselines.pre_llm import visionzip_frame, visionzip_split
from methods.types import VideoTokens

N = 50
ATTN = torch.arange(N, dtype=torch.float32)
FEAT = torch.stack([torch.arange(N, dtype=torch.float32), torch.ones(N)], dim=1)


def _keys(targets: list[int]) -> torch.Tensor:
    """Token n's key: one-hot of the block of ``targets`` it lies in (block i starts at targets[i] and
    is 8 tokens long); the tokens past the last block share block 0's key."""
    keys = torch.zeros(N, len(targets))
    for n in range(N):
        inside = [i for i, t in enumerate(targets) if t <= n < t + 8]
        keys[n, inside[0] if inside else 0] = 1.0
    return keys


def test_dominant_counts_int_against_round_half_up():
    assert visionzip_split(20, 54 / 64) == (16, 4) and visionzip_split(20, 54 / 64, "project") == (17, 3)
    assert visionzip_split(40, 54 / 64) == (33, 7) and visionzip_split(40, 54 / 64, "project") == (34, 6)
    for b, dom in ((30, 25), (50, 42)):  # int and round agree at HoliTom's other budgets
        assert visionzip_split(b, 54 / 64) == visionzip_split(b, 54 / 64, "project") == (dom, b - dom)


def test_20_tokens_per_frame_released_by_hand():
    """16 dominant (tokens 34..49, in position order), rest 0..33, step 34 // 4 = 8: targets 0, 8,
    16, 24. Block keys: 1..7 -> 0, 9..15 -> 8, 17..23 -> 16, 25..31 -> 24, 32, 33 -> 0 (wrap)."""
    keys = _keys([0, 8, 16, 24])
    out, src = visionzip_frame(FEAT, ATTN, keys, 20, 54 / 64, sort=False)
    assert src.tolist() == list(range(34, 50)) + [0, 8, 16, 24]
    assert torch.equal(out[:16], FEAT[34:])
    # contextual = target + mean of its members
    members = {0: [1, 2, 3, 4, 5, 6, 7, 32, 33], 8: list(range(9, 16)), 16: list(range(17, 24)),
               24: list(range(25, 32))}
    for j, t in enumerate([0, 8, 16, 24]):
        mean = sum(members[t]) / len(members[t])
        assert out[16 + j].tolist() == pytest.approx([t + mean, 2.0])
    assert out[16].tolist() == pytest.approx([93 / 9, 2.0])            # (1+..+7 + 32 + 33) / 9


def test_40_tokens_per_frame_released_and_project_by_hand():
    """Released: 33 dominant (17..49), rest 0..16, step 17 // 7 = 2, targets 0, 2, .., 12, emitted
    after the dominant block. Project: 34 dominant (16..49), rest 0..15, step 16 // 6 = 2, targets
    0, 2, .., 10, the frame sorted by position."""
    keys = torch.eye(N)[:, :8]
    _, rel = visionzip_frame(FEAT, ATTN, keys, 40, 54 / 64, sort=False)
    assert rel.tolist() == list(range(17, 50)) + [0, 2, 4, 6, 8, 10, 12]
    _, old = visionzip_frame(FEAT, ATTN, keys, 40, 54 / 64, "project")
    assert old.tolist() == [0, 2, 4, 6, 8, 10] + list(range(16, 50))


def _video(policy: str) -> VideoTokens:
    X = torch.stack([FEAT, FEAT + 100])
    return VideoTokens(X, (5, 10), saliency={"vit_attn_received": torch.stack([ATTN, ATTN])},
                       keys=torch.stack([_keys([0, 8, 16, 24])] * 2), newline_policy=policy)


def test_layouts_one_token_keeps_the_official_order_grid_sorts():
    """Fails when the default drifts back to sorting a one-token-layout frame by position."""
    frame0 = list(range(34, 50)) + [0, 8, 16, 24]
    red = get_method("visionzip", retention=0.4, tokens_per_frame=20).reduce(_video("one_token"))
    assert red.source.tolist() == frame0 + [50 + s for s in frame0]
    grid = get_method("visionzip", retention=0.4, tokens_per_frame=20).reduce(_video("grid"))
    assert grid.source.tolist() == sorted(frame0) + [50 + s for s in sorted(frame0)]
    old = get_method("visionzip", retention=0.4, tokens_per_frame=20, fidelity="project").reduce(_video("one_token"))
    assert old.num_tokens == 40 and old.source.tolist()[:20] == [0, 11, 22] + list(range(33, 50))


def test_unknown_fidelity_is_refused():
    with pytest.raises(ValueError, match=r"visionzip fidelity must be one of \['released', 'project'\]"):
        get_method("visionzip", retention=0.1, fidelity="paper")


def _per_frame_reference(tokens: VideoTokens, budgets: list[int], fidelity: str, sort: bool):
    """The reduction as a loop over frames of the readable per-frame reference."""
    F, N, _ = tokens.features.shape
    attn = tokens.saliency["vit_attn_received"]
    out = [visionzip_frame(tokens.features[f], attn[f], tokens.keys[f], budgets[f], 54 / 64, fidelity, sort)
           for f in range(F)]
    return torch.cat([x for x, _ in out]), torch.cat([s + f * N for f, (_, s) in enumerate(out)])


@pytest.mark.parametrize("fidelity", ["released", "project"])
@pytest.mark.parametrize("policy", ["one_token", "grid"])
@pytest.mark.parametrize("frames,grid,dtype", [(1, (7, 7), torch.float32), (5, (7, 7), torch.float32),
                                               (8, (5, 6), torch.float32), (3, (2, 3), torch.float32),
                                               (5, (7, 7), torch.bfloat16)])
def test_batched_reduction_equals_the_per_frame_reference(fidelity, policy, frames, grid, dtype):
    """Fails when the batched reduction (frames of one budget at once, no host syncs) drifts from
    ``visionzip_frame``: kept indices equal, features within 1e-6, for budgets that differ by one
    token between frames, both fidelities, both layouts (the one-token layout keeps [dominant; contextual]),
    also in bfloat16 (the contextual means summed in fp32, as the reference does)."""
    N = grid[0] * grid[1]
    g = torch.Generator().manual_seed(frames * 100 + N)
    for trial, retention in enumerate([0.02, 0.1, 0.137, 0.25, 0.5, 0.93, 1.0]):
        X = torch.randn(frames, N, 16, generator=g).to(dtype)
        tokens = VideoTokens(X, grid, saliency={"vit_attn_received": torch.rand(frames, N, generator=g)},
                             keys=torch.randn(frames, N, 8, generator=g), newline_policy=policy)
        for kw in ({}, {"tokens_per_frame": 1 + trial * 3}):
            red = get_method("visionzip", retention=retention, fidelity=fidelity, **kw).reduce(tokens)
            budgets = red.info["tokens_per_frame"]
            assert max(budgets) - min(budgets) <= 1
            sort = fidelity == "project" or policy == "grid"
            ref_x, ref_s = _per_frame_reference(tokens, budgets, fidelity, sort)
            assert torch.equal(red.source, ref_s)
            assert red.features.shape == ref_x.shape
            assert torch.allclose(red.features.float(), ref_x.float(), rtol=0, atol=1e-6)
