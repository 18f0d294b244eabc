"""A straightforward reference implementation of the *released* Tango pre-LLM step.

Written from the behaviour of xjtupanda/Tango's ``tango_pruner`` / ``tango_token_merger`` /
``tango_compressor`` / ``dpc_knn`` / ``perform_cluster_merging`` (VLMEvalKit/.../pre_llm_pruning/
tango, commit 610c264), with the same structure and costs: ``torch.cdist`` distance matrices, a
Python loop over clusters in the single-frame / static compressor, the batched masked argmax of the
dynamic path, the static mask at the merger's default tau 0.8 (behaviour A) and merged rows written
to anchors in DPC-score order (behaviour B). It is not used by the method: ``methods.tango`` is
the implementation; this file checks it (tests) and is the baseline of the speed benchmark
(``replicate.microbench.tango``). The density noise is drawn from an explicit generator in the official
call order, so both produce the same output for the same seed.
"""
from __future__ import annotations

import math

import torch

from methods.primitives import make_generator, rope_sections, temporal_segments

__all__ = ["released_reference"]


def _st_rope(x: torch.Tensor, t: torch.Tensor, grid, sections, base_time: float, base_space: float):
    """ST-RoPE computed the plain way: angles for every (frame, token, pair)."""
    F, N, D = x.shape
    xn = torch.nn.functional.normalize(x.float(), dim=-1)
    rows = (torch.arange(N) // grid[1]).float().expand(F, N)
    cols = (torch.arange(N) % grid[1]).float().expand(F, N)
    pos = [t.float()[:, None].expand(F, N), rows, cols]
    out, start = [], 0
    for d, p, base in zip(sections, pos, (base_time, base_space, base_space)):
        part = xn[..., start:start + d]
        half = d // 2
        ang = p[..., None] * base ** (-torch.arange(half, dtype=torch.float32) * 2.0 / d)
        c, s = torch.cos(ang), torch.sin(ang)
        out.append(torch.cat([part[..., :half] * c - part[..., half:] * s,
                              part[..., half:] * c + part[..., :half] * s], -1))
        start += d
    return torch.cat(out, -1)


def _dpc_knn(x: torch.Tensor, n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """(B, L, D) -> (B, n) centre indices in descending score order (torch.topk's order)."""
    dist = torch.cdist(x.float(), x.float())
    knn = torch.topk(dist, min(k + 1, x.shape[1]), dim=-1, largest=False).values[..., 1:]
    rho = torch.exp(-(knn ** 2).mean(-1))
    rho = rho + torch.rand(rho.shape, generator=gen) * 1e-6
    higher = rho.unsqueeze(1) > rho.unsqueeze(2)
    dmax = dist.flatten(1).max(1).values[:, None, None]
    delta = torch.where(higher, dist, dmax).min(-1).values
    return torch.topk(rho * delta, n, dim=-1).indices


def _merge(src, src_rope, target, target_rope, beta):
    assign = torch.cdist(src_rope.float(), target_rope.float()).argmin(-1)
    sums = torch.zeros_like(target).index_add_(0, assign, src)
    counts = torch.zeros(target.shape[0], 1).index_add_(0, assign, torch.ones(src.shape[0], 1))
    w = (1.0 / counts.clamp(min=1)).clamp(min=beta)
    return w * target + (1 - w) * sums / counts.clamp(min=1)


def _context(feats, rope, keep_mask, budget, cfg, gen):
    """Context merge of the tokens where keep_mask is True (flat, local): (indices, new rows)."""
    idx = torch.nonzero(keep_mask).flatten()
    if budget <= 0 or idx.numel() == 0:
        return idx[:0], feats[:0]
    if idx.numel() <= budget:
        return idx, feats[idx]
    by_score = _dpc_knn(rope[idx][None], budget, cfg.k, gen)[0]
    is_anchor = torch.zeros(idx.numel(), dtype=torch.bool)
    is_anchor[by_score] = True                       # ascending position order
    merged = _merge(feats[idx], rope[idx], feats[idx][is_anchor], rope[idx][is_anchor], cfg.beta)
    return idx[by_score], merged                     # row i -> i-th highest score (behaviour B)


def _compressor(feats, rope, sal, r, cfg, gen):
    """Single frame / static part: (L, D) -> {local index: row}."""
    L = feats.shape[0]
    retain = max(1, math.ceil(L * r)) if L > 0 else 0
    salient = int(retain * (1.0 - cfg.context_ratio))
    out, free = {}, torch.ones(L, dtype=torch.bool)
    if salient > 0:
        n_cand = min(int(cfg.alpha * salient), L)
        kk = min(salient, n_cand)
        cand = torch.topk(sal, n_cand).indices
        if n_cand <= kk or n_cand <= 1:
            chosen = cand
        else:
            anchors = _dpc_knn(rope[cand][None], kk, cfg.k, gen)[0]
            assign = torch.cdist(rope[cand], rope[cand][anchors]).argmin(-1)
            picks = []
            for i in range(kk):  # the official per-cluster loop
                members = torch.nonzero(assign == i).flatten()
                picks.append(members[sal[cand][members].argmax()] if members.numel() else anchors[i])
            chosen = cand[torch.stack(picks)]
        for i in chosen.tolist():
            out[i] = feats[i]
        free[chosen] = False
    for i, row in zip(*_context(feats, rope, free, retain - salient, cfg, gen)):
        out[int(i)] = row
    return out


def _dynamic(feats, rope, sal, r, cfg, gen):
    """Dynamic part (Nf, Ld, D) -> {local flat index: row}."""
    Nf, Ld, D = feats.shape
    raw = math.ceil(Ld * r)
    salient = int(raw * (1.0 - cfg.context_ratio))
    kk = min(salient, Ld)
    out, free = {}, torch.ones(Nf, Ld, dtype=torch.bool)
    if kk > 0:
        n_cand = min(int(cfg.alpha * kk), Ld)
        cand = torch.topk(sal, n_cand, dim=1).indices
        if n_cand <= kk or n_cand <= 1:
            chosen = cand
        else:
            c_rope = torch.gather(rope, 1, cand[..., None].expand(-1, -1, D))
            c_sal = torch.gather(sal, 1, cand)
            anchors = _dpc_knn(c_rope, kk, cfg.k, gen)
            a_rope = torch.gather(c_rope, 1, anchors[..., None].expand(-1, -1, D))
            assign = torch.cdist(c_rope, a_rope).argmin(-1)
            member = assign[..., None] == torch.arange(kk)
            best = c_sal[..., None].masked_fill(~member, torch.finfo(torch.float32).min).argmax(1)
            chosen = torch.gather(cand, 1, torch.where(member.any(1), best, anchors))
        free.scatter_(1, chosen, False)
        for f, i in zip(*torch.nonzero(~free, as_tuple=True)):
            out[int(f) * Ld + int(i)] = feats[f, i]
    ctx_idx, rows = _context(feats.reshape(-1, D), rope.reshape(-1, D), free.flatten(),
                             (raw - salient) * Nf, cfg, gen)
    for i, row in zip(ctx_idx.tolist(), rows):
        out[i] = row
    return out


def _segment(X, rope, sal, r, cfg, gen, static_tau):
    """One segment (Nf, N, D) -> {segment-local flat index: row}."""
    Nf, N, D = X.shape
    if Nf == 1:
        return _compressor(X[0].float(), rope[0], sal[0], r, cfg, gen)
    xn = torch.nn.functional.normalize(X.float(), dim=-1)
    static = ((xn[:-1] * xn[1:]).sum(-1) > static_tau).all(0)
    n_static = int(static.sum())
    r_seg = min(r / ((Nf * N - (Nf - 1) * n_static) / (Nf * N)), 1.0)
    spos, dpos = torch.nonzero(static).flatten(), torch.nonzero(~static).flatten()
    out = {int(spos[i]): row for i, row in _compressor(
        X[:, spos].float().mean(0), rope[0, spos], sal[:, spos].mean(0), r_seg, cfg, gen).items()}
    if dpos.numel():
        dyn = _dynamic(X[:, dpos].float(), rope[:, dpos], sal[:, dpos], r_seg, cfg, gen)
        for i, row in dyn.items():
            out[(i // dpos.numel()) * N + int(dpos[i % dpos.numel()])] = row
    return out


def released_reference(X: torch.Tensor, saliency: torch.Tensor, times: torch.Tensor,
                       grid: tuple[int, int], cfg, sinks=()) -> tuple[torch.Tensor, torch.Tensor]:
    """The released Tango pre-LLM step on X (F, N, D): (sorted kept flat indices, their rows fp32).
    ``cfg`` is a ``methods.tango.TangoConfig`` (retention, tau, k, alpha, beta, context_ratio,
    rope settings, seed); segmentation is HoliTom's DP at the configured tau."""
    F, N, D = X.shape
    sal = saliency.float().clone()
    if sinks:
        sal[:, list(sinks)] = 0.0
    rope = _st_rope(X, times, grid, rope_sections(D, cfg.rope_sections), cfg.base_time, cfg.base_space)
    xn = torch.nn.functional.normalize(X.float(), dim=-1)
    sim = (xn[:-1] * xn[1:]).sum(-1)
    gen = make_generator(cfg.seed)
    kept: dict[int, torch.Tensor] = {}
    for s, e in temporal_segments(sim, cfg.resolved_tau).segments:
        part = _segment(X[s:e + 1], rope[s:e + 1], sal[s:e + 1], cfg.pre_llm_retention, cfg, gen, 0.8)
        kept.update({s * N + i: row for i, row in part.items()})
    order = sorted(kept)
    return torch.tensor(order, dtype=torch.long), torch.stack([kept[i] for i in order])
