"""STTS's non-learned ablation rules (random / heuristic / easy) on hand-built hidden states."""
from __future__ import annotations

import pytest
import torch

from methods.stts import reference_prune_scores, select_by_rule

GRID = (3, 6)   # two 3x3 groups per frame


def _frames(*patterns):
    """One (N, D=2) frame per pattern: group 0 / group 1 filled with the given 2-vectors."""
    out = []
    for a, b in patterns:
        f = torch.zeros(3, 6, 2)
        f[:, :3] = torch.tensor(a, dtype=torch.float32)
        f[:, 3:] = torch.tensor(b, dtype=torch.float32)
        out.append(f.reshape(18, 2))
    return torch.stack(out)


def test_heuristic_keeps_a_scene_cut_as_new_reference_and_prunes_repeats():
    x, y = (1.0, 0.0), (0.0, 1.0)
    # frame 1 repeats frame 0; frame 2 changes both groups (cut: new reference); frame 3 repeats 2
    h = _frames((x, y), (x, y), (y, x), (y, x))
    s = reference_prune_scores(h, GRID, 0.85, "heuristic")
    assert s[0].tolist() == [-1, -1] and s[2].tolist() == [-1, -1]
    assert torch.allclose(s[1], torch.ones(2)) and torch.allclose(s[3], torch.ones(2))
    keep = select_by_rule(h, GRID, 0.5, "heuristic")       # prune 4 of 8 groups: the repeats
    assert keep.tolist() == [[True, True], [False, False], [True, True], [False, False]]


def test_heuristic_updates_only_dissimilar_locations_easy_compares_the_previous_frame():
    x, y = (1.0, 0.0), (0.0, 1.0)
    d = (0.6, 0.8)  # cos(y, d) = 0.8
    h = _frames((x, y), (x, d), (x, d))
    heur = reference_prune_scores(h, GRID, 0.5, "heuristic")
    # theta 0.5: frame 1 sims (1, 0.8), mean 0.9 -> scored; no group below 0.5 -> references stay frame 0
    assert torch.allclose(heur[1], torch.tensor([1.0, 0.8]))
    assert torch.allclose(heur[2], torch.tensor([1.0, 0.8]))
    # theta 0.9: mean 0.9 is not below it, but group 1 (0.8) is: its reference becomes frame 1
    upd = reference_prune_scores(h, GRID, 0.9, "heuristic")
    assert torch.allclose(upd[1], torch.tensor([1.0, 0.8])) and torch.allclose(upd[2], torch.ones(2))
    easy = reference_prune_scores(h, GRID, 0.5, "easy")
    assert torch.allclose(easy[2], torch.tensor([1.0, 1.0]))  # frame 2 equals frame 1


def test_retry_lowers_theta_until_no_new_reference_group_is_pruned():
    x = (1.0, 0.0)
    a = (0.78, (1 - 0.78 ** 2) ** 0.5)   # cos(x, a) = 0.78
    # at theta 0.85 and 0.80 frames 1 and 2 are new references (score -1 everywhere); from 0.75 on
    # frame 1 scores 0.78 and frame 2 (= frame 0, its reference) scores 1: those 2 groups go
    h = _frames((x, x), (a, a), (x, x))
    one_try = select_by_rule(h, GRID, 0.34, "heuristic", retries=1)   # prune int(2 * 0.34 * 3) = 2
    assert one_try.tolist() == [[False, False], [True, True], [True, True]]
    keep = select_by_rule(h, GRID, 0.34, "heuristic")
    assert keep.tolist() == [[True, True], [True, True], [False, False]]


def test_random_rule_is_seeded_and_prunes_the_budget():
    h = torch.randn(5, 18, 2)
    a = select_by_rule(h, GRID, 0.5, "random", seed=3)
    b = select_by_rule(h, GRID, 0.5, "random", seed=3)
    c = select_by_rule(h, GRID, 0.5, "random", seed=4)
    assert torch.equal(a, b) and int((~a).sum()) == 5 and not torch.equal(a, c)


def test_bad_rule_and_topk_are_rejected():
    h = torch.randn(2, 18, 2)
    with pytest.raises(ValueError, match="rule must be"):
        reference_prune_scores(h, GRID, 0.85, "median")
    with pytest.raises(ValueError, match="topk_pruned"):
        select_by_rule(h, GRID, 1.0, "easy")
