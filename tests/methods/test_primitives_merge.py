"""Assignment and merge rules against hand numbers and naive loop references."""
import pytest
import torch

from methods.primitives import (
    assign_nearest,
    beta_blend,
    blend_merge,
    make_generator,
    mean_merge,
    running_pairwise_merge,
    scatter_mean,
    weighted_anchor_merge,
)


def test_assign_nearest_euclidean_and_cosine():
    x = torch.tensor([[0.0], [1.0], [4.0], [9.0]])
    c = torch.tensor([[0.0], [5.0]])
    assert assign_nearest(x, c).tolist() == [0, 0, 1, 1]
    x2 = torch.tensor([[10.0, 1.0], [1.0, 10.0], [-1.0, 0.1]])
    c2 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-5.0, 0.0]])
    assert assign_nearest(x2, c2, metric="cosine").tolist() == [0, 1, 2]
    # Euclidean prefers the small centre for a small point even if directions differ
    assert assign_nearest(torch.tensor([[0.1, 0.0]]), torch.tensor([[0.0, 0.2], [5.0, 0.0]])).tolist() == [0]
    with pytest.raises(ValueError, match="metric"):
        assign_nearest(x, c, metric="manhattan")


def test_assign_nearest_batched():
    x = torch.randn(3, 10, 4, generator=make_generator(0))
    c = torch.randn(3, 2, 4, generator=make_generator(1))
    a = assign_nearest(x, c)
    ref = torch.cdist(x, c).argmin(-1)
    assert torch.equal(a, ref)


def test_scatter_mean_by_hand():
    v = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    mean, counts = scatter_mean(v, torch.tensor([0, 0, 2]), 3)
    assert mean.tolist() == [[2.0, 3.0], [0.0, 0.0], [5.0, 6.0]]
    assert counts.tolist() == [2, 0, 1]


def test_beta_blend_keeps_memberless_centre():
    centre = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    mean = torch.tensor([[3.0, 3.0], [0.0, 0.0]])
    out = beta_blend(centre, mean, torch.tensor([2, 0]), 0.6)
    assert torch.allclose(out, torch.tensor([[1.8, 1.8], [2.0, 2.0]]))


def test_weighted_anchor_merge_weight_is_max_of_inverse_count_and_beta():
    anchor = torch.zeros(4, 1)
    mean = torch.ones(4, 1)
    out = weighted_anchor_merge(anchor, mean, torch.tensor([0, 1, 2, 5]), 0.3)
    # w = [1 (no members), 1/1, 1/2, max(1/5, 0.3)] -> out = 1 - w
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 0.0, 0.5, 0.7]))


def test_running_pairwise_merge_by_hand():
    kept = torch.tensor([[0.0], [8.0], [1.0]])
    dropped = torch.tensor([[4.0], [2.0], [6.0]])
    target = torch.tensor([0, 1, 0])
    # kept0: (0 + 4)/2 = 2, then (2 + 6)/2 = 4; kept1: (8 + 2)/2 = 5; kept2 untouched
    assert running_pairwise_merge(kept, dropped, target).flatten().tolist() == [4.0, 5.0, 1.0]
    # order matters: reversing the arrivals at target 0 gives (0+6)/2=3 then (3+4)/2=3.5
    out = running_pairwise_merge(kept, dropped[[2, 1, 0]], target[[2, 1, 0]])
    assert out.flatten().tolist() == [3.5, 5.0, 1.0]


def test_running_pairwise_merge_equals_sequential_loop():
    g = make_generator(11)
    kept = torch.randn(7, 16, generator=g)
    dropped = torch.randn(40, 16, generator=g)
    target = torch.randint(0, 6, (40,), generator=g)  # kept token 6 receives nothing
    ref = kept.clone()
    for p in range(40):
        ref[target[p]] = (ref[target[p]] + dropped[p]) / 2
    out = running_pairwise_merge(kept, dropped, target)
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.equal(out[6], kept[6])


def test_mean_and_blend_merge_by_hand():
    kept = torch.tensor([[0.0], [8.0]])
    dropped = torch.tensor([[4.0], [2.0], [6.0]])
    target = torch.tensor([0, 0, 1])
    assert mean_merge(kept, dropped, target).flatten().tolist() == pytest.approx([2.0, 7.0])
    assert blend_merge(kept, dropped, target).flatten().tolist() == pytest.approx([0.8, 7.6])
    assert blend_merge(kept, dropped, target, keep_weight=1.0).flatten().tolist() == [0.0, 8.0]
    with pytest.raises(ValueError, match="target"):
        mean_merge(kept, dropped, torch.tensor([0, 2, 1]))
