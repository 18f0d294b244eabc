"""Tango's pre-LLM step as a fixed number of batched kernels (the algorithm is ``methods.tango``'s).

Tango works on *parts*: a single-frame segment, the static positions of a multi-frame segment (one
row of their frame means) and its dynamic positions (one row per frame). Every row gets a diverse
salient selection; every part merges its remaining tokens into anchors. Instead of a Python loop
over segments and parts, one host-side :class:`TangoPlan` (built from the segmentation, the only
data the host must read) lays all rows side by side in a padded (rows, N) layout and all merge
pools in a few padded buckets of similar size; the device then runs one selection for every row
and one DPC-KNN merge per bucket. The plan goes to the device in a single non-blocking copy.

The tie-breaking noise of every DPC-KNN call is drawn from the generator in one piece and handed
to each set at the offset the per-set calls would have reached (CPU generators draw the same
stream in one call or many), so the kept positions are those of the per-set implementation; the
merge sums are ``index_add`` sums instead of a one-hot GEMM (features equal to within rounding).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from methods.primitives.segmentation import rescaled_retention
from methods.primitives.similarity import cpu_blocked
from methods.primitives.padded import (ascending_true_positions, cpu_chunks, dpc_knn_padded, first_n, noise_stream,
                                       padded_noise, rows_at, size_chunks, split_plan, take, upload)

__all__ = ["SINGLE", "STATIC", "DYNAMIC", "salient_split", "TangoPlan", "select_padded", "merge_padded",
           "run_plan"]

SINGLE, STATIC, DYNAMIC = 0, 1, 2
DENSITY_NOISE = 1e-6          # dpc_knn's default tie-breaking scale
#: A merge bucket may pad its sets' pairwise work by at most BUCKET_WASTE, or by at most BUCKET_SLACK
#: point pairs: tight on a CPU (padding costs GEMM time there), loose elsewhere (a GPU runs the
#: padding in microseconds, a further batch of kernels costs more). Keyed by cache blocking.
BUCKET_WASTE = {True: 1.3, False: 2.0}
BUCKET_SLACK = {True: 1 << 16, False: 1 << 20}
#: On a CPU the selection runs rows of similar candidate counts together: a group pads its rows'
#: candidates (and their gathered RoPE rows) by at most this factor. A segment's static row has
#: 4-5x the candidates of its frame rows, and one padded batch of both costs a chunk per few rows.
SELECT_WASTE = 1.5
#: The CPU path's batches of pools and rows gather about this much: larger than the shared
#: ``padded.CPU_CHUNK_BYTES`` because Tango's pools are few and wide (one 160-point pool is 4.6 MB
#: of features and RoPE rows); measured 1.10-1.25x faster at 16 MB than at 4 MB under glibc's default
#: allocator, even with freed memory kept (32 x 196 x 3584, r = 0.10, three inputs).
CHUNK_BYTES = 16 << 20


def salient_split(raw: int, context_ratio: float, floor: bool) -> tuple[int, int]:
    """(salient, context) of a per-frame budget ``raw``: salient = int(raw * (1 - context_ratio))
    as the official code truncates; with ``floor`` a budget >= 1 keeps at least one salient token
    (the truncation gives 0 at raw = 1 with context_ratio 0.4)."""
    salient = int(raw * (1.0 - context_ratio))
    if floor and raw >= 1 and salient == 0:
        salient = 1
    return salient, raw - salient


# --------------------------------------------------------------------------------------------
# Padded selection and merge (one call per batch of rows / pools)
# --------------------------------------------------------------------------------------------

def _nearest_anchor(dist: torch.Tensor, anchor: torch.Tensor, anchor_ok: torch.Tensor) -> torch.Tensor:
    """Nearest valid anchor of every point, anchors in their own cluster (ties: lowest anchor).
    dist (B, M, M), anchor (B, A) point indices ascending, padding = M."""
    B, M, _ = dist.shape
    A = anchor.shape[1]
    cols = torch.gather(dist, 2, anchor.clamp(max=M - 1).unsqueeze(1).expand(B, M, A))
    assign = cols.masked_fill(~anchor_ok.unsqueeze(1), float("inf")).argmin(-1)
    own = torch.arange(A, device=dist.device).expand(B, A)
    ext = torch.cat([assign, assign.new_zeros(B, 1)], 1)          # column M absorbs padded anchors
    return ext.scatter(1, anchor, own)[:, :M]


def select_padded(sal: torch.Tensor, gather_rope, n_sal: torch.Tensor, n_cand: torch.Tensor, n_max: int,
                  c_max: int, *, k: int, noise: torch.Tensor, c_min: int = 0) -> torch.Tensor:
    """Diverse salient selection of R rows: sal (R, W) with -inf at invalid positions, ``n_sal`` /
    ``n_cand`` (R,) salient and candidate counts (widths ``n_max`` / ``c_max``), ``gather_rope(cand
    (R, C)) -> (R, C, Dr)``, ``noise`` (R, c_max) scaled density noise, ``c_min`` a host-known lower
    bound of the candidate counts. Returns (R, n_max): each row's selected positions ascending, then W."""
    R, W = sal.shape
    cand = torch.topk(sal, c_max, dim=1).indices                               # desc saliency
    c_ok = first_n(n_cand, c_max)
    scores, dist = dpc_knn_padded(gather_rope(cand), c_ok, k, variant="tango", noise=noise, n_valid=n_cand,
                                  min_valid=c_min)
    a_ok = first_n(n_sal, n_max)
    anchor = torch.sort(torch.topk(scores, n_max, dim=1).indices.masked_fill(~a_ok, c_max), dim=1).values
    assign = _nearest_anchor(dist, anchor, a_ok).masked_fill(~c_ok, n_max)
    rank = torch.arange(c_max, device=sal.device).expand(R, c_max).masked_fill(~c_ok, c_max)
    best = torch.full((R, n_max + 1), c_max, dtype=torch.long, device=sal.device)
    best = best.scatter_reduce(1, assign, rank, reduce="amin")[:, :n_max]       # most salient member
    chosen = torch.gather(cand, 1, best.clamp(max=c_max - 1)).masked_fill(~a_ok, W)
    return torch.sort(chosen, dim=1).values


def merge_padded(rope: torch.Tensor, feats: torch.Tensor, valid: torch.Tensor, n_valid: torch.Tensor,
                 budget: torch.Tensor, a_max: int, *, k: int, beta: float, noise: torch.Tensor,
                 released: bool, p_min: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tango's context merge of B padded pools at once: rope (B, P, Dr), feats (B, P, D) fp32,
    ``budget`` (B,) anchors per pool (width ``a_max``), ``p_min`` a host-known lower bound of the pool
    sizes ``n_valid``. DPC-KNN anchors; every pool token joins its
    nearest anchor; merged = w * anchor + (1 - w) * mean, w = max(1 / count, beta). Returns
    (slot of each merged row's output position (B, a_max), merged rows (B, a_max, D) fp32, valid
    (B, a_max)); ``released``: row i (anchors in position order) sits at the i-th highest-scoring
    anchor (behaviour B), else at its own anchor."""
    B, P, D = feats.shape
    scores, dist = dpc_knn_padded(rope, valid, k, variant="tango", noise=noise, n_valid=n_valid, min_valid=p_min)
    a_ok = first_n(budget, a_max)
    by_score = torch.topk(scores, a_max, dim=1).indices.masked_fill(~a_ok, P)
    anchor = torch.sort(by_score, dim=1).values
    assign = _nearest_anchor(dist, anchor, a_ok).masked_fill(~valid, a_max)
    flat = (assign + torch.arange(B, device=feats.device).unsqueeze(1) * (a_max + 1)).flatten()
    sums = feats.new_zeros(B * (a_max + 1), D).index_add_(0, flat, feats.reshape(B * P, D))
    counts = feats.new_zeros(B * (a_max + 1)).index_add_(0, flat, valid.flatten().to(feats.dtype))
    sums, counts = sums.view(B, a_max + 1, D)[:, :a_max], counts.view(B, a_max + 1)[:, :a_max]
    means = sums / counts.clamp(min=1).unsqueeze(-1)
    own = torch.gather(feats, 1, anchor.clamp(max=P - 1).unsqueeze(-1).expand(B, a_max, D))
    w = (1.0 / counts.clamp(min=1).unsqueeze(-1)).clamp(min=beta)   # every anchor counts itself: count >= 1
    merged = w * own + (1.0 - w) * means
    return (by_score if released else anchor), merged, a_ok


# --------------------------------------------------------------------------------------------
# The plan: every count the device needs, computed on the host from the segmentation
# --------------------------------------------------------------------------------------------

@dataclass
class _Part:
    kind: int
    seg: int
    frames: list
    L: int            # positions per row
    n_sal: int        # salient tokens per row
    n_cand: int       # candidates per row
    context: int      # context budget per row
    first_row: int = 0
    pool_noise: int = 0

    @property
    def pool(self) -> int:
        return len(self.frames) * (self.L - self.n_sal)

    @property
    def budget(self) -> int:
        return self.context * len(self.frames)

    @property
    def mode(self) -> str:
        """'none' (no context budget), 'keep' (the pool fits the budget), or 'merge'."""
        return "none" if self.budget <= 0 else ("keep" if self.pool <= self.budget else "merge")


@dataclass
class TangoPlan:
    """Host-side layout of one video's Tango reduction (see the module docstring)."""

    N: int
    segments: list
    parts: list = field(default_factory=list)
    rows: list = field(default_factory=list)        # (frame, kind, seg, n_sal, n_cand, noise offset)
    stream: int = 0                                 # density-noise draws of the whole reduction
    seg_retention: list = field(default_factory=list)
    blocked: bool = False                           # CPU cache blocking (tighter merge buckets)

    @classmethod
    def build(cls, segments, n_static, N: int, r: float, cfg, floor: bool, blocked: bool = False) -> "TangoPlan":
        plan = cls(N, list(segments), blocked=blocked)
        for si, (s, e) in enumerate(segments):
            nf = e - s + 1
            if nf == 1:
                plan._add(SINGLE, si, [s], N, max(math.ceil(N * r), 1), cfg, floor)
                plan.seg_retention.append(r)
                continue
            ns = n_static[si]
            r_seg = rescaled_retention(r, (nf - 1) * ns, nf * N)
            plan.seg_retention.append(r_seg)
            if ns:
                plan._add(STATIC, si, [s], ns, max(math.ceil(ns * r_seg), 1), cfg, floor)
            if N - ns:
                plan._add(DYNAMIC, si, list(range(s, e + 1)), N - ns, math.ceil((N - ns) * r_seg), cfg, floor)
        return plan

    def _add(self, kind, seg, frames, L, raw, cfg, floor) -> None:
        """One part in the order the per-part implementation ran (and drew its noise)."""
        salient, context = salient_split(min(raw, L), cfg.context_ratio, floor)
        n_sal = min(max(salient, 0), L)
        n_cand = min(int(math.floor(cfg.alpha * n_sal)), L) if n_sal else 0
        part = _Part(kind, seg, frames, L, n_sal, n_cand, context, first_row=len(self.rows))
        draws = n_cand if n_sal and n_cand != n_sal else 0
        for b, f in enumerate(frames):
            self.rows.append((f, kind, seg, n_sal, n_cand, self.stream + b * draws))
        self.stream += draws * len(frames)
        part.pool_noise = self.stream
        if part.mode == "merge":
            self.stream += part.pool
        self.parts.append(part)

    def buckets(self, blocked: bool = False) -> list[list[int]]:
        """Merge parts grouped by similar pool size: a bucket pads its sets' pairwise work (sum of
        P^2) by at most BUCKET_WASTE, or by at most BUCKET_SLACK pairs when the sets are small (their
        padding costs less than another batch of kernels). With CPU blocking, static parts and frame
        parts go to separate buckets (each reads one feature source instead of both)."""
        merge = [i for i, p in enumerate(self.parts) if p.mode == "merge"]
        kinds = [[i for i in merge if (self.parts[i].kind == STATIC) == st] for st in (True, False)] if blocked else [merge]
        out = []
        for ids in kinds:
            ids = sorted(ids, key=lambda i: -self.parts[i].pool)
            while ids:
                top = self.parts[ids[0]].pool ** 2
                take, work = 1, top
                while take < len(ids):
                    nxt = work + self.parts[ids[take]].pool ** 2
                    padded = (take + 1) * top
                    if padded > BUCKET_WASTE[blocked] * nxt and padded - nxt > BUCKET_SLACK[blocked]:
                        break
                    work, take = nxt, take + 1
                out.append(ids[:take])
                ids = ids[take:]
        return out

    def selection_groups(self, bytes_per_candidate: int) -> list[list[int]]:
        """Rows with salient tokens in batches of similar candidate counts (``padded.size_chunks``:
        padded by at most SELECT_WASTE, about CHUNK_BYTES of gathered candidates each): the CPU
        path's batches of :func:`select_padded`."""
        return size_chunks({i: r[4] for i, r in enumerate(self.rows) if r[3] > 0}, bytes_per_candidate,
                           CHUNK_BYTES, SELECT_WASTE)

    def groups(self) -> list[tuple[list[int], str]]:
        """(part ids, 'merge' or 'keep') of every batch of context pools, in execution order."""
        out = [(ids, "merge") for ids in self.buckets(self.blocked)]
        keep = [i for i, p in enumerate(self.parts) if p.mode == "keep"]
        return out + ([(keep, "keep")] if keep else [])

    def device_tables(self, sinks, device) -> dict[str, torch.Tensor]:
        """Every integer the device needs, in one non-blocking upload: per segment, per row (with the
        stream index of each candidate's density noise, -1 for none) and, for each of :meth:`groups`,
        per pool slot its row, its column among the row's free positions (-1: padding) and its
        noise index, and per pool its size and budget."""
        segs = self.segments
        c_max = max((r[4] for r in self.rows), default=0)
        rows = np.array(self.rows, dtype=np.int64).reshape(-1, 6)
        cand = np.arange(c_max)
        draws = (rows[:, 3:4] > 0) & (rows[:, 4:5] != rows[:, 3:4]) & (cand < rows[:, 4:5])
        arrays = {
            "seg_start": np.array([s for s, _ in segs]), "seg_end": np.array([e for _, e in segs]),
            "seg_nf": np.array([e - s + 1 for s, e in segs]),
            "frame_seg": np.array([si for si, (s, e) in enumerate(segs) for _ in range(s, e + 1)]),
            "row_frame": rows[:, 0], "row_kind": rows[:, 1], "row_seg": rows[:, 2], "row_nsal": rows[:, 3],
            "row_ncand": rows[:, 4], "row_noise": np.where(draws, rows[:, 5:6] + cand, -1),
            "static_rows": np.nonzero(rows[:, 1] == STATIC)[0],
            "sinks": np.array(list(sinks)),
        }
        for gi, (ids, mode) in enumerate(self.groups()):
            arrays.update({f"g{gi}_{k}": v for k, v in self._slots(ids, mode == "merge").items()})
        flat = np.concatenate([np.asarray(v, dtype=np.int64).reshape(-1) for v in arrays.values()])
        return split_plan(upload(torch.from_numpy(flat), device), {k: np.shape(v) for k, v in arrays.items()})

    def _slots(self, ids: list[int], merge: bool) -> dict[str, np.ndarray]:
        """Pool slot tables of the parts ``ids`` padded to the largest pool (see device_tables)."""
        parts = [self.parts[i] for i in ids]
        j = np.arange(max(p.pool for p in parts))
        first = np.array([p.first_row for p in parts])[:, None]
        free = np.array([max(p.L - p.n_sal, 1) for p in parts])[:, None]
        ok = j < np.array([p.pool for p in parts])[:, None]
        noise = np.array([p.pool_noise for p in parts])[:, None] + j
        return {"row": np.where(ok, first + j // free, first), "col": np.where(ok, j % free, -1),
                "noise": np.where(ok & merge, noise, -1), "pool": np.array([p.pool for p in parts]),
                "budget": np.array([p.budget for p in parts])}


# --------------------------------------------------------------------------------------------
# Device execution
# --------------------------------------------------------------------------------------------

@dataclass
class _Video:
    """The tensors every stage reads: flat features / RoPE rows, static-mean rows, row layout."""

    X2: torch.Tensor
    R2: object                # rope rows by flat index (a tensor or StRopeRows)
    SF: object                # (S * N, D) fp32 segment sums over frames, or None: summed when read (CPU)
    t: dict                   # the uploaded plan (TangoPlan.device_tables)
    row_src: torch.Tensor     # (R,) flat row of each row's frame start: frame * N
    N: int
    longest: int              # frames of the longest segment (the bound of the CPU sums)
    shortest: int             # frames of the shortest segment


def _row_layout(plan: TangoPlan, t: dict, pf_static, sal: torch.Tensor, N: int):
    """(valid (R, N), saliency (R, N) with -inf outside the row's positions). Static rows read the
    segment mean of the saliency, dynamic rows their frame's, at the segment's (non-)static positions."""
    kind = t["row_kind"].unsqueeze(1)
    if pf_static is None:
        valid = torch.ones((len(plan.rows), N), dtype=torch.bool, device=sal.device)
    else:
        static = pf_static[t["seg_end"]] == pf_static[t["seg_start"]]          # (S, N)
        ms = static[t["row_seg"]]
        valid = torch.where(kind == STATIC, ms, torch.where(kind == DYNAMIC, ~ms, torch.ones_like(ms)))
    rows = sal[t["row_frame"]]
    if any(p.kind == STATIC for p in plan.parts):
        seg_sal = sal.new_zeros(len(plan.segments), N).index_add_(0, t["frame_seg"], sal)
        seg_sal = seg_sal / t["seg_nf"].unsqueeze(1).to(sal.dtype)
        rows = torch.where(kind == STATIC, seg_sal[t["row_seg"]], rows)
    return valid, rows.masked_fill(~valid, float("-inf"))


def _selection(plan: TangoPlan, v: _Video, valid, row_sal, stream, cfg):
    """(selected positions (R, n_max), W = N for padding; free (R, N) positions left for merging;
    the batches of rows they were selected in, ``(row ids, index tensor)`` or None for all rows).
    One batch of every row, or on a CPU (``plan.blocked``) a few rows of similar candidate counts at
    a time (rows are independent)."""
    R, N = valid.shape
    t = v.t
    n_max = max((r[3] for r in plan.rows), default=0)
    if n_max == 0:
        return None, valid, []
    noise = padded_noise(stream, t["row_noise"])
    if not plan.blocked:
        sel, batches = _select_rows(plan, v, row_sal, noise, None, cfg), [None]
    else:
        sel = torch.full((R, n_max), N, dtype=torch.long, device=valid.device)
        batches = [(rows, torch.tensor(rows, device=valid.device))
                   for rows in plan.selection_groups(2 * v.X2.shape[1] * 4)]
        for rows, at in batches:
            part = _select_rows(plan, v, row_sal, noise, (rows, at), cfg)
            sel[at, :part.shape[1]] = part
    taken = torch.zeros((R, N + 1), dtype=torch.bool, device=valid.device).scatter_(1, sel, True)[:, :N]
    return sel, valid & ~taken, batches


def _selected_tokens(plan: TangoPlan, v: _Video, sel, batches, keys: list, feats: list) -> None:
    """Flat source keys and fp32 features of the selected tokens, batch by batch of ``_selection``
    (a CPU batch reads its rows' own width of ``sel``: no padded rows gathered); static rows read
    their segment means. Appends to ``keys`` / ``feats``."""
    t, N = v.t, v.N
    for batch in batches:
        if batch is None:   # every row: the static ones are the plan's static rows
            s, base, static, static_rows = sel, v.row_src.unsqueeze(1), t["static_rows"], t["static_rows"]
        else:
            rows, at = batch
            s, base = sel[at, :max(plan.rows[i][3] for i in rows)], v.row_src[at].unsqueeze(1)
            static = torch.tensor([j for j, i in enumerate(rows) if plan.rows[i][1] == STATIC],
                                  dtype=torch.long, device=s.device)
            static_rows = at[static]
        ok = s < N
        keys.append(torch.where(ok, base + s, v.X2.shape[0]).flatten())
        srow = torch.where(ok, s, 0)
        xf = rows_at(v.X2, base + srow).float()
        if len(static):   # the static rows read their segment means instead
            xf[static] = _static_means(v, t["row_seg"][static_rows].unsqueeze(1), srow[static])
        feats.append(xf.reshape(-1, xf.shape[-1]))


def _select_rows(plan: TangoPlan, v: _Video, row_sal, noise, rows, cfg) -> torch.Tensor:
    """:func:`select_padded` of the rows ``(ids, index tensor)`` (None: all), padded to their own
    largest salient and candidate counts."""
    ids, at = rows if rows is not None else (range(len(plan.rows)), None)
    pick = (lambda x: x) if at is None else (lambda x: x[at])
    counts = [plan.rows[i][3:5] for i in ids]
    n_max, c_max, c_min = max(n for n, _ in counts), max(c for _, c in counts), min(c for _, c in counts)
    src = pick(v.row_src).unsqueeze(1)
    return select_padded(pick(row_sal), lambda cand: v.R2[src + cand], pick(v.t["row_nsal"]),
                         pick(v.t["row_ncand"]), n_max, c_max, k=cfg.k,
                         noise=noise if at is None else noise[at, :c_max],
                         c_min=c_min)


def _pool_slots(t: dict, gi: int, free_pos, row_src):
    """Pool slots of group ``gi``: (valid, row, position, flat source row), each (B, width)."""
    col = t[f"g{gi}_col"]
    row = t[f"g{gi}_row"]
    pos = free_pos[row, col.clamp(min=0)]
    return col >= 0, row, pos, row_src[row] + pos


def _static_means(v: _Video, seg: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """fp32 frame means of the segment ``seg`` at positions ``pos`` (same shapes): a static token."""
    nf = v.t["seg_nf"][seg]
    rows = v.SF[seg * v.N + pos] if v.SF is not None else _summed_rows(v, v.t["seg_start"][seg] * v.N + pos, nf)
    return rows.div_(nf.unsqueeze(-1).to(rows.dtype))   # in place: no second copy


def _summed_rows(v: _Video, first: torch.Tensor, nf: torch.Tensor) -> torch.Tensor:
    """fp32 sums of the rows ``first + j * N`` over each one's frames j < nf, added in frame order
    (the GEMM's order; 1 * x is exact). The CPU path: only the rows read are summed, with no
    (S * N, D) table to write and page in. A row past its segment's end adds 0."""
    flat, n = first.reshape(-1), nf.expand_as(first).reshape(-1, 1)
    out = rows_at(v.X2, flat).float()
    frame = v.X2.new_empty(out.shape)        # each frame's rows, in one reused buffer
    for j in range(1, v.longest):
        torch.index_select(v.X2, 0, torch.where(n[:, 0] > j, flat + j * v.N, flat), out=frame)
        if j >= v.shortest:
            frame.masked_fill_(n <= j, 0.0)
        out.add_(frame)
    return out.view(*first.shape, out.shape[-1])


def _feature_rows(v: _Video, kinds: str, t: dict, row, pos, src) -> torch.Tensor:
    """fp32 features of (row, position) slots: frame tokens, static tokens (segment means), or
    ``mixed`` (both; chosen per row)."""
    if kinds == "static":
        return _static_means(v, t["row_seg"][row], pos)
    x = rows_at(v.X2, src).float()
    if kinds == "frames":
        return x
    sf = _static_means(v, t["row_seg"][row], pos)
    return torch.where((t["row_kind"][row] == STATIC).unsqueeze(-1), sf, x)


def _segment_sums(X: torch.Tensor, frame_seg: torch.Tensor, S: int) -> torch.Tensor:
    """(S * N, D) fp32 sums over each segment's frames (the static parts read them / frames): one
    pass of a (S, F) 0/1 GEMM (the batched path; on a CPU the rows read are summed instead,
    ``_summed_rows``)."""
    F, N, D = X.shape
    member = (frame_seg.unsqueeze(0) == torch.arange(S, device=X.device).unsqueeze(1)).to(torch.float32)
    return (member @ X.float().reshape(F, N * D)).view(S * N, D)


def run_plan(plan: TangoPlan, X: torch.Tensor, rope_rows, sal: torch.Tensor, pf_static,
             sinks, cfg, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Execute ``plan`` on the device: (kept flat source indices ascending, their features fp32).
    ``rope_rows[idx]`` gives the RoPE features of flat token indices f * N + n (an (F * N, Dr)
    tensor, or ``primitives.StRopeRows``)."""
    F, N, D = X.shape
    dev = X.device
    t = plan.device_tables(sinks, dev)
    sal = sal.float().clone()
    if sinks:
        sal.index_fill_(1, t["sinks"], 0.0)
    X2, R2 = X.reshape(F * N, D), rope_rows
    has_static = any(p.kind == STATIC for p in plan.parts)
    SF = _segment_sums(X, t["frame_seg"], len(plan.segments)) if has_static and not cpu_blocked(X) else None
    lengths = [e - s + 1 for s, e in plan.segments]
    v = _Video(X2, R2, SF, t, t["row_frame"] * N, N, max(lengths), min(lengths))
    stream = noise_stream(plan.stream, generator, dev, DENSITY_NOISE)
    valid, row_sal = _row_layout(plan, t, pf_static, sal, N)
    sel, free, batches = _selection(plan, v, valid, row_sal, stream, cfg)
    keys, feats = [], []
    _selected_tokens(plan, v, sel, batches, keys, feats)
    free_pos = ascending_true_positions(free, max((p.L - p.n_sal for p in plan.parts), default=0) or 1)
    _context(plan, v, free_pos, stream, cfg, keys, feats)
    keys, feats = torch.cat(keys), torch.cat(feats)
    total = sum(len(p.frames) * p.n_sal + (min(p.pool, p.budget) if p.mode != "none" else 0) for p in plan.parts)
    order = torch.argsort(keys)[:total]
    return keys[order], rows_at(feats, order)


def _context(plan: TangoPlan, v: _Video, free_pos, stream, cfg, keys: list, feats: list) -> None:
    """Context tokens of every part: pools that fit their budget kept as they are, the others
    merged bucket by bucket. Appends (flat source keys, fp32 features) to ``keys`` / ``feats``."""
    t = v.t
    F_N = v.X2.shape[0]
    released = cfg.fidelity == "released"
    for gi, (ids, mode) in enumerate(plan.groups()):
        static = {plan.parts[i].kind == STATIC for i in ids}
        kinds = "mixed" if len(static) == 2 else ("static" if True in static else "frames")
        width = max(plan.parts[i].pool for i in ids)
        valid, row, pos, src = _pool_slots(t, gi, free_pos, v.row_src)
        if mode == "keep":
            x = _feature_rows(v, kinds, t, row, pos, src)
            keys.append(torch.where(valid, src, F_N).flatten())
            feats.append(x.reshape(-1, x.shape[-1]))
            continue
        a_max = max(plan.parts[i].budget for i in ids)
        noise = padded_noise(stream, t[f"g{gi}_noise"])
        p_min = min(plan.parts[i].pool for i in ids)
        # on CPU a few pools at a time: no fresh page-faulted copy of every pool's rows
        for c in cpu_chunks(valid.shape[0], 2 * width * v.X2.shape[1] * 4, v.X2, CHUNK_BYTES):
            src_c = take(src, c)
            x = _feature_rows(v, kinds, t, take(row, c), take(pos, c), src_c)
            slot, merged, a_ok = merge_padded(v.R2[src_c], x, take(valid, c), take(t[f"g{gi}_pool"], c),
                                              take(t[f"g{gi}_budget"], c), a_max, k=cfg.k, beta=cfg.beta,
                                              noise=take(noise, c), released=released, p_min=p_min)
            out_src = torch.gather(src_c, 1, slot.clamp(max=width - 1))
            keys.append(torch.where(a_ok, out_src, F_N).flatten())
            feats.append(merged.reshape(-1, merged.shape[-1]))
