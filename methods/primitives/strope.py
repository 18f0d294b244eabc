"""Tango's spatio-temporal RoPE (ST-RoPE): a locality prior for clustering distances.

Features are L2-normalised in fp32, split into three channel sections for (t, row, col) and each
section is rotated with standard rotate-half RoPE: channel i pairs with i + d/2 and the angle of
pair j is ``pos * base ** (-2j / d)``. Time uses ``base_time`` (10 000) with the frame timestamp in
seconds, rows/columns use ``base_space`` (1 000) with integer grid coordinates (Tango,
docs/sources.md#tango-st-rope). Since every section is a rotation, <R(p) x, R(q) y> depends only on
q - p.

``st_rope`` rotates a whole video; ``st_rope_rows_and_cosines`` gives a reduction that reads only
some tokens' rotations (Tango: its selection candidates and context pools) rows computed when read
on a CPU, the same values bitwise.
"""
from __future__ import annotations

import functools
from typing import Optional, Sequence

import torch

from .padded import rows_at
from .similarity import cpu_blocked

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


@functools.lru_cache(maxsize=32)
def _inv_freq(d: int, base: float, device: torch.device) -> torch.Tensor:
    """base ** (-2j / d) for the d // 2 pairs of a section (cached: it depends on shapes only)."""
    with torch.inference_mode(False):
        return base ** (-torch.arange(d // 2, dtype=torch.float32, device=device) * 2.0 / d)


@functools.lru_cache(maxsize=32)
def _grid_angles(h: int, w: int, sh: int, sw: int, base: float, device: torch.device):
    """cos / sin tables of the row and column sections, which depend only on shapes (cached; built
    as ordinary tensors even under inference mode, so any later caller may use them)."""
    with torch.inference_mode(False):
        return _angles(torch.arange(h, device=device), sh, base) + _angles(torch.arange(w, device=device), sw, base)


def _angles(pos: torch.Tensor, d: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the RoPE angles for the distinct positions pos (P,) -> two (P, d // 2)."""
    ang = pos.to(torch.float32).unsqueeze(-1) * _inv_freq(d, float(base), pos.device)
    return torch.cos(ang), torch.sin(ang)


def _rotate_into(out: torch.Tensor, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    """out = rotate-half RoPE of x (..., d), with cos / sin (..., d // 2) broadcastable to x's halves.
    Same arithmetic as ``cat([x1*c - x2*s, x2*c + x1*s])`` but written in place (no concatenation)."""
    half = x.shape[-1] // 2
    if half == 0:
        return
    x1, x2 = x[..., :half], x[..., half:]
    o1, o2 = out[..., :half], out[..., half:]
    torch.mul(x1, cos, out=o1)
    o1.sub_(x2 * sin)
    torch.mul(x2, cos, out=o2)
    o2.add_(x1 * sin)


def _rotate_in_place(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, at: torch.Tensor,
                     scratch: torch.Tensor) -> None:
    """x (R, d) <- its rotate-half RoPE with the table rows ``cos[at]`` / ``sin[at]``, the arithmetic
    of ``_rotate_into`` (x1*c - x2*s, x2*c + x1*s); the gathered angles and both sine products live
    in ``scratch`` (flat, at least 2 * R * d elements) instead of fresh tensors."""
    half = x.shape[-1] // 2
    if half == 0:
        return
    x1, x2 = x[:, :half], x[:, half:]
    n = x1.numel()
    part = lambda i: scratch[i * n:(i + 1) * n].view(x1.shape)
    c, s = torch.index_select(cos, 0, at, out=part(0)), torch.index_select(sin, 0, at, out=part(1))
    s2, s1 = torch.mul(x2, s, out=part(2)), torch.mul(x1, s, out=part(3))
    x1.mul_(c).sub_(s2)
    x2.mul_(c).add_(s1)


def st_rope(x: torch.Tensor, t: torch.Tensor, grid: tuple[int, int],
            sections: Sequence[int] = DEFAULT_SECTIONS, base_time: float = 10000.0,
            base_space: float = 1000.0, normalized: bool = False) -> torch.Tensor:
    """ST-RoPE features: x (F, N, D) with N = h * w, t (F,) timestamps -> (F, N, D) fp32.

    Token n of a frame sits at row n // w, column n % w. ``normalized``: x is already
    L2-normalised fp32 (the caller shares the normalised copy), so it is not normalised again.
    The angle tables are computed for the distinct positions only (F times, h rows, w columns;
    the row and column tables cached per shape) and broadcast over the video, and each section is
    rotated into one preallocated output: a fixed number of kernels whatever the frame count (on
    CPU, with ``cache_blocking`` on, the same operations a frame at a time, which keeps each frame in
    cache: measured 0.115 s against 0.170 s at 32x196x3584 on 1 thread).
    """
    return _st_rope_pass(x, t, grid, sections, base_time, base_space, normalized, cosines=False)[0]


def st_rope_and_cosines(x: torch.Tensor, t: torch.Tensor, grid: tuple[int, int],
                        sections: Sequence[int] = DEFAULT_SECTIONS, base_time: float = 10000.0,
                        base_space: float = 1000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(``st_rope(x, ...)``, (F-1, N) cosine of each position between consecutive frames) in one
    pass: the video is normalised once and serves both. Bitwise equal to ``st_rope`` of
    ``normalize(x)`` and ``vecdot(xn[:-1], xn[1:])`` (same operations per element,
    in the same order)."""
    return _st_rope_pass(x, t, grid, sections, base_time, base_space, False, cosines=True)


def _tables(x, t, grid, sections, base_time: float, base_space: float):
    """((time width, row width), (cos, sin) of the time (F, st/2), row (h, sh/2) and column
    (w, sw/2) sections) of x (F, N, D) after checking the shapes."""
    if x.dim() != 3:
        raise ValueError(f"st_rope expects (F, N, D), got shape {tuple(x.shape)}")
    F, N, D = x.shape
    h, w = grid
    if h * w != N:
        raise ValueError(f"grid {tuple(grid)} has {h * w} cells but x has N={N} tokens per frame")
    if tuple(t.shape) != (F,):
        raise ValueError(f"t must be (F,)=({F},), got {tuple(t.shape)}")
    st, sh, sw = rope_sections(D, sections)
    dev = x.device
    ct, s_t = _angles(t.to(device=dev), st, base_time)
    return (st, sh), (ct, s_t) + _grid_angles(h, w, sh, sw, float(base_space), dev)


def _st_rope_pass(x, t, grid, sections, base_time: float, base_space: float, normalized: bool,
                  cosines: bool) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(ST-RoPE features, consecutive-frame cosines or None) of the whole video in a fixed number of
    kernels: one normalisation, one batched dot product, two rotations per section with the angle
    tables broadcast over (frame, row, column). Same operations per element as a frame loop."""
    (st, sh), (ct, s_t, ch, s_h, cw, s_w) = _tables(x, t, grid, sections, base_time, base_space)
    F, N, D = x.shape
    h, w = grid
    out = torch.empty((F, N, D), dtype=torch.float32, device=x.device)
    if cpu_blocked(x):  # one frame at a time: its normalised copy is still in cache for the rotation
        return out, _frame_loop(x, out, (ct, s_t, ch, s_h, cw, s_w), (st, sh), grid, normalized, cosines)
    xn = x if normalized else torch.nn.functional.normalize(x.float(), dim=-1)
    sims = torch.linalg.vecdot(xn[:-1], xn[1:], dim=-1) if cosines else None
    xv, ov = xn.reshape(F, h, w, D), out.view(F, h, w, D)
    _rotate_into(ov[..., :st], xv[..., :st], ct[:, None, None], s_t[:, None, None])
    _rotate_into(ov[..., st:st + sh], xv[..., st:st + sh], ch[None, :, None], s_h[None, :, None])
    _rotate_into(ov[..., st + sh:], xv[..., st + sh:], cw[None, None], s_w[None, None])
    return out, sims


def _frame_loop(x, out, tables, widths, grid, normalized: bool, cosines: bool) -> Optional[torch.Tensor]:
    """The CPU path of ``_st_rope_pass`` (``similarity.cache_blocking``): the same operations frame by
    frame, so each frame's normalised copy and temporaries stay in cache. Returns the cosines;
    ``out`` None: the cosines only (no rotation)."""
    F, N, D = x.shape
    (h, w), (st, sh) = grid, widths
    ct, s_t, ch, s_h, cw, s_w = tables
    sims = torch.empty((max(F - 1, 0), N), dtype=torch.float32, device=x.device) if cosines else None
    # two normalised frames and one product buffer, reused frame after frame: fresh per-frame
    # copies of a few MB can cost a page fault per 4 KB page when the allocator returns them to the
    # system between frames (measured 33 ms against 6 ms for the cosines alone at 32x196x3584)
    new = lambda: torch.empty((N, D), dtype=torch.float32, device=x.device)
    frames = None if normalized else (new(), new())
    prod = new() if cosines and F > 1 else None
    prev = None
    for f in range(F):
        xn = x[f] if normalized else torch.nn.functional.normalize(x[f].float(), dim=-1, out=frames[f % 2])
        if sims is not None and prev is not None:   # vecdot's operations: the product, then its sum
            torch.sum(torch.mul(prev, xn, out=prod), dim=-1, out=sims[f - 1])
        prev = xn
        if out is None:
            continue
        xv, ov = xn.reshape(h, w, D), out[f].view(h, w, D)
        _rotate_into(ov[..., :st], xv[..., :st], ct[f], s_t[f])
        _rotate_into(ov[..., st:st + sh], xv[..., st:st + sh], ch[:, None], s_h[:, None])
        _rotate_into(ov[..., st + sh:], xv[..., st + sh:], cw[None], s_w[None])
    return sims


def st_rope_rows_and_cosines(x: torch.Tensor, t: torch.Tensor, grid: tuple[int, int],
                             sections: Sequence[int] = DEFAULT_SECTIONS, base_time: float = 10000.0,
                             base_space: float = 1000.0):
    """(rows, cosines) for a reduction that reads the ST-RoPE features of some of the tokens:
    ``rows[idx]`` (LongTensor of flat indices f * N + n, any shape) gives their rows of
    ``st_rope(x, ...)``, bitwise, and the cosines are ``st_rope_and_cosines``'s.

    On a CPU with cache blocking on, ``rows`` is a :class:`StRopeRows` that rotates only the rows
    it is asked for, so a reduction that reads a fraction of the tokens does not write (and page in)
    the whole (F, N, D) rotation; elsewhere it is that rotation as an (F * N, D) tensor (one batch
    of kernels, then gathers)."""
    if not cpu_blocked(x):
        rope, sims = st_rope_and_cosines(x, t, grid, sections, base_time, base_space)
        return rope.reshape(-1, rope.shape[-1]), sims
    widths, tables = _tables(x, t, grid, sections, base_time, base_space)
    sims = _frame_loop(x, None, tables, widths, grid, False, cosines=True)
    return StRopeRows(x, widths, tables, grid), sims


class StRopeRows:
    """ST-RoPE rows of a video computed when read: ``rows[idx]`` normalises and rotates the tokens
    ``idx`` (flat indices f * N + n) with the angles of their frame, row and column gathered from
    the tables. The same operations per element as ``st_rope``'s, so the same values bitwise (a
    row's norm is reduced the same way in any batch of rows; the products are exact-rounded)."""

    def __init__(self, x: torch.Tensor, widths, tables, grid):
        F, N, D = x.shape
        self.x2, self.N, self.w, self.widths, self.tables = x.reshape(F * N, D), N, grid[1], widths, tables

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        flat = idx.reshape(-1)
        x = rows_at(self.x2, flat).float()    # a gathered copy, normalised and rotated in place
        torch.nn.functional.normalize(x, dim=-1, out=x)
        frame = torch.div(flat, self.N, rounding_mode="floor")
        pos = flat - frame * self.N
        row = torch.div(pos, self.w, rounding_mode="floor")
        col = pos - row * self.w
        (st, sh), (ct, s_t, ch, s_h, cw, s_w) = self.widths, self.tables
        scratch = x.new_empty(2 * flat.numel() * max(st, sh, x.shape[-1] - st - sh))
        _rotate_in_place(x[:, :st], ct, s_t, frame, scratch)
        _rotate_in_place(x[:, st:st + sh], ch, s_h, row, scratch)
        _rotate_in_place(x[:, st + sh:], cw, s_w, col, scratch)
        return x.view(*idx.shape, x.shape[-1])
