"""Density-peak clustering with k nearest neighbours (DPC-KNN), two published variants.

Score of a point = rho * delta where
  rho   = exp(-mean of the squared distances to its k nearest neighbours) + U(0,1) * noise,
  delta = distance to the nearest point of strictly higher rho; the densest point gets the
          largest pairwise distance of the set.
The ``n_centers`` highest scores are the cluster centres, returned sorted ascending so the
original token order is preserved.

Variants (facts from the official code, see docs/sources.md#holitom-dpc-knn, #tango-dpc-knn):
  ``"holitom"``: distances are ``cdist / sqrt(D)``; the k nearest neighbours include the point
      itself (distance 0); ``dpc_knn_centers`` uses ``k = min(K, n_centers)`` because HoliTom's
      ``merge_tokens_by_density`` / ``merge_tokens_by_attention_density`` call it that way.
  ``"tango"``: raw Euclidean distances; the point itself is excluded from its neighbours; k as given.
In both, k is further capped by the number of available neighbours.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

import torch

from .rng import make_generator
from .selection import topk_indices
from .similarity import cpu_blocked, matmul_nt

Variant = Literal["holitom", "tango"]
VARIANTS = ("holitom", "tango")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown DPC-KNN variant {variant!r}; allowed: {list(VARIANTS)}")


#: from this many points on, the distance matrix is built block-triangularly on CPU (see
#: ``_triangular_sq_distances``), in block rows of about GRAM_BLOCK_ROWS points, at least
#: _MIN_GRAM_BLOCKS of them
TRIANGULAR_MIN_POINTS = 192   # through oneDNN, 2 threads, D 3584: 0.8-0.9 of the full product's time from 200 points, slower below 180
GRAM_BLOCK_ROWS = 512
_MIN_GRAM_BLOCKS = 4


def _block_rows(M: int) -> int:
    """Rows per block of an M-point triangular Gram matrix: the work is (blocks + 1) / (2 blocks) of
    the full product's, so large sets get more (but still GEMM-sized) blocks."""
    blocks = max(_MIN_GRAM_BLOCKS, -(-M // GRAM_BLOCK_ROWS))
    return -(-M // blocks)


def _triangular_sq_distances(x: torch.Tensor, sq: torch.Tensor) -> torch.Tensor:
    """Squared distances (..., M, M) of x (..., M, D) fp32 with squared norms ``sq``, built one block
    row at a time: one GEMM computes the block row's upper part (columns from the block's first
    point on), turned into distances while it is in cache and mirrored below the diagonal: at large
    M a little over half the full product's work (9 blocks at M = 4224: 0.56 of it, 0.63 with 4
    blocks), and no (M, M) temporaries. Same values as the whole-matrix expansion of the upper triangle mirrored (an
    entry of a GEMM does not depend on the block it is computed in; the norm sums commute)."""
    M = x.shape[-2]
    d2 = x.new_empty(*x.shape[:-2], M, M)
    b = _block_rows(M)
    for i in range(0, M, b):
        blk = matmul_nt(x[..., i:i + b, :], x[..., i:, :])  # rows i.., cols i..
        blk.mul_(-2.0).add_(sq[..., i:i + b, None] + sq[..., None, i:]).clamp_(min=0.0)
        blk.diagonal(dim1=-2, dim2=-1).zero_()
        d2[..., i:i + b, i:] = blk
        d2[..., i + b:, i:i + b] = blk[..., :, b:].transpose(-1, -2)
    return d2


def _nearest_denser(dist: torch.Tensor, density: torch.Tensor, dmax: torch.Tensor) -> torch.Tensor:
    """delta of DPC-KNN: for each point i the smallest ``dist[b, i, j]`` over the points j strictly
    denser than i, ``dmax`` where there is none. On CPU (``similarity.cache_blocking``) a large set
    is done a block of rows at a time, so the (rows, M) mask and candidate matrix stay in cache
    instead of two (M, M) temporaries; same values (a minimum is exact)."""
    M = dist.shape[-1]
    if M < TRIANGULAR_MIN_POINTS or not cpu_blocked(dist):
        higher = density.unsqueeze(-2) > density.unsqueeze(-1)   # [b, i, j]: j denser than i
        return torch.where(higher, dist, dmax).amin(dim=-1)
    out = dist.new_empty(dist.shape[:-1])
    for i in range(0, M, GRAM_BLOCK_ROWS):
        rows = slice(i, i + GRAM_BLOCK_ROWS)
        higher = density.unsqueeze(-2) > density[..., rows].unsqueeze(-1)
        torch.amin(torch.where(higher, dist[..., rows, :], dmax), dim=-1, out=out[..., rows])
    return out


def pairwise_distances(x: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Euclidean distances (..., M, M) in fp32, symmetric with an exact zero diagonal
    (``squared``: their squares, skipping the square root of the whole matrix).

    Uses the |a|^2 + |b|^2 - 2ab expansion (one Gram matrix) like ``torch.cdist`` does for large
    sets; both terms are exactly symmetric, so the result is too. On CPU (``similarity.cache_blocking``)
    the Gram matrix is oneDNN's (``similarity.matmul_nt``), and for M >= TRIANGULAR_MIN_POINTS only
    its upper block triangle is computed and mirrored.
    """
    xf = x.float()
    sq = torch.linalg.vector_norm(xf, dim=-1).square_()
    if xf.shape[-2] >= TRIANGULAR_MIN_POINTS and cpu_blocked(xf):
        d2 = _triangular_sq_distances(xf, sq)
        return d2 if squared else d2.sqrt_()
    g = matmul_nt(xf, xf)
    d2 = (0.5 * (g + g.transpose(-1, -2))).mul_(-2.0)  # exact symmetry -> deterministic ties
    d2.add_(sq.unsqueeze(-1) + sq.unsqueeze(-2))
    d2.clamp_(min=0.0)
    d2.diagonal(dim1=-2, dim2=-1).zero_()
    return d2 if squared else d2.sqrt_()


def dpc_knn_scores_batched(x: torch.Tensor, k: int, *, variant: Variant,
                           generator: Optional[torch.Generator] = None,
                           noise: float = 1e-6) -> torch.Tensor:
    """rho * delta for each point of each set: x (B, M, D) -> (B, M) fp32."""
    return _scores_and_distances(x, k, variant, generator, noise)[0]


def _scores_and_distances(x: torch.Tensor, k: int, variant: str,
                          generator: Optional[torch.Generator],
                          noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    _check_variant(variant)
    if x.dim() != 3:
        raise ValueError(f"dpc_knn_scores_batched expects (B, M, D), got shape {tuple(x.shape)}")
    if k < 1:
        raise ValueError(f"k (number of neighbours) must be >= 1, got {k}")
    B, M, D = x.shape
    if M == 0:
        return x.new_zeros((B, 0), dtype=torch.float32), x.new_zeros((B, 0, 0), dtype=torch.float32)
    dist = pairwise_distances(x) / math.sqrt(D) if variant == "holitom" else pairwise_distances(x, squared=True)
    return dpc_knn_scores_from_distances(dist, k, variant=variant, generator=generator, noise=noise), dist


def dpc_knn_scores_from_distances(dist: torch.Tensor, k: int, *, variant: Variant,
                                  generator: Optional[torch.Generator] = None,
                                  noise: float = 1e-6) -> torch.Tensor:
    """rho * delta from the variant's distance matrix (B, M, M) (``"holitom"``: Euclidean / sqrt(D);
    ``"tango"``: squared Euclidean, as ``pairwise_distances`` gives them) -> (B, M) fp32. Lets a
    caller take the distances of a subset of points from a larger set's matrix (same entries)."""
    _check_variant(variant)
    if k < 1:
        raise ValueError(f"k (number of neighbours) must be >= 1, got {k}")
    B, M, _ = dist.shape
    if generator is None:
        generator = make_generator(0, dist.device)
    if variant == "holitom":
        kk = min(k, M)
        knn = torch.topk(dist, kk, dim=-1, largest=False).values  # includes self (0)
        density = torch.exp(-(knn * knn).mean(-1))
    else:
        # Squared distances throughout; square roots only of the k-NN values and of delta (sqrt is
        # monotone and correctly rounded, so the scores equal those from the full root matrix).
        kk = min(k, M - 1)
        if kk == 0:
            density = torch.ones((B, M), dtype=torch.float32, device=dist.device)
        else:
            # the exact-zero diagonal is always among the kk + 1 smallest; dropping one zero gives
            # the same values as masking the diagonal out (duplicates keep their zeros)
            knn = torch.topk(dist, kk + 1, dim=-1, largest=False).values[..., 1:].sqrt()
            density = torch.exp(-(knn * knn).mean(-1))
    density = density + torch.rand((B, M), generator=generator, device=dist.device,
                                   dtype=torch.float32) * noise
    delta = _nearest_denser(dist, density, dist.amax(dim=(-2, -1), keepdim=True))
    if variant != "holitom":
        delta = delta.sqrt()
    return density * delta


def dpc_knn_scores(x: torch.Tensor, k: int, *, variant: Variant,
                   generator: Optional[torch.Generator] = None, noise: float = 1e-6) -> torch.Tensor:
    """rho * delta for each of the M points of x (M, D) -> (M,) fp32."""
    if x.dim() != 2:
        raise ValueError(f"dpc_knn_scores expects (M, D), got shape {tuple(x.shape)}")
    return dpc_knn_scores_batched(x.unsqueeze(0), k, variant=variant, generator=generator,
                                  noise=noise)[0]


def dpc_knn_centers_batched(x: torch.Tensor, n_centers: int, k: int, *, variant: Variant,
                            generator: Optional[torch.Generator] = None, noise: float = 1e-6,
                            clip_k_to_centers: Optional[bool] = None,
                            return_distances: bool = False, score_order: bool = False):
    """Indices of ``n_centers`` DPC-KNN centres per set: x (B, M, D) -> LongTensor (B, n_centers),
    each row sorted ascending (with ``score_order``: by descending rho * delta instead, the order
    ``torch.topk`` returns them in the official codes).

    ``clip_k_to_centers`` (default: True for ``"holitom"``, False for ``"tango"``) uses
    ``k = min(k, n_centers)`` as HoliTom's official code does. With ``return_distances`` also
    returns the (B, M, M) fp32 distance matrix of the variant (``"tango"``: squared Euclidean) (for assigning to the centres
    without another matmul); it is None when no scores were needed (n_centers 0).
    """
    _check_variant(variant)
    if x.dim() != 3:
        raise ValueError(f"dpc_knn_centers_batched expects (B, M, D), got shape {tuple(x.shape)}")
    B, M, _ = x.shape
    if not 0 <= n_centers <= M:
        raise ValueError(f"n_centers must be in [0, {M}] (number of points), got {n_centers}")
    if n_centers == 0:
        empty = torch.empty((B, 0), dtype=torch.long, device=x.device)
        return (empty, None) if return_distances else empty
    if clip_k_to_centers is None:
        clip_k_to_centers = variant == "holitom"
    kk = min(k, n_centers) if clip_k_to_centers else k
    scores, dist = _scores_and_distances(x, kk, variant, generator, noise)
    centres = topk_indices(scores, n_centers, sort_indices=not score_order)
    return (centres, dist) if return_distances else centres


def dpc_knn_centers(x: torch.Tensor, n_centers: int, k: int, *, variant: Variant,
                    generator: Optional[torch.Generator] = None, noise: float = 1e-6,
                    clip_k_to_centers: Optional[bool] = None, score_order: bool = False) -> torch.Tensor:
    """Indices of ``n_centers`` DPC-KNN centres of x (M, D): LongTensor (n_centers,) ascending
    (``score_order``: by descending score)."""
    if x.dim() != 2:
        raise ValueError(f"dpc_knn_centers expects (M, D), got shape {tuple(x.shape)}")
    return dpc_knn_centers_batched(x.unsqueeze(0), n_centers, k, variant=variant,
                                   generator=generator, noise=noise,
                                   clip_k_to_centers=clip_k_to_centers, score_order=score_order)[0]
