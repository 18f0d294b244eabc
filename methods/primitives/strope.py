"""Tango's spatio-temporal RoPE (ST-RoPE): a locality prior for clustering distances.

Features are L2-normalised in fp32, split into three channel sections for (t, row, col) and each
section is rotated with standard rotate-half RoPE: channel i pairs with i + d/2 and the angle of
pair j is ``pos * base ** (-2j / d)``. Time uses ``base_time`` (10 000) with the frame timestamp in
seconds, rows/columns use ``base_space`` (1 000) with integer grid coordinates (Tango, papers.md
section 1.2). Since every section is a rotation, <R(p) x, R(q) y> depends only on q - p.
"""
from __future__ import annotations

from typing import Sequence

import torch

#: Tango's split for D = 3584 (sums to 3584, each even).
DEFAULT_SECTIONS = (1196, 1194, 1194)


def rope_sections(dim: int, sections: Sequence[int] = DEFAULT_SECTIONS) -> tuple[int, int, int]:
    """Channel sizes (t, h, w) for a feature dimension ``dim``.

    ``sections`` is used as given when it sums to ``dim``. Otherwise (e.g. tiny test models) it is
    rescaled proportionally in units of channel *pairs* (largest remainder, ties to the earlier
    section) so that every size is even and they sum to ``dim``. ``dim`` must be even.
    """
    if len(sections) != 3 or any(int(s) < 0 or int(s) % 2 for s in sections):
        raise ValueError(f"sections must be three even non-negative ints, got {tuple(sections)}")
    if dim % 2:
        raise ValueError(f"ST-RoPE needs an even feature dimension, got D={dim}")
    if sum(sections) == dim:
        return tuple(int(s) for s in sections)  # type: ignore[return-value]
    pairs, total = dim // 2, sum(sections)
    if total == 0:
        raise ValueError("sections must not all be zero")
    exact = [pairs * s / total for s in sections]
    base = [int(e) for e in exact]
    rest = pairs - sum(base)
    order = sorted(range(3), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[:rest]:
        base[i] += 1
    return tuple(2 * b for b in base)  # type: ignore[return-value]


def _rotate(x: torch.Tensor, pos: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate-half RoPE of x (..., d) at positions pos broadcastable to x[..., 0]."""
    d = x.shape[-1]
    if d == 0:
        return x
    half = d // 2
    inv_freq = base ** (-torch.arange(half, dtype=torch.float32, device=x.device) * 2.0 / d)
    ang = pos.unsqueeze(-1).to(torch.float32) * inv_freq
    cos, sin = torch.cos(ang), torch.sin(ang)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def st_rope(x: torch.Tensor, t: torch.Tensor, grid: tuple[int, int],
            sections: Sequence[int] = DEFAULT_SECTIONS, base_time: float = 10000.0,
            base_space: float = 1000.0) -> torch.Tensor:
    """ST-RoPE features: x (F, N, D) with N = h * w, t (F,) timestamps -> (F, N, D) fp32.

    Token n of a frame sits at row n // w, column n % w.
    """
    if x.dim() != 3:
        raise ValueError(f"st_rope expects (F, N, D), got shape {tuple(x.shape)}")
    F, N, D = x.shape
    h, w = grid
    if h * w != N:
        raise ValueError(f"grid {tuple(grid)} has {h * w} cells but x has N={N} tokens per frame")
    if tuple(t.shape) != (F,):
        raise ValueError(f"t must be (F,)=({F},), got {tuple(t.shape)}")
    st, sh, sw = rope_sections(D, sections)
    xn = torch.nn.functional.normalize(x.float(), dim=-1)
    n = torch.arange(N, device=x.device)
    rows, cols = (n // w).float(), (n % w).float()
    out_t = _rotate(xn[..., :st], t.to(device=x.device, dtype=torch.float32).unsqueeze(-1).expand(F, N), base_time)
    out_h = _rotate(xn[..., st:st + sh], rows.expand(F, N), base_space)
    out_w = _rotate(xn[..., st + sh:], cols.expand(F, N), base_space)
    return torch.cat([out_t, out_h, out_w], dim=-1)
