"""Batched building blocks for reductions over sets of different sizes: padding and masks instead of
Python loops, so a whole video's sets are a handful of kernels and index arithmetic stays on the
device.

A batch of sets is a zero-padded tensor (B, M, ...) with a bool ``valid`` (B, M); set b holds its
points in its first ``valid[b].sum()`` slots unless said otherwise. The padded DPC-KNN gives, for
every valid point, the score the unpadded ``dpc_knn`` primitives give for its set, up to the
rounding of the Gram matrix (BLAS may order a dot product's sum differently for another matrix
shape; at the papers' widths the entries came out bitwise equal); the tie-breaking noise is passed
in, so the caller decides which draws of the generator each set gets.

``upload`` moves host-built integer metadata to the device without a host sync (pinned memory,
``non_blocking``); the reductions send their whole per-video plan in one such copy.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch

from .dpc_knn import _check_variant, _nearest_denser, pairwise_distances
from .similarity import cpu_blocked

__all__ = ["upload", "dpc_knn_padded", "padded_noise", "first_n", "ascending_true_positions", "split_plan",
           "density_centres_padded", "group_sums", "noise_stream", "set_chunks", "size_chunks", "cpu_chunks", "take",
           "rows_at", "CPU_CHUNK_BYTES"]

#: On CPU (``similarity.cpu_blocked``) a batch of padded sets is processed a few sets at a time so
#: that each chunk's feature tensors stay about this size: cache- and allocator-friendly, where
#: a whole video's (sets, width, D) tensors are fresh ~50-100 MB blocks that the allocator maps and
#: page-faults anew on every call.
CPU_CHUNK_BYTES = 4 << 20


def upload(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``host`` (a CPU tensor) on ``device``. On CUDA through pinned memory with ``non_blocking``: the
    copy is queued on the stream and the host does not wait (the caching host allocator keeps the
    pinned block until the copy is done). On CPU the tensor itself."""
    device = torch.device(device)
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device, non_blocking=True)


def split_plan(flat: torch.Tensor, sizes: dict[str, Union[int, tuple[int, ...]]]) -> dict[str, torch.Tensor]:
    """Views of one uploaded int64 plan: ``sizes`` maps a name to its length or shape, in order."""
    shapes = {name: (shape,) if isinstance(shape, int) else tuple(shape) for name, shape in sizes.items()}
    lengths = [math.prod(shape) for shape in shapes.values()]
    if sum(lengths) != flat.numel():
        raise ValueError(f"plan has {flat.numel()} entries, the layout {sum(lengths)}")
    parts = torch.split(flat, lengths)
    return {name: (p if len(shape) == 1 else p.view(shape)) for (name, shape), p in zip(shapes.items(), parts)}


def set_chunks(n_sets: int, bytes_per_set: int, budget: Optional[int] = None) -> list[slice]:
    """Consecutive slices covering ``n_sets`` sets, each of at most ``budget`` bytes (default
    ``CPU_CHUNK_BYTES``; at least one set per slice)."""
    step = max(1, (CPU_CHUNK_BYTES if budget is None else budget) // max(1, bytes_per_set))
    return [slice(lo, min(lo + step, n_sets)) for lo in range(0, n_sets, step)]


def size_chunks(sizes: dict[int, int], bytes_per_unit: int, budget: Optional[int] = None,
                waste: float = math.inf) -> list[list[int]]:
    """The ids of ``sizes`` (id -> size) in chunks for a CPU pass over padded sets: largest first
    (ties in the dict's order), each chunk padded to its first set's size. A set joins the chunk
    while the padded chunk takes at most ``budget`` bytes (default ``CPU_CHUNK_BYTES``; at least one
    set per chunk) and pads the chunk's sizes by at most ``waste`` (sets x first size <= waste x
    their sum)."""
    limit = CPU_CHUNK_BYTES if budget is None else budget
    chunks, width, total = [], 0, 0
    for i in sorted(sizes, key=lambda i: -sizes[i]):
        n = len(chunks[-1]) + 1 if chunks else 0
        if chunks and n * width * bytes_per_unit <= limit and n * width <= waste * (total + sizes[i]):
            chunks[-1].append(i)
            total += sizes[i]
        else:
            chunks.append([i])
            width = total = sizes[i]
    return chunks


def cpu_chunks(n_sets: int, bytes_per_set: int, like: torch.Tensor,
               budget: Optional[int] = None) -> list[Optional[slice]]:
    """The slices of a batch of padded sets to process together: :func:`set_chunks` on CPU with
    blocking on (``similarity.cpu_blocked(like)``), elsewhere ``[None]`` (all at once, one batch)."""
    return set_chunks(n_sets, bytes_per_set, budget) if cpu_blocked(like) else [None]


def take(t: torch.Tensor, rows: Optional[slice]) -> torch.Tensor:
    """``t[rows]``, or ``t`` itself for ``rows=None`` (a :func:`cpu_chunks` entry: no slicing op)."""
    return t if rows is None else t[rows]


def rows_at(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``table[idx]`` of a 2-D table for integer indices of any shape. On a CPU (``cpu_blocked``) as
    one ``index_select``, a copy row by row: about 3x faster there than advanced indexing, the same
    values; elsewhere the single indexing kernel (no reshapes to launch)."""
    if not cpu_blocked(table):
        return table[idx]
    return torch.index_select(table, 0, idx.reshape(-1)).view(*idx.shape, table.shape[-1])


def first_n(n: torch.Tensor, width: int) -> torch.Tensor:
    """(B, width) bool: True in the first ``n[b]`` slots of row b."""
    return torch.arange(width, device=n.device) < n.unsqueeze(-1)


def ascending_true_positions(mask: torch.Tensor, width: int) -> torch.Tensor:
    """(B, width): the positions of the True entries of ``mask`` (B, N) in ascending order, then the
    False ones (a stable sort of ``~mask``; no data-dependent size)."""
    return torch.sort((~mask).to(torch.uint8), dim=-1, stable=True).indices[..., :width]


def _knn_density(dist: torch.Tensor, valid: Optional[torch.Tensor], width: int, kk: Optional[torch.Tensor],
                 take_self: bool, root: bool) -> torch.Tensor:
    """exp(-mean of the squared distances to each point's nearest valid neighbours), as the unpadded
    primitive computes it: ``width`` (host) neighbours, or ``kk[b]`` <= width of them in set b
    (None: every set has ``width``). ``take_self``: the point itself is one of them (HoliTom);
    ``root``: ``dist`` holds squared distances whose roots are squared again (Tango). ``valid``
    None: no padding."""
    B, M, _ = dist.shape
    if width <= 0:
        return torch.ones((B, M), dtype=torch.float32, device=dist.device)
    far = dist if valid is None else dist.masked_fill(~valid.unsqueeze(-2), float("inf"))
    near = torch.topk(far, width + (0 if take_self else 1), dim=-1, largest=False).values
    if not take_self:
        near = near[..., 1:]
    if root:
        near = near.sqrt()
    sq = near * near
    if kk is None:
        return torch.exp(-sq.mean(-1))
    used = torch.arange(width, device=dist.device) < kk.view(B, 1, 1)
    mean = sq.masked_fill(~used, 0.0).sum(-1) / kk.clamp(min=1).to(sq.dtype).view(B, 1)
    return torch.where((kk > 0).view(B, 1), torch.exp(-mean), torch.ones_like(mean))


def dpc_knn_padded(x: torch.Tensor, valid: torch.Tensor, k: int, *, variant: str, noise: torch.Tensor,
                   n_valid: Optional[torch.Tensor] = None, min_valid: int = 0,
                   k_per_set: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """DPC-KNN scores of B padded sets at once: x (B, M, D), valid (B, M) -> (scores (B, M) fp32,
    -inf at padding; the variant's distance matrix (B, M, M): ``"tango"`` squared Euclidean,
    ``"holitom"`` Euclidean / sqrt(D)).

    ``k`` neighbours (``k_per_set`` (B,) <= k: per-set counts, HoliTom's clip to the centre count),
    capped by each set's size as in ``dpc_knn_scores_batched``; ``n_valid`` (B,) the valid counts
    (computed if None); ``min_valid`` a host-known lower bound of them (when every set has enough
    points the per-set bookkeeping is skipped). ``noise`` (B, M): the density tie-breaking term,
    already scaled (the unpadded primitive's ``rand * 1e-6`` for that set). No host sync."""
    _check_variant(variant)
    B, M, D = x.shape
    own = 0 if variant == "holitom" else 1          # neighbours exclude the point itself in tango
    width = min(k, M - own)
    kk = None
    if k_per_set is not None or min_valid - own < k:
        if n_valid is None:
            n_valid = valid.sum(-1)
        kk = (n_valid - own).clamp(min=0)
        kk = torch.clamp(kk, max=k) if k_per_set is None else torch.minimum(kk, k_per_set)
    padded = min_valid < M          # some set has padding (host-known); without it no masks are needed
    if variant == "holitom":
        dist = pairwise_distances(x) / math.sqrt(D)
        density = _knn_density(dist, valid if padded else None, width, kk, take_self=True, root=False)
    else:
        dist = pairwise_distances(x, squared=True)
        density = _knn_density(dist, valid if padded else None, width, kk, take_self=False, root=True)
    density = density + noise
    if padded:
        density = density.masked_fill(~valid, float("-inf"))
        dmax = dist.masked_fill(~(valid.unsqueeze(-1) & valid.unsqueeze(-2)), 0.0).amax(dim=(-2, -1), keepdim=True)
    else:
        dmax = dist.amax(dim=(-2, -1), keepdim=True)
    delta = _nearest_denser(dist, density, dmax)
    if variant != "holitom":
        delta = delta.sqrt()
    scores = density * delta
    return (scores.masked_fill(~valid, float("-inf")) if padded else scores), dist


def noise_stream(n: int, generator: torch.Generator, device, scale: float = 1e-6) -> torch.Tensor:
    """``n`` scaled uniform draws (``rand * scale``, as the unpadded DPC-KNN adds them) followed by one
    0: index -1 of the result reads 0, so padded slots need no mask. Draws nothing when n is 0."""
    out = torch.zeros(n + 1, dtype=torch.float32, device=device)
    if n:
        torch.rand(n, generator=generator, device=device, out=out[:n]).mul_(scale)
    return out


def padded_noise(stream: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Entries of a :func:`noise_stream` at ``index`` (any shape); index -1 reads its trailing 0."""
    return stream[index]


def density_centres_padded(feats: torch.Tensor, valid: torch.Tensor, n_valid: torch.Tensor,
                           n_centres: torch.Tensor, c_max: int, k: int, *, noise: torch.Tensor,
                           clip_k: bool, min_valid: int = 0, min_centres: int = 0
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPC-KNN centres (HoliTom variant) of B padded sets and every point's nearest centre.

    feats (B, M, D) fp32, ``n_centres`` (B,) (width ``c_max``); ``clip_k``: k = min(k, centres) per
    set as HoliTom calls it; ``min_valid`` / ``min_centres`` host-known lower bounds (skip the
    per-set bookkeeping when no set needs it). Returns (centres (B, c_max) ascending, M at padding;
    valid centre slots (B, c_max); each point's nearest centre slot (B, M), ties to the lowest;
    whether each point is a centre (B, M))."""
    B, M, _ = feats.shape
    k_set = None
    if clip_k and min_centres < k:
        k_set = torch.clamp(n_centres, max=k)
    scores, dist = dpc_knn_padded(feats, valid, k, variant="holitom", noise=noise, n_valid=n_valid,
                                  min_valid=min_valid, k_per_set=k_set)
    c_ok = first_n(n_centres, c_max)
    centres = torch.sort(torch.topk(scores, c_max, dim=-1).indices.masked_fill(~c_ok, M), dim=-1).values
    is_centre = torch.zeros((B, M + 1), dtype=torch.bool, device=feats.device).scatter_(1, centres, True)[:, :M]
    cols = torch.gather(dist, 2, centres.clamp(max=M - 1).unsqueeze(1).expand(B, M, c_max))
    nearest = cols.masked_fill(~c_ok.unsqueeze(1), float("inf")).argmin(-1)
    return centres, c_ok, nearest, is_centre


def group_sums(values: torch.Tensor, group: torch.Tensor, use: torch.Tensor, groups: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-set group sums and counts: values (B, M, D), group (B, M) in [0, groups), ``use`` (B, M)
    the points that count -> ((B, groups, D), (B, groups) long). Points are added in slot order (the
    order ``index_add_`` of the unpadded members would add them)."""
    B, M, D = values.shape
    flat = (torch.where(use, group, groups) + torch.arange(B, device=values.device).unsqueeze(1) * (groups + 1)).flatten()
    sums = values.new_zeros(B * (groups + 1), D).index_add_(0, flat, values.reshape(B * M, D))
    counts = torch.zeros(B * (groups + 1), dtype=torch.long, device=values.device).index_add_(
        0, flat, use.flatten().long())
    return sums.view(B, groups + 1, D)[:, :groups], counts.view(B, groups + 1)[:, :groups]
