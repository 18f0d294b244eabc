"""STTS's tokens pruned, *measured*: the real selection and first-fit-decreasing packing run on real
scores, refill of single-frame bins counted (docs/sources.md#stts), instead of reading ``topk`` back.

Two measurements:

- ``full_size``: Molmo2-4B shapes (27x27 patches, 3x3 groups = 81 per frame, 128 frames, capacity
  729) on SynthVideoQA videos rendered at 378 px. Scores = the auxiliary loss's target, the temporal
  novelty 1 - cos(previous frame) of each group (what the scorer is trained towards), on the
  random-weight Molmo2 patch + position embedding (the ViT input; running so400m's first four
  blocks over 128 x 729 tokens is ~11 TMAC, too slow for this tier's CPU budget).
- ``trained_tiny`` (cpu tier): the trained scorer's own scores on the tiny SynthVideoQA model
  (2x2 groups of its 6x6 tower grid), through the adapter's real pruned forward.

Reported per video: LLM-side tokens pruned (kept pooled tokens / all), ViT-tail slots pruned
(bins x capacity vs frames x patches, what the later blocks compute), the same without refill
(``ceil``: the cost model's old nominal bound), bins, refilled patches, frames alone in a bin.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from methods.stts import groups_to_patch_mask, novelty_targets, pack_first_fit_decreasing, select_groups


def packing_stats(keep_groups: torch.Tensor, grid: tuple[int, int], group: int, fidelity: str = "released") -> dict:
    """Tokens pruned at the LLM and in the ViT tail for one video's (T, G) keep mask (``fidelity``:
    STTS's released packing, a lone empty frame in a bin of its own, or the project's earlier one)."""
    T, G = keep_groups.shape
    patch_keep = groups_to_patch_mask(keep_groups, grid, group)
    N = patch_keep.shape[1]
    counts = patch_keep.sum(1)
    packing = pack_first_fit_decreasing(counts, N, fidelity)
    alone = packing.alone
    refilled = int((N - counts)[alone].sum())
    kept_patches = int(counts.sum())
    ceil_bins = math.ceil(kept_patches / N)
    return {"frames": T, "groups_per_frame": G, "patches_per_frame": N,
            "llm_tokens_kept": int(keep_groups.sum()), "llm_tokens_total": T * G,
            "llm_tokens_pruned_pct": 100.0 * (1 - int(keep_groups.sum()) / (T * G)),
            "bins": packing.num_bins, "bins_without_fragmentation": ceil_bins,
            "vit_tail_slots_pruned_pct": 100.0 * (1 - packing.num_bins / T),
            "vit_tail_slots_pruned_pct_ceil": 100.0 * (1 - ceil_bins / T),
            "vit_tail_active_pruned_pct": 100.0 * (1 - (kept_patches + refilled) / (T * N)),
            "refilled_patches": refilled, "frames_alone_in_bin": int(alone.sum()),
            "kept_groups_per_frame": keep_groups.sum(1).tolist()}


def _synth_frames(frames: int, size: int, seed: int, families: Sequence[str]) -> list[torch.Tensor]:
    """SynthVideoQA videos (uint8 (F, H, W, 3)) rendered at ``frames`` x ``size`` px."""
    from replicate.synthvqa.data import SynthConfig, make_sample

    cfg = SynthConfig(frames=frames, size=size, small_object_px=40, event_object_px=48, light_px=44,
                      ball_px=40)
    return [make_sample(f, (7, seed, i), cfg).video for i, f in enumerate(families)]


def measure_full_size(frames: int = 128, topk: float = 0.5, seed: int = 0,
                      families: Sequence[str] = ("direction", "order", "count", "colour"),
                      arch: str = "molmo2-4b", fidelity: str = "released") -> dict:
    """The ``full_size`` measurement (see module doc), one record per video and their mean."""
    from methods.adapters.molmo2 import Molmo2VideoAdapter

    shapes = Molmo2VideoAdapter.from_config(arch, device="meta")        # dimensions only
    grid, g = shapes.tower_grid, shapes.pooling[0]
    vc = shapes.vision_config
    gen = torch.Generator().manual_seed(seed)
    patch = torch.nn.Linear(vc.patch_size ** 2 * 3, vc.hidden_size)
    with torch.no_grad():                 # HF init: normal(0.02) weights and position embedding
        patch.weight.normal_(0, 0.02, generator=gen)
        patch.bias.zero_()
        pos = torch.randn(grid[0] * grid[1], vc.hidden_size, generator=gen) * 0.02
    mean = torch.tensor(shapes.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(shapes.image_std).view(1, 3, 1, 1)
    videos = []
    for video in _synth_frames(frames, shapes.image_size, seed, families):
        pix = (video.float().div(255).permute(0, 3, 1, 2) - mean) / std
        with torch.no_grad():
            h = patch(shapes.patchify(pix).float()) + pos
            scores = novelty_targets(h.reshape(frames, grid[0], grid[1], -1), g)
        keep = select_groups(scores, topk, fidelity)
        videos.append(packing_stats(keep, grid, g, fidelity))
    return _summary(videos, {"arch": arch, "frames": frames, "topk": topk, "seed": seed,
                             "scores": "novelty target 1 - cos(previous frame) on the random-weight patch + "
                                       "position embedding (ViT input) of SynthVideoQA videos at 378 px",
                             "families": list(families), "fidelity": fidelity})


def measure_trained_tiny(model_dir, scorer: str, topk: float, n_videos: int = 16, seed: int = 0) -> dict:
    """The ``trained_tiny`` measurement: the trained scorer through the tiny model's pruned forward."""
    from methods.registry import get_method
    from replicate.synthvqa.model import preprocess_video
    from replicate.synthvqa.data import make_split
    from replicate.harness.accuracy import load_checkpoint
    from replicate.stts_train.loop import default_prune_at

    adapter, data_cfg = load_checkpoint(model_dir)
    prune_at = default_prune_at(len(adapter.model.model.vision_tower.encoder.layers))
    method = get_method("stts", topk=float(topk), prune_at=prune_at, scorer_checkpoint=str(scorer), seed=seed)
    videos = []
    for s in make_split("test", n_videos, seed, data_cfg):
        with torch.no_grad():
            tokens = method.encode_in_vit(adapter, preprocess_video(s.video, adapter.image_size))
        videos.append(packing_stats(tokens.keep.cpu(), adapter.tower_grid, method.config.group_for(adapter),
                                    method.config.fidelity))
        videos[-1]["bins_run"] = tokens.info["bins"]       # the bins the pruned forward really used
    return _summary(videos, {"model_dir": str(model_dir), "scorer": str(scorer), "topk": topk,
                             "frames": data_cfg.frames, "prune_at": prune_at,
                             "scores": "the trained scorer's (SynthVideoQA tiny model, 2x2 groups)"})


def _summary(videos: list[dict], setting: dict) -> dict:
    keys = ("llm_tokens_pruned_pct", "vit_tail_slots_pruned_pct", "vit_tail_slots_pruned_pct_ceil",
            "vit_tail_active_pruned_pct", "bins", "bins_without_fragmentation", "refilled_patches",
            "frames_alone_in_bin")
    mean = {k: sum(v[k] for v in videos) / len(videos) for k in keys}
    return {"setting": setting, "mean": mean, "videos": videos, "n_videos": len(videos)}
