"""Seeded video-like token tensors for the reduction benchmarks: static backgrounds, moving objects,
scene cuts at a chosen period.

A reduction's work depends on the content: HoliTom / Tango / PruneVid segment the video and treat
static positions apart, so the same shape costs very different amounts on a still shot and on a
video that cuts every other frame. ``video_tokens(..., cut_every=c)`` builds one shot every ``c``
frames (``None``: one shot for the whole video). In a shot every position holds a background token
plus per-frame noise (consecutive cosine about 0.96, static at the papers' tau 0.65 and 0.8) unless
one of a few objects covers it; objects are rectangles of grid cells with their own features that
move one cell per frame and bounce off the border, so the positions they sweep are dynamic. At a
cut the background and the objects are drawn anew (consecutive cosine about 0).

The signals the methods read are derived from the features, as an adapter's would be: saliency
(``map_head_attn``, ``vit_attn_received``, ``vit_global_query_attn``) is a softmax over the frame
that favours object cells, ``keys`` and ``global_features`` are fixed random projections of the
tokens and of the frame mean.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from methods.types import VideoTokens

__all__ = ["VideoSpec", "INPUTS", "video_tokens"]

#: the three kinds of video every reduction is measured on: name -> shot length (None: no cut)
INPUTS = {"no-cut": None, "cut-8": 8, "cut-2": 2}

BACKGROUND_NOISE = 0.2     # per-frame noise of a background token (consecutive cosine ~0.96)
OBJECT_NOISE = 0.3         # per-frame noise of an object token
OBJECTS_PER_SHOT = 2
OBJECT_SIZE = (2, 4)       # object rectangle side in grid cells (min, max), scaled for small grids
SALIENCY_GAIN = 3.0        # object cells' extra logit in the saliency softmax


@dataclass(frozen=True)
class VideoSpec:
    """Shape of one benchmark video: frames x (h, w) tokens x dim, grid newline policy, key and
    global-feature widths."""

    frames: int
    grid: tuple[int, int]
    dim: int
    newline_policy: str = "one_token"
    key_dim: int = 72
    global_dim: int = 1152


def _bounce(pos: int, vel: int, hi: int) -> tuple[int, int]:
    """Next coordinate in [0, hi] moving by vel, reversing at the border."""
    if not 0 <= pos + vel <= hi:
        vel = -vel
    return min(max(pos + vel, 0), hi), vel


def _shot(frames: int, spec: VideoSpec, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (frames, N, D), object coverage (frames, N) bool) of one shot: a background token
    per position plus per-frame noise, overwritten where an object (a textured rectangle moving one
    cell per frame, bouncing off the border) covers it."""
    h, w = spec.grid
    N, D = h * w, spec.dim
    x = torch.randn(N, D, generator=g).expand(frames, N, D).clone()
    x += BACKGROUND_NOISE * torch.randn(frames, N, D, generator=g)
    x = x.view(frames, h, w, D)
    covered = torch.zeros(frames, h, w, dtype=torch.bool)
    scale = min(h, w) / 14.0
    lo, hi = (max(1, round(s * scale)) for s in OBJECT_SIZE)
    for _ in range(OBJECTS_PER_SHOT):
        sh, sw = (min(int(torch.randint(lo, hi + 1, (1,), generator=g)), side) for side in (h, w))
        y, xx = int(torch.randint(0, h - sh + 1, (1,), generator=g)), int(torch.randint(0, w - sw + 1, (1,), generator=g))
        vy, vx = (1 if int(v) else -1 for v in torch.randint(0, 2, (2,), generator=g))
        texture = torch.randn(D, generator=g) + 0.5 * torch.randn(sh, sw, D, generator=g)
        for f in range(frames):
            x[f, y:y + sh, xx:xx + sw] = texture + OBJECT_NOISE * torch.randn(sh, sw, D, generator=g)
            covered[f, y:y + sh, xx:xx + sw] = True
            y, vy = _bounce(y, vy, h - sh)
            xx, vx = _bounce(xx, vx, w - sw)
    return x.view(frames, N, D), covered.view(frames, N)


def video_tokens(spec: VideoSpec, cut_every: Optional[int] = None, seed: int = 0) -> VideoTokens:
    """A seeded video-like ``VideoTokens`` of ``spec``'s shape with a cut every ``cut_every`` frames
    (None: one shot). Same seed and arguments, same tensors."""
    if cut_every is not None and cut_every < 1:
        raise ValueError(f"cut_every must be None or >= 1, got {cut_every!r}")
    g = torch.Generator().manual_seed(seed)
    F, (h, w) = spec.frames, spec.grid
    shot = F if cut_every is None else cut_every
    parts, cover = [], []
    for s in range(0, F, shot):
        x, c = _shot(min(shot, F - s), spec, g)
        parts.append(x)
        cover.append(c)
    X, covered = torch.cat(parts), torch.cat(cover)
    logits = torch.randn(F, h * w, generator=g) + SALIENCY_GAIN * covered.float()
    sal = torch.softmax(logits, -1)
    key_proj = torch.randn(spec.dim, spec.key_dim, generator=g) / math.sqrt(spec.dim)
    glob_proj = torch.randn(spec.dim, spec.global_dim, generator=g) / math.sqrt(spec.dim)
    return VideoTokens(
        features=X, grid=spec.grid, timestamps=torch.arange(F, dtype=torch.float32) * 0.5,
        saliency={"map_head_attn": sal, "vit_attn_received": torch.softmax(0.8 * logits, -1),
                  "vit_global_query_attn": sal},
        global_features=X.mean(1) @ glob_proj, keys=X @ key_proj, newline_policy=spec.newline_policy)
