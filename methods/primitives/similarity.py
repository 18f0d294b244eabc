"""Cosine similarities used by temporal segmentation and merging, and the CPU cache-blocking switch."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

#: On CPU two primitives split their work into cache-sized blocks (``consecutive_cosine`` a frame
#: at a time, DPC-KNN's Gram matrix in block rows): same values, several times fewer memory passes
#: on a CPU, but more (smaller) kernels. On other devices, or inside ``cache_blocking(False)``, they
#: run as single batched kernels. The op-count benchmark counts the unblocked (GPU) path.
_CPU_BLOCKING = [True]


@contextlib.contextmanager
def _switched(switch: list, enabled: bool) -> Iterator[None]:
    """``switch[0]`` set to ``enabled`` inside the block, restored after it."""
    old = switch[0]
    switch[0] = bool(enabled)
    try:
        yield
    finally:
        switch[0] = old


def cache_blocking(enabled: bool) -> contextlib.AbstractContextManager:
    """Turn the CPU cache blocking on or off inside the block (results are the same either way up
    to rounding of the Gram matrix's symmetrisation)."""
    return _switched(_CPU_BLOCKING, enabled)


def cpu_blocked(t: torch.Tensor) -> bool:
    """Whether work on ``t`` should be split into cache-sized blocks (a CPU tensor, blocking on)."""
    return _CPU_BLOCKING[0] and t.device.type == "cpu"


def _onednn_linear():
    """oneDNN's fp32 inner product (``x @ w^T``) as PyTorch's CPU build ships it, or None."""
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(torch.ops.mkldnn, "_linear_pointwise", None)


_ONEDNN_LINEAR = _onednn_linear()
_CPU_ONEDNN = [True]


def onednn_gemm(enabled: bool) -> contextlib.AbstractContextManager:
    """Let ``matmul_nt`` use oneDNN on a CPU, or not, inside the block. Off, every product is
    ``torch.matmul``'s (MKL's rounding, as before oneDNN was used): the same outputs up to ties
    that the last bits of a distance decide."""
    return _switched(_CPU_ONEDNN, enabled)


def matmul_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b^T`` for fp32 a (..., M, D) and b (..., K, D) with the same leading shape.

    On a blocked CPU tensor (``cpu_blocked``) it runs oneDNN's inner product, one set at a time,
    instead of ``torch.matmul``, which calls MKL. MKL picks its kernels by CPU vendor
    (pytorch/builder#504): on this project's AMD EPYC (AVX-512, 2 threads) a 2048 x 3584 Gram matrix
    ran at 210 GFLOP/s through matmul and 460 through oneDNN's AVX-512 kernel. The same product rounded in another summation order
    (within fp32 GEMM rounding; x x^T stays exactly symmetric). Elsewhere (GPU, blocking off,
    ``onednn_gemm(False)``, autograd, D = 0, other dtypes) it is ``torch.matmul``."""
    if (_ONEDNN_LINEAR is None or not _CPU_ONEDNN[0] or not cpu_blocked(a) or a.dtype != torch.float32
            or b.dtype != torch.float32 or a.shape[-1] == 0 or a.requires_grad or b.requires_grad):
        return torch.matmul(a, b.transpose(-1, -2))
    if a.dim() == 2:
        return _ONEDNN_LINEAR(a, b, None, "none", [], "")
    out = a.new_empty(*a.shape[:-1], b.shape[-2])
    sets_a, sets_b = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
    for i, out_i in enumerate(out.view(-1, *out.shape[-2:])):
        out_i.copy_(_ONEDNN_LINEAR(sets_a[i], sets_b[i], None, "none", [], ""))
    return out


def consecutive_cosine(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Cosine of the same token position in consecutive frames.

    x: (F, N, D). Returns (F-1, N) fp32 with ``out[t, n] = cos(x[t, n], x[t+1, n])``.
    Computed as dot / (|a| |b|) so no normalised copy of the (F, N, D) tensor is made.
    """
    if x.dim() != 3:
        raise ValueError(f"consecutive_cosine expects (F, N, D), got shape {tuple(x.shape)}")
    F, N, _ = x.shape
    if F < 2:
        return torch.zeros((0, N), dtype=torch.float32, device=x.device)
    if not cpu_blocked(x):  # one pass of batched kernels (same per-element operations)
        xf = x.float()
        norms = torch.linalg.vector_norm(xf, dim=-1).clamp_(min=eps)
        return torch.linalg.vecdot(xf[:-1], xf[1:], dim=-1) / (norms[:-1] * norms[1:])
    # On CPU one frame at a time: its norm and its dot with the previous frame are taken while both
    # frames are cache-hot, a single pass over the (F, N, D) tensor (~2-5x faster on CPU than
    # a batched vecdot plus a separate norm pass); half-precision input is upcast per frame.
    norms = torch.empty((F, N), dtype=torch.float32, device=x.device)
    dots = torch.empty((F - 1, N), dtype=torch.float32, device=x.device)
    prev = None
    for t in range(F):
        cur = x[t].float()
        torch.linalg.vector_norm(cur, dim=-1, out=norms[t])
        if prev is not None:
            dots[t - 1] = torch.linalg.vecdot(prev, cur, dim=-1)
        prev = cur
    norms.clamp_(min=eps)
    return dots / (norms[:-1] * norms[1:])


def cosine_matrix(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Pairwise cosine similarity: a (..., M, D), b (..., K, D) -> (..., M, K) fp32."""
    an = torch.nn.functional.normalize(a.float(), dim=-1, eps=eps)
    bn = torch.nn.functional.normalize(b.float(), dim=-1, eps=eps)
    return an @ bn.transpose(-1, -2)
