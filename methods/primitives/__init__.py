"""Pure tensor primitives shared by the pruning methods (no model, no globals, deterministic)."""
from .rng import make_generator
from .similarity import cache_blocking, consecutive_cosine, cosine_matrix, matmul_nt, onednn_gemm
from .selection import topk_indices, expanded_candidates
from .dpc_knn import (
    VARIANTS as DPC_VARIANTS,
    pairwise_distances,
    dpc_knn_scores,
    dpc_knn_scores_batched,
    dpc_knn_scores_from_distances,
    dpc_knn_centers,
    dpc_knn_centers_batched,
)
from .segmentation import (
    Segmentation,
    static_counts,
    static_window_gain,
    temporal_segments,
    static_mask,
    paper_tau,
    rescaled_retention,
    dyseg_segments,
    failure_prefix,
    window_counts,
    window_gain,
    segments_from_gain,
)
from .merge import (
    assign_nearest,
    scatter_sum,
    scatter_mean,
    beta_blend,
    weighted_anchor_merge,
    running_pairwise_merge,
    mean_merge,
    blend_merge,
)
from .strope import DEFAULT_SECTIONS, StRopeRows, rope_sections, st_rope, st_rope_and_cosines, st_rope_rows_and_cosines
from .token_merging import (
    Matching,
    bipartite_soft_matching,
    merge_wavg,
    proportional_bias,
    r_schedule,
    retention_r_schedule,
    tokens_per_block,
)

__all__ = [
    "make_generator", "cache_blocking", "onednn_gemm", "matmul_nt", "consecutive_cosine", "cosine_matrix", "topk_indices", "expanded_candidates",
    "DPC_VARIANTS", "pairwise_distances", "dpc_knn_scores", "dpc_knn_scores_batched", "dpc_knn_scores_from_distances",
    "dpc_knn_centers", "dpc_knn_centers_batched", "Segmentation", "static_counts",
    "static_window_gain", "temporal_segments", "static_mask", "paper_tau", "rescaled_retention",
    "dyseg_segments", "failure_prefix", "window_counts", "window_gain", "segments_from_gain", "assign_nearest", "scatter_sum", "scatter_mean", "beta_blend",
    "weighted_anchor_merge", "running_pairwise_merge", "mean_merge", "blend_merge",
    "DEFAULT_SECTIONS", "rope_sections", "st_rope", "st_rope_and_cosines", "st_rope_rows_and_cosines", "StRopeRows", "Matching", "bipartite_soft_matching", "merge_wavg",
    "proportional_bias", "r_schedule", "retention_r_schedule", "tokens_per_block",
]
