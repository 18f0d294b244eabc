"""FastVID's ``fidelity`` (issue 24): the released DTM (LunarShen/FastVID, the FastVID block of
``modeling_qwen2.py``; commit in methods/baselines/fastvid.py) against this project's earlier
reading, on a hand-built 6-frame segment with two anchor frames. The official DTM is inline in
``Qwen2Model.forward`` (not a function that can be imported), so the expected numbers below are worked
out by hand from its rule: per anchor frame, every non-salient token of the segment joins that
frame's most cosine-similar anchor.

Every token is a unit vector in 2-D at the angle listed (degrees); cosine nearest = nearest angle.
Per frame: token 0 is salient (270 deg, saliency 1), tokens 1-3 the non-salient rest. r = 0.5 and
d = 0.5 on N = 4 give int(2) = 2 retained, floor(1) = 1 contextual, 1 salient per frame; the one
segment (c = 1, equal global features) has anchor frames 1 and 5 (p = 4, from the end), each taking
(6 * 1) // 2 = 3 anchors: all three of its non-salient tokens.
"""
from __future__ import annotations

import math

import pytest
import torch

from methods import get_method
from methods.baselines.fastvid import FastVIDConfig, fastvid_frame_budget, fastvid_reduce
from methods.types import VideoTokens

REST = {0: (10, 70, 160), 1: (0, 90, 180), 2: (50, 130, 250), 3: (5, 93, 187), 4: (40, 120, 300),
        5: (30, 100, 200)}


def _unit(deg: float) -> torch.Tensor:
    return torch.tensor([math.cos(math.radians(deg)), math.sin(math.radians(deg))])


def _video() -> VideoTokens:
    X = torch.stack([torch.stack([_unit(a) for a in (270, *REST[f])]) for f in range(6)])   # (6, 4, 2)
    sal = torch.zeros(6, 4)
    sal[:, 0] = 1.0
    return VideoTokens(features=X, grid=(2, 2), saliency={"map_head_attn": sal}, global_features=torch.ones(6, 3))


def _merged(anchor: float, members: list[float]) -> torch.Tensor:
    """w * anchor + (1 - w) * mean(members), w = max(1 / (count + 1), 0.6) = 0.6 for count >= 1."""
    w = max(1.0 / (len(members) + 1), 0.6)
    return w * _unit(anchor) + (1 - w) * torch.stack([_unit(a) for a in members]).mean(0)


# worked out by hand: nearest anchor (by angle) of each of the 18 non-salient tokens
RELEASED = {   # per anchor frame: frame 1's anchors 0/90/180 deg, frame 5's 30/100/200 deg
    0: [10, 0, 5, 40, 300, 30], 90: [70, 90, 50, 130, 93, 120, 100], 180: [160, 180, 250, 187, 200],
    30: [10, 0, 50, 5, 40, 300, 30], 100: [70, 90, 130, 93, 120, 100], 200: [160, 180, 250, 187, 200],
}
PROJECT = {    # one nearest anchor among all six
    0: [0, 10, 5, 300], 90: [90, 70, 93], 180: [180, 160, 187], 30: [30, 50, 40], 100: [100, 130, 120],
    200: [200, 250],
}


@pytest.mark.parametrize("fidelity,table", [("released", RELEASED), ("project", PROJECT)])
def test_dtm_on_a_six_frame_segment_with_two_anchor_frames(fidelity, table):
    red = fastvid_reduce(_video(), FastVIDConfig(retention=0.5, d=0.5, c=1, fidelity=fidelity))
    assert red.info["segments"] == [(0, 5)]
    # 6 salient tokens (position 0 of every frame) + 3 anchors in frames 1 and 5, original positions
    assert red.source.tolist() == [0, 4, 5, 6, 7, 8, 12, 16, 20, 21, 22, 23]
    assert sum(len(v) for v in table.values()) == (18 * 2 if fidelity == "released" else 18)
    anchors = {4 + 1: 0, 4 + 2: 90, 4 + 3: 180, 20 + 1: 30, 20 + 2: 100, 20 + 3: 200}
    for j, src in enumerate(red.source.tolist()):
        if src in anchors:
            a = anchors[src]
            assert torch.allclose(red.features[j], _merged(a, table[a]), atol=1e-6), (fidelity, a)
        else:
            assert torch.equal(red.features[j], _unit(270))


def test_the_fidelities_differ_and_released_is_the_default():
    """Fails when the default drifts back to one nearest anchor per segment or to round()."""
    assert FastVIDConfig(retention=0.1).fidelity == "released"
    rel = fastvid_reduce(_video(), FastVIDConfig(retention=0.5, d=0.5, c=1))
    old = fastvid_reduce(_video(), FastVIDConfig(retention=0.5, d=0.5, c=1, fidelity="project"))
    assert torch.equal(rel.source, old.source)
    assert (rel.features - old.features).abs().max() > 0.05


def test_an_anchor_frame_with_the_per_frame_count_merges_only_its_own_frame():
    """p = 2 on a 3-frame segment (frames 3..5 of the video, c = 1 at 1 contextual per frame): anchor
    frames 3 and 5 get (3 * 1) // 2 = 1 anchor each, equal to the per-frame count, so the released
    code merges each within its own frame (frame 4's tokens join no anchor)."""
    vt = _video()
    X = vt.features
    sub = VideoTokens(features=X[3:], grid=(2, 2), saliency={"map_head_attn": vt.saliency["map_head_attn"][3:]},
                      global_features=torch.ones(3, 3))
    red = fastvid_reduce(sub, FastVIDConfig(retention=0.5, d=0.5, c=1, p=2, k=2))
    anchors = [s for s in red.source.tolist() if s % 4 != 0]
    assert len(anchors) == 2 and {s // 4 for s in anchors} == {0, 2}
    for s in anchors:
        f = s // 4
        own = X[3 + f, 1:]                                   # the frame's three non-salient tokens
        anchor = X[3 + f, s % 4]
        j = red.source.tolist().index(s)
        # one anchor in the set: all 3 own tokens join it, w = max(1/4, 0.6)
        assert torch.allclose(red.features[j], 0.6 * anchor + 0.4 * own.mean(0), atol=1e-6)
        segment = X[3:, 1:].reshape(-1, 2)                   # what a segment-wide pool would give
        assert not torch.allclose(red.features[j], 0.6 * anchor + 0.4 * segment.mean(0), atol=1e-3)


def test_per_frame_count_is_int_of_n_r():
    """int(196 * 0.10) = 19 retained (12 salient + int(7.6) = 7 contextual); round() gave 20."""
    assert fastvid_frame_budget(196, 0.10, 0.4) == (12, 7)
    assert fastvid_frame_budget(196, 0.10, 0.4, "project") == (12, 8)
    assert fastvid_frame_budget(196, 0.25, 0.4) == (30, 19)   # int(49.0) = 49 either way
    assert fastvid_frame_budget(9, 0.10, 0.4) == (1, 0)       # int(0.9) = 0: at least one token
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 196, 16, generator=g)
    vt = VideoTokens(features=X, grid=(14, 14), saliency={"map_head_attn": torch.rand(8, 196, generator=g)},
                     global_features=torch.ones(8, 3))
    red = fastvid_reduce(vt, FastVIDConfig(retention=0.10, c=1))   # one segment: anchor frames 3, 7
    assert red.num_tokens == 8 * 12 + 2 * ((8 * 7) // 2)


def test_unknown_fidelity_is_refused():
    with pytest.raises(ValueError, match=r"fastvid fidelity must be one of \['released', 'project'\]"):
        get_method("fastvid", retention=0.1, fidelity="paper")


def _angle_gap(a: float, b: float) -> float:
    return min((a - b) % 360, (b - a) % 360)


@pytest.mark.parametrize("fidelity", ["released", "project"])
def test_three_two_frame_segments_batched_as_one_run(fidelity):
    """Three consecutive segments of one shape (frames 0-1, 2-3, 4-5) are one batch of pools in the
    batched DTM (issue 26); each must still merge only its own segment. r = 0.75, d = 0.67 on N = 4:
    int(3) retained, floor(2.01) = 2 contextual, 1 salient; each segment's one anchor frame (its
    last, p = 4) takes min((2 * 2) // 1, 3) = 3 anchors: all its non-salient tokens. Expected: every
    non-salient token of the segment joins the anchor nearest in angle (cosine on the unit circle),
    computed here from the angles, not by the project's code."""
    vt = _video()
    g = torch.eye(3).repeat_interleave(2, dim=0)                        # cos 1, 0, 1, 0, 1: cuts after 1, 3
    red = fastvid_reduce(VideoTokens(features=vt.features, grid=(2, 2), saliency=vt.saliency, global_features=g),
                         FastVIDConfig(retention=0.75, d=0.67, c=1, fidelity=fidelity))
    assert red.info["segments"] == [(0, 1), (2, 3), (4, 5)]
    expected = {f * 4: _unit(270) for f in range(6)}
    for s in (0, 2, 4):
        host = s + 1
        members = {a: [] for a in REST[host]}
        for f in (s, s + 1):
            for angle in REST[f]:
                members[min(REST[host], key=lambda a: (_angle_gap(angle, a), REST[host].index(a)))].append(angle)
        for slot, a in enumerate(REST[host], start=1):
            expected[host * 4 + slot] = _merged(a, members[a])
    assert red.source.tolist() == sorted(expected)
    for j, src in enumerate(red.source.tolist()):
        assert torch.allclose(red.features[j], expected[src], atol=1e-6), (fidelity, src)
