"""DPC-KNN: hand-computed densities and scores on 1-D points with obvious clumps."""
import math

import pytest
import torch

from methods.primitives import (
    dpc_knn_centers,
    dpc_knn_centers_batched,
    dpc_knn_scores,
    dpc_knn_scores_batched,
    dpc_knn_scores_from_distances,
    make_generator,
    pairwise_distances,
)

# clump A (tight) around 0, clump B (looser) around 5, one outlier at 10
POINTS = torch.tensor([[0.0], [0.1], [-0.1], [5.0], [5.2], [4.8], [10.0]])


def test_pairwise_distances_exact_diagonal_and_symmetric():
    x = torch.randn(30, 16, generator=make_generator(1))
    d = pairwise_distances(x)
    assert torch.equal(d.diagonal(), torch.zeros(30))
    assert torch.equal(d, d.T)
    ref = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    assert torch.allclose(d, ref, atol=1e-4)


def test_tango_scores_match_hand_values():
    # Tango: raw distances, self excluded, k=2.
    rho = torch.exp(-torch.tensor([0.01, 0.025, 0.025, 0.04, 0.1, 0.1, (4.8**2 + 5**2) / 2]))
    # delta: densest (0.0) gets the max pairwise distance 10.1; 5.0's nearest denser point is 0.1
    delta = torch.tensor([10.1, 0.1, 0.1, 4.9, 0.2, 0.2, 4.8])
    s = dpc_knn_scores(POINTS, 2, variant="tango", noise=0.0)
    assert torch.allclose(s, rho * delta, rtol=1e-4, atol=1e-7)
    c = dpc_knn_centers(POINTS, 2, 2, variant="tango")
    assert c.tolist() == [0, 3]  # the middle of each clump


def test_holitom_includes_self_and_scales_by_sqrt_d():
    # k=3 with self: point 0.0 has neighbours {0, 0.1, 0.1} -> mean sq dist 0.02/3
    s = dpc_knn_scores(POINTS, 3, variant="holitom", noise=0.0)
    assert math.isclose(float(s[0]), math.exp(-0.02 / 3) * 10.1, rel_tol=1e-4)
    # duplicating the coordinate into D=4 channels multiplies raw distances by 2 = sqrt(4):
    # the /sqrt(D) scaling makes the scores identical
    s4 = dpc_knn_scores(POINTS.repeat(1, 4), 3, variant="holitom", noise=0.0)
    assert torch.allclose(s, s4, rtol=1e-4)
    # Tango does not rescale: the same duplication changes its scores
    t1 = dpc_knn_scores(POINTS, 3, variant="tango", noise=0.0)
    t4 = dpc_knn_scores(POINTS.repeat(1, 4), 3, variant="tango", noise=0.0)
    assert not torch.allclose(t1, t4, rtol=1e-2)


def test_self_inclusion_is_where_the_variants_differ():
    # HoliTom, k=2: each point of clump A sees itself + one neighbour at 0.1 -> equal densities.
    a = POINTS[:3]
    s_h = dpc_knn_scores(a, 2, variant="holitom", noise=0.0)
    assert torch.allclose(s_h, torch.full((3,), math.exp(-0.005) * 0.2), rtol=1e-4)
    # Tango, k=2: the middle point is strictly densest (rho e^-0.01 vs e^-0.025), delta 0.2 vs 0.1.
    s_t = dpc_knn_scores(a, 2, variant="tango", noise=0.0)
    expected = torch.tensor([math.exp(-0.01) * 0.2, math.exp(-0.025) * 0.1, math.exp(-0.025) * 0.1])
    assert torch.allclose(s_t, expected, rtol=1e-4)


def test_holitom_centers_clip_k_to_number_of_centres():
    # With k = 7 but only 2 centres, the official code uses k = min(7, 2) = 2.
    x = torch.randn(20, 8, generator=make_generator(3))
    g1, g2 = make_generator(5), make_generator(5)
    c_default = dpc_knn_centers(x, 2, 7, variant="holitom", generator=g1)
    s2 = dpc_knn_scores(x, 2, variant="holitom", generator=g2)
    assert c_default.tolist() == sorted(torch.topk(s2, 2).indices.tolist())


def test_centres_sorted_deterministic_and_noise_breaks_ties():
    x = torch.zeros(6, 3)  # all identical: only the noise decides
    c1 = dpc_knn_centers(x, 3, 2, variant="tango", generator=make_generator(0))
    c2 = dpc_knn_centers(x, 3, 2, variant="tango", generator=make_generator(0))
    assert c1.tolist() == c2.tolist() == sorted(c1.tolist())
    assert len(set(c1.tolist())) == 3


def test_batched_equals_per_set():
    x = torch.randn(3, 12, 5, generator=make_generator(7))
    sb = dpc_knn_scores_batched(x, 4, variant="tango", noise=0.0)
    cb = dpc_knn_centers_batched(x, 3, 4, variant="holitom", noise=0.0)
    for b in range(3):
        assert torch.allclose(sb[b], dpc_knn_scores(x[b], 4, variant="tango", noise=0.0), rtol=1e-5)
        assert cb[b].tolist() == dpc_knn_centers(x[b], 3, 4, variant="holitom", noise=0.0).tolist()


def test_edge_sizes_and_errors():
    x = torch.randn(4, 2)
    assert dpc_knn_centers(x, 4, 7, variant="tango").tolist() == [0, 1, 2, 3]
    assert dpc_knn_centers(x, 0, 7, variant="tango").numel() == 0
    assert dpc_knn_scores(x[:1], 7, variant="tango").shape == (1,)
    with pytest.raises(ValueError, match="variant"):
        dpc_knn_scores(x, 2, variant="pruneVid")
    with pytest.raises(ValueError, match="n_centers"):
        dpc_knn_centers(x, 5, 2, variant="tango")
    with pytest.raises(ValueError, match="k"):
        dpc_knn_scores(x, 0, variant="holitom")


def test_scores_from_a_larger_sets_distances():
    """FastVID scores a frame's contextual tokens from the whole frame's distance matrix (issue 26):
    the rows and columns of the subset give the subset's own scores. Hand value: the holitom score of
    point 0.0 among the first six points (outlier 10.0 left out) with k = 3 is exp(-0.02/3) times its
    delta, the largest distance of the subset, 5.2 - (-0.1) = 5.3 (it is the densest point)."""
    keep = torch.tensor([0, 1, 2, 3, 4, 5])
    full = pairwise_distances(POINTS.unsqueeze(0))               # D = 1: / sqrt(1)
    sub = full[:, keep][:, :, keep]
    s = dpc_knn_scores_from_distances(sub, 3, variant="holitom", noise=0.0)
    assert math.isclose(float(s[0, 0]), math.exp(-0.02 / 3) * 5.3, rel_tol=1e-4)
    for variant in ("holitom", "tango"):
        own = dpc_knn_scores_batched(POINTS[keep].unsqueeze(0), 3, variant=variant, noise=0.0)
        dist = full if variant == "holitom" else pairwise_distances(POINTS.unsqueeze(0), squared=True)
        assert torch.equal(dpc_knn_scores_from_distances(dist[:, keep][:, :, keep], 3, variant=variant,
                                                         noise=0.0), own)
    with pytest.raises(ValueError, match="variant"):
        dpc_knn_scores_from_distances(sub, 3, variant="nope")


def _fp64_product_bound(a, b):
    """The product in fp64 and a bound on an fp32 GEMM's rounding: K * eps * |a_i| |b_j|."""
    exact = a.double() @ b.double().transpose(-1, -2)
    scale = torch.linalg.vector_norm(a.double(), dim=-1)[..., :, None] * \
        torch.linalg.vector_norm(b.double(), dim=-1)[..., None, :]
    return exact, a.shape[-1] * torch.finfo(torch.float32).eps * scale


@pytest.mark.parametrize("shape_a, shape_b", [((37, 300), (53, 300)), ((3, 20, 64), (3, 31, 64)),
                                              ((2, 2, 9, 17), (2, 2, 5, 17))])
def test_matmul_nt_is_the_product_on_every_path(shape_a, shape_b):
    from methods.primitives.similarity import cache_blocking, matmul_nt
    g = make_generator(3)
    a, b = torch.randn(*shape_a, generator=g), torch.randn(*shape_b, generator=g)
    exact, bound = _fp64_product_bound(a, b)
    with cache_blocking(True):
        blocked = matmul_nt(a, b)
        strided = matmul_nt(a.transpose(-1, -2).contiguous().transpose(-1, -2), b)  # non-contiguous a
    with cache_blocking(False):
        plain = matmul_nt(a, b)
    assert torch.equal(plain, torch.matmul(a, b.transpose(-1, -2)))
    for out in (blocked, strided):
        assert out.shape == exact.shape and out.dtype == torch.float32
        assert bool(((out.double() - exact).abs() <= bound).all())
    sym = matmul_nt(a, a)
    assert torch.equal(sym, sym.transpose(-1, -2))


def test_matmul_nt_runs_onednn_on_a_blocked_cpu_and_matmul_elsewhere():
    """The CPU path is wired (oneDNN's kernel is what runs), and autograd or blocking off keeps
    torch.matmul: oneDNN's inner product has no backward."""
    from methods.primitives import similarity
    if similarity._ONEDNN_LINEAR is None:
        pytest.skip("this PyTorch build has no oneDNN inner product")
    a = torch.randn(16, 8)

    def ops(fn):
        with torch.profiler.profile() as prof:
            fn()
        return {e.key for e in prof.key_averages()}

    with similarity.cache_blocking(True):
        assert "mkldnn::_linear_pointwise" in ops(lambda: similarity.matmul_nt(a, a))
        leaf = a.clone().requires_grad_(True)
        assert "mkldnn::_linear_pointwise" not in ops(lambda: similarity.matmul_nt(leaf, a))
        similarity.matmul_nt(leaf, a).sum().backward()
        assert torch.allclose(leaf.grad, a.sum(0).expand(16, 8))
        assert torch.equal(similarity.matmul_nt(a.double(), a.double()), a.double() @ a.double().T)
    with similarity.cache_blocking(False):
        assert "mkldnn::_linear_pointwise" not in ops(lambda: similarity.matmul_nt(a, a))
    with similarity.onednn_gemm(False):
        assert "mkldnn::_linear_pointwise" not in ops(lambda: similarity.matmul_nt(a, a))
        assert torch.equal(similarity.matmul_nt(a, a), a @ a.T)
    assert "mkldnn::_linear_pointwise" in ops(lambda: similarity.matmul_nt(a, a))   # restored


@pytest.mark.parametrize("M", [150, 260])
def test_cpu_distances_equal_the_unblocked_ones(M):
    """Below and above TRIANGULAR_MIN_POINTS the CPU distances (oneDNN, block-triangular from 192
    points) are exactly symmetric with a zero diagonal and within fp32 rounding of the batched path's."""
    from methods.primitives.similarity import cache_blocking
    x = torch.randn(2, M, 96, generator=make_generator(5))
    with cache_blocking(True):
        cpu = pairwise_distances(x, squared=True)
    with cache_blocking(False):
        plain = pairwise_distances(x, squared=True)
    assert torch.equal(cpu, cpu.transpose(-1, -2))
    assert torch.equal(cpu.diagonal(dim1=-2, dim2=-1), torch.zeros(2, M))
    sq = torch.linalg.vector_norm(x.double(), dim=-1).square()
    tol = 4 * 96 * torch.finfo(torch.float32).eps * (sq[..., :, None] + sq[..., None, :])
    assert bool(((cpu.double() - plain.double()).abs() <= tol).all())
