"""HoliTom's DP segmentation, static masks, budget re-scaling and FastVID's DySeg."""
import itertools

import pytest
import torch

from methods.primitives import (
    Segmentation,
    dyseg_segments,
    make_generator,
    rescaled_retention,
    static_counts,
    static_mask,
    static_window_gain,
    temporal_segments,
)

# F = 6 frames, N = 4 positions; 1 = similar transition (sim 0.9), 0 = changed (sim 0.1), tau 0.5
PATTERN = torch.tensor([
    [1, 1, 1, 1],   # 0 -> 1
    [1, 1, 0, 0],   # 1 -> 2
    [0, 0, 0, 0],   # 2 -> 3 (scene cut)
    [1, 1, 1, 0],   # 3 -> 4
    [1, 1, 1, 0],   # 4 -> 5
], dtype=torch.float32)
SIM = 0.1 + 0.8 * PATTERN


def test_static_counts_and_gain_by_hand():
    counts = static_counts(SIM, 0.5)
    assert counts[0, 1] == 4 and counts[0, 2] == 2 and counts[1, 2] == 2 and counts[0, 3] == 0
    assert counts[3, 5] == 3 and counts[2, 3] == 0 and counts[2, 2] == 0 and counts[4, 3] == 0
    gain = static_window_gain(SIM, 0.5)
    assert gain[0, 1] == 4 and gain[0, 2] == 4 and gain[3, 5] == 6 and gain[3, 4] == 3
    assert static_window_gain(SIM, 0.5, max_window=2)[3, 5] == 0


def test_dp_finds_known_optimum_and_prefers_shorter_window_on_ties():
    seg = temporal_segments(SIM, 0.5)
    assert isinstance(seg, Segmentation)
    # [0,1] (4 saved) ties with [0,2] (2 static x 2 = 4): the official strict '>' keeps the shorter.
    assert seg.segments == [(0, 1), (2, 2), (3, 5)]
    assert seg.total_reduced == 4 + 6


def test_max_window_limits_windows():
    seg = temporal_segments(SIM, 0.5, max_window=2)
    assert seg.total_reduced == 4 + 3
    assert all(e - s + 1 <= 2 for s, e in seg.segments)


def _brute_force_best(sim, tau):
    F = sim.shape[0] + 1
    counts = static_counts(sim, tau)
    best = 0
    for cuts in itertools.product([0, 1], repeat=F - 1):
        bounds = [0] + [t + 1 for t, c in enumerate(cuts) if c] + [F]
        total = sum(int(counts[s, e - 1]) * (e - 1 - s) for s, e in zip(bounds[:-1], bounds[1:]))
        best = max(best, total)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dp_matches_brute_force_and_covers_all_frames(seed):
    sim = torch.rand(7, 5, generator=make_generator(seed)) * 0.4 + 0.6
    seg = temporal_segments(sim, 0.75)
    assert seg.total_reduced == _brute_force_best(sim, 0.75)
    flat = [f for s, e in seg.segments for f in range(s, e + 1)]
    assert flat == list(range(8))


def test_single_frame_and_bad_tau():
    assert temporal_segments(torch.zeros(0, 3), 0.8).segments == [(0, 0)]
    with pytest.raises(ValueError, match="tau"):
        temporal_segments(SIM, 1.0)
    with pytest.raises(ValueError, match="tau"):
        temporal_segments(SIM, 0.0)


def test_static_mask():
    assert static_mask(SIM, 3, 5, 0.5).tolist() == [True, True, True, False]
    assert static_mask(SIM, 0, 2, 0.5).tolist() == [True, True, False, False]
    assert static_mask(SIM, 2, 2, 0.5).tolist() == [False] * 4
    with pytest.raises(ValueError, match="window"):
        static_mask(SIM, 4, 6, 0.5)


def test_rescaled_retention_arithmetic():
    assert rescaled_retention(0.1, 10, 24) == pytest.approx(0.1 / (14 / 24))
    assert rescaled_retention(0.5, 20, 24) == 1.0
    assert rescaled_retention(0.25, 0, 100) == 0.25
    with pytest.raises(ValueError):
        rescaled_retention(0.1, 24, 24)


def test_dyseg_cuts_lowest_and_below_tau():
    g = torch.tensor([0.95, 0.5, 0.99, 0.92, 0.97, 0.85, 0.98])  # F = 8
    # c = 3 -> the 2 lowest transitions (1, 5); tau 0.9 adds nothing new
    assert dyseg_segments(g, 3, 0.9) == [(0, 1), (2, 5), (6, 7)]
    # tau 0.93 also cuts at transition 3 (0.92)
    assert dyseg_segments(g, 3, 0.93) == [(0, 1), (2, 3), (4, 5), (6, 7)]
    # c = 1 and a low tau: one segment
    assert dyseg_segments(g, 1, 0.1) == [(0, 7)]


def test_paper_tau_follows_the_run_scripts():
    from methods.primitives import paper_tau

    assert paper_tau(0.10) == 0.65 and paper_tau(0.1 + 1e-12) == 0.65  # float noise stays at 10 %
    assert paper_tau(0.15) == 0.80 and paper_tau(0.25) == 0.80
    assert paper_tau(0.25, tau=0.7) == 0.7
