"""Generators, cosine similarities and top-k selection."""
import pytest
import torch

from methods.primitives import (
    consecutive_cosine,
    cosine_matrix,
    expanded_candidates,
    make_generator,
    topk_indices,
)


def test_make_generator_is_deterministic_per_seed():
    a = torch.rand(5, generator=make_generator(3))
    b = torch.rand(5, generator=make_generator(3))
    c = torch.rand(5, generator=make_generator(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="seed"):
        make_generator(1.5)


def test_consecutive_cosine_by_hand():
    x = torch.tensor([[[1.0, 0.0], [1.0, 1.0]],
                      [[0.0, 2.0], [2.0, 2.0]],
                      [[0.0, -1.0], [1.0, 0.0]]])
    s = consecutive_cosine(x)
    assert s.shape == (2, 2)
    assert torch.allclose(s, torch.tensor([[0.0, 1.0], [-1.0, 2 ** -0.5]]), atol=1e-6)
    ref = torch.nn.functional.cosine_similarity(x[:-1], x[1:], dim=-1)
    assert torch.allclose(s, ref, atol=1e-6)


def test_cosine_matrix():
    a = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    b = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
    expected = torch.tensor([[1.0, 2 ** -0.5, 0.0], [0.0, 2 ** -0.5, -1.0]])
    assert torch.allclose(cosine_matrix(a, b), expected, atol=1e-6)


def test_topk_indices_sorted_and_unsorted():
    s = torch.tensor([[0.1, 0.9, 0.3, 0.8], [4.0, 3.0, 2.0, 1.0]])
    assert topk_indices(s, 2).tolist() == [[1, 3], [0, 1]]
    assert topk_indices(s, 2, sort_indices=False).tolist() == [[1, 3], [0, 1]]
    assert topk_indices(torch.tensor([1.0, 5.0, 3.0]), 2, sort_indices=False).tolist() == [1, 2]
    assert topk_indices(torch.tensor([1.0, 5.0, 3.0]), 2).tolist() == [1, 2]
    assert topk_indices(torch.tensor([5.0, 1.0, 3.0]), 2, sort_indices=False).tolist() == [0, 2]
    assert topk_indices(torch.tensor([3.0, 1.0, 5.0]), 2, sort_indices=False).tolist() == [2, 0]
    with pytest.raises(ValueError, match="k must be"):
        topk_indices(s, 5)


def test_expanded_candidates_floor_alpha_k():
    s = torch.arange(10.0)
    assert expanded_candidates(s, 3, 1.5).tolist() == [6, 7, 8, 9]  # floor(4.5) = 4
    assert expanded_candidates(s, 8, 1.5).tolist() == list(range(10))  # capped at N
    with pytest.raises(ValueError, match="alpha"):
        expanded_candidates(s, 3, 0.5)
