"""Inner-LLM pruning runtime shared by every method (FastV, PDrop, HoliTom Stage III, Tango intra-LLM).

- :class:`InnerPlan` / :class:`InnerStage`: typed plan (layer K, keep fraction, scoring, merge, mode).
- :func:`llm_prefill` / :func:`llm_decode_step`: our own decoder-layer loop over an HF Qwen2-style
  model instance with a :class:`RaggedKVCache` (full length below K, pruned length from K);
  :func:`decode_layers` / :func:`decode_position_ids`: the one decode step (positions, cache keyword,
  layer loop) that single and batched decoding (``methods.generation``) share.
- :func:`merge_dropped`: vectorised mean / blend / running-pairwise merge of dropped tokens.
"""
from .merge import assign_to_kept, merge_dropped
from .plan import (MERGES, MODES, POSITION_RULES, RANK_LAYERS, ROUNDINGS, SCORINGS, SPANS, InnerPlan, InnerStage,
                   inner_keep_count)
from .llm import (NEWLINE, TEXT, VISUAL, LayerCounts, PrefillResult, RaggedKVCache, cache_keyword, decode_layers,
                  decode_position_ids, llm_decode_step, llm_prefill, score_visual)

__all__ = [
    "InnerPlan", "InnerStage", "inner_keep_count", "SCORINGS", "MERGES", "MODES", "SPANS", "ROUNDINGS",
    "RANK_LAYERS", "POSITION_RULES",
    "RaggedKVCache", "PrefillResult", "LayerCounts", "cache_keyword", "llm_prefill", "llm_decode_step", "score_visual",
    "decode_layers", "decode_position_ids",
    "merge_dropped", "assign_to_kept", "TEXT", "VISUAL", "NEWLINE",
]
