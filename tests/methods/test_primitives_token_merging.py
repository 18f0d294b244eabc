"""ToMe's bipartite soft matching and size-weighted merge against hand numbers and a loop reference."""
import math

import pytest
import torch

from methods.primitives import (bipartite_soft_matching, merge_wavg, proportional_bias, r_schedule,
                                retention_r_schedule, tokens_per_block)

# A = positions 0, 2, 4; B = positions 1, 3, 5. Cosines: A0 -> B1 1.0, A2 -> B3 1.0,
# A4 = (2, 1) -> B1 2/sqrt(5) = 0.894 (B3: 0.447, B5: -0.894).
METRIC = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 2.0], [2.0, 1.0], [-1.0, 0.0]]])
X = torch.tensor([[[10.0], [20.0], [30.0], [40.0], [50.0], [60.0]]])


def test_matching_by_hand():
    m1 = bipartite_soft_matching(METRIC, 1)
    assert m1.merged.tolist() == [[0]] and m1.into.tolist() == [[1]]   # tie 1.0/1.0 -> lower A
    assert m1.keep.tolist() == [[False, True, True, True, True, True]]
    m3 = bipartite_soft_matching(METRIC, 3)
    assert m3.merged.tolist() == [[0, 2, 4]] and m3.into.tolist() == [[1, 3, 1]]
    assert bipartite_soft_matching(METRIC, 10).r == 3                 # capped at T // 2
    assert bipartite_soft_matching(METRIC, 0).keep.all()


def test_protected_tokens():
    cls = bipartite_soft_matching(METRIC, 5, class_token=True)      # cap (6 - 1) // 2 = 2
    assert cls.merged.tolist() == [[2, 4]] and cls.into.tolist() == [[3, 1]]
    dist = bipartite_soft_matching(METRIC, 5, distill_token=True)   # B1 receives nothing
    assert dist.merged.tolist() == [[2, 4]] and dist.into.tolist() == [[3, 3]]
    both = bipartite_soft_matching(METRIC, 5, class_token=True, distill_token=True)  # cap 2
    assert both.r == 2 and 0 not in both.merged.tolist()[0] and 1 not in both.into.tolist()[0]


def test_merge_wavg_by_hand_keeps_sequence_order_and_sizes():
    out, size = merge_wavg(X, bipartite_soft_matching(METRIC, 3))
    assert torch.allclose(out[0, :, 0], torch.tensor([80.0 / 3, 35.0, 60.0]))   # positions 1, 3, 5
    assert size.tolist() == [[3.0, 2.0, 1.0]]
    prior = torch.tensor([[1.0, 2.0, 1.0, 1.0, 3.0, 1.0]])
    out, size = merge_wavg(X, bipartite_soft_matching(METRIC, 3), prior)
    assert torch.allclose(out[0, :, 0], torch.tensor([200.0 / 6, 35.0, 60.0]))
    assert size.tolist() == [[6.0, 2.0, 1.0]] and float(size.sum()) == float(prior.sum())
    with pytest.raises(ValueError, match="size must be"):
        merge_wavg(X, bipartite_soft_matching(METRIC, 1), prior[:, :5])


def _loop_reference(x, metric, r, size):
    """Sequential ToMe step: every A token's best B, the r best edges, weighted sums, one token at a time."""
    T = x.shape[0]
    a, b = list(range(0, T, 2)), list(range(1, T, 2))
    cos = lambda i, j: float(torch.dot(metric[i], metric[j]) / (metric[i].norm() * metric[j].norm()))  # noqa: E731
    best = [max(b, key=lambda j: (cos(i, j), -j)) for i in a]
    edges = sorted(range(len(a)), key=lambda k: (-cos(a[k], best[k]), k))[:r]
    tot = {j: x[j] * size[j] for j in range(T)}
    sz = {j: float(size[j]) for j in range(T)}
    for k in edges:
        tot[best[k]] = tot[best[k]] + x[a[k]] * size[a[k]]
        sz[best[k]] += float(size[a[k]])
    gone = {a[k] for k in edges}
    keep = [j for j in range(T) if j not in gone]
    return torch.stack([tot[j] / sz[j] for j in keep]), torch.tensor([sz[j] for j in keep])


@pytest.mark.parametrize("T,r", [(9, 3), (12, 6), (7, 1)])
def test_merge_matches_loop_reference(T, r):
    g = torch.Generator().manual_seed(T)
    metric, x = torch.randn(2, T, 5, generator=g), torch.randn(2, T, 3, generator=g)
    size = torch.randint(1, 4, (2, T), generator=g).float()
    out, sz = merge_wavg(x, bipartite_soft_matching(metric, r), size)
    for i in range(2):
        ref, ref_sz = _loop_reference(x[i], metric[i], r, size[i])
        assert torch.allclose(out[i], ref, atol=1e-5) and torch.equal(sz[i], ref_sz)


def test_proportional_bias():
    bias = proportional_bias(torch.tensor([[1.0, 2.0, 4.0]]))
    assert bias.shape == (1, 1, 1, 3)
    assert torch.allclose(bias.flatten(), torch.tensor([0.0, math.log(2), math.log(4)]))
    with pytest.raises(ValueError, match="positive"):
        proportional_bias(torch.tensor([[1.0, 0.0]]))


def test_schedules_by_hand():
    assert r_schedule(16, 3, 5) == (5, 5, 3)                    # block 2 capped at 6 // 2
    assert r_schedule(16, 3, 5, start=1) == (0, 5, 5)
    assert tokens_per_block(16, (5, 5, 3)) == (16, 11, 6, 3)
    # even shares (5, 5, ...) would leave 3 > 2 after the caps: the first blocks take more
    assert retention_r_schedule(16, 2, 3) == (8, 4, 2)
    assert retention_r_schedule(16, 10, 3) == (2, 2, 2)
    assert retention_r_schedule(16, 16, 3) == (0, 0, 0)
    with pytest.raises(ValueError, match="cannot merge 16 tokens down to 1"):
        retention_r_schedule(16, 1, 3)
    with pytest.raises(ValueError, match="start"):
        r_schedule(16, 3, 1, start=3)
    with pytest.raises(ValueError, match="target"):
        retention_r_schedule(16, 0, 3)


def test_retention_schedule_on_siglip_geometry():
    """729 patches -> 98 tokens (50 % of the 14 x 14 pooled grid) over LLaVA-OV's 26 tower blocks."""
    sched = retention_r_schedule(729, 98, 26)
    assert sum(sched) == 631 and max(sched) - min(sched) <= 1
    counts = tokens_per_block(729, sched)
    assert counts[-1] == 98 and all(r <= n // 2 for r, n in zip(sched, counts))
