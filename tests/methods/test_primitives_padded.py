"""Padded batches (methods.primitives.padded) give every set what the unpadded primitives give it.

The unpadded DPC-KNN (``dpc_knn_scores_batched``) is the implementation the batched reductions
replaced; each set of a padded batch must score as it does alone, with the same noise: equal up to
the rounding of the Gram matrix (BLAS may order a dot product's sum differently for another matrix
shape), so the same points rank first."""
from __future__ import annotations

import pytest
import torch

from methods.primitives import dpc_knn_scores_batched, make_generator
from methods.primitives.padded import (ascending_true_positions, dpc_knn_padded, first_n, noise_stream,
                                       padded_noise, split_plan, upload)

SIZES = [9, 3, 14, 1, 8]   # 1 point, fewer than k + 1 points, and more


def _sets(D=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(m, D, generator=g) for m in SIZES]


def _padded(sets):
    M = max(s.shape[0] for s in sets)
    x = torch.randn(len(sets), M, sets[0].shape[1])   # junk in the padding: it must not matter
    for b, s in enumerate(sets):
        x[b, :s.shape[0]] = s
    n = torch.tensor([s.shape[0] for s in sets])
    return x, first_n(n, M), n


@pytest.mark.parametrize("variant", ["tango", "holitom"])
@pytest.mark.parametrize("k", [1, 3, 7])
def test_padded_scores_equal_each_set_alone(variant, k):
    sets = _sets()
    x, valid, n = _padded(sets)
    stream = noise_stream(sum(SIZES), make_generator(5), "cpu")
    offsets = torch.tensor([sum(SIZES[:b]) for b in range(len(SIZES))])
    idx = torch.where(valid, offsets.unsqueeze(1) + torch.arange(x.shape[1]), -1)
    scores, _ = dpc_knn_padded(x, valid, k, variant=variant, noise=padded_noise(stream, idx), n_valid=n)
    gen = make_generator(5)   # the per-set calls draw the same stream in order
    for b, s in enumerate(sets):
        alone = dpc_knn_scores_batched(s[None], k, variant=variant, generator=gen)[0]
        got = scores[b, :s.shape[0]]
        assert torch.allclose(got, alone, rtol=1e-5, atol=1e-9)
        assert torch.equal(torch.argsort(got, descending=True), torch.argsort(alone, descending=True))
        assert torch.isinf(scores[b, s.shape[0]:]).all()


def test_per_set_k_clip_equals_each_set_alone():
    sets = _sets(seed=1)
    x, valid, n = _padded(sets)
    k_set = torch.tensor([1, 2, 7, 1, 3])
    scores, _ = dpc_knn_padded(x, valid, 7, variant="holitom", noise=torch.zeros(valid.shape), n_valid=n,
                               k_per_set=k_set)
    for b, s in enumerate(sets):
        alone = dpc_knn_scores_batched(s[None], int(k_set[b]), variant="holitom", noise=0.0)[0]
        assert torch.allclose(scores[b, :s.shape[0]], alone, rtol=1e-5, atol=1e-9)


def test_layout_helpers():
    mask = torch.tensor([[False, True, False, True], [True, True, False, False]])
    assert ascending_true_positions(mask, 2).tolist() == [[1, 3], [0, 1]]
    assert first_n(torch.tensor([0, 2]), 3).tolist() == [[False, False, False], [True, True, False]]
    plan = split_plan(upload(torch.arange(7), "cpu"), {"a": 3, "b": (2, 2)})
    assert plan["a"].tolist() == [0, 1, 2] and plan["b"].tolist() == [[3, 4], [5, 6]]
    with pytest.raises(ValueError, match="layout"):
        split_plan(torch.arange(5), {"a": 3})
    s = noise_stream(3, make_generator(0), "cpu")
    assert s.shape == (4,) and s[-1] == 0 and padded_noise(s, torch.tensor([-1, 0]))[0] == 0


def test_set_chunks_cover_every_set_once_within_the_budget():
    from methods.primitives.padded import set_chunks
    assert set_chunks(5, 10, budget=25) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert set_chunks(3, 100, budget=10) == [slice(0, 1), slice(1, 2), slice(2, 3)]   # one set each at least
    assert set_chunks(0, 10, budget=25) == []


def test_size_chunks_pad_to_the_largest_within_budget_and_waste():
    from methods.primitives.padded import size_chunks
    sizes = {0: 2, 1: 9, 2: 10, 3: 3, 4: 10}
    # largest first (ties in dict order); 10 units of 1 byte: at most 2 sets of width 10 per chunk
    assert size_chunks(sizes, 1, budget=20) == [[2, 4], [1, 3], [0]]
    # waste 1.2: the 9-set joins the two 10-sets (3 x 10 = 30 <= 1.2 x 29), the 3-set does not
    # (40 > 1.2 x 32) and starts a 3-wide chunk, which the 2-set joins (2 x 3 = 6 <= 1.2 x 5)
    assert size_chunks(sizes, 1, budget=1000, waste=1.2) == [[2, 4, 1], [3, 0]]
    assert size_chunks(sizes, 1, budget=1000) == [[2, 4, 1, 3, 0]]           # no waste bound
    assert size_chunks(sizes, 1, budget=1) == [[2], [4], [1], [3], [0]]      # one set each at least
    assert size_chunks({}, 1) == []
