"""DyCoke's TTM beside the official ``dycole_ttm`` (KD-TAO/DyCoke ``llava/model/llava_arch.py`` at
35cc532, the file's last change; a pure-torch top-level function run from a local mirror of the
repository, skipped without one), and the few-frame robustness of DyCoke and PruneVid, whose
official code fails at <= 4 and < 7 frames (issue 24)."""
from __future__ import annotations

import pytest
import torch

from methods import get_method
from methods.baselines.dycoke import ttm_keep_mask, ttm_references, ttm_similarity
from methods.types import VideoTokens
from official_code import official_function

DYCOKE = ("KD-TAO/DyCoke", "35cc532c16f74a04b3f653c3bf50f59d8e505154", "llava/model/llava_arch.py", "dycole_ttm")


def _rows_of(frame: torch.Tensor, chunk: torch.Tensor) -> set[int]:
    """Positions of ``frame`` (N, D) whose rows appear in ``chunk`` (random rows: exact matches)."""
    return set(torch.nonzero((torch.cdist(chunk, frame) == 0).any(0)).flatten().tolist())


def test_kept_sets_equal_the_official_ttm():
    """8 frames of 16 tokens, dycoke_k = 0.7: the official keeps int(0.3 * 16) = 4 tokens of frames
    1, 2, 3, 5, 7 (frame 2 against frame 0, frame 3 against frame 2, each pair with its own
    similarities) and frames 0, 4 and -- its stride-2 quirk -- 6 whole."""
    ttm = official_function(*DYCOKE)
    F, N, D = 8, 16, 8
    x = torch.randn(F, N, D, generator=torch.Generator().manual_seed(0))
    out = ttm(x.reshape(F * N, D), num_tokens_per_frame=N, merging_ratio=0.7)
    sizes = [16, 4, 4, 4, 16, 4, 16, 4]
    assert out.shape[0] == sum(sizes)
    chunks = torch.split(out, sizes)
    budgets = torch.tensor(sizes)           # ours, with the official's per-frame budgets
    keep = ttm_keep_mask(ttm_similarity(x, ttm_references(F)), budgets)
    for f in range(F):
        assert _rows_of(x[f], chunks[f]) == set(torch.nonzero(keep[f]).flatten().tolist()), f


def test_the_official_ttm_fails_at_four_frames_ours_runs():
    ttm = official_function(*DYCOKE)
    x = torch.randn(4 * 16, 8, generator=torch.Generator().manual_seed(1))
    with pytest.raises(RuntimeError, match="non-empty"):   # torch.stack of no similarities
        ttm(x, num_tokens_per_frame=16, merging_ratio=0.7)


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 5, 6])
def test_dycoke_and_prunevid_run_at_few_frames(frames):
    g = torch.Generator().manual_seed(frames)
    vt = VideoTokens(torch.randn(frames, 16, 8, generator=g), (4, 4))
    d = get_method("dycoke", retention=1.0).reduce(vt)
    assert d.num_tokens == frames * 16                     # retention 1: every token kept
    p = get_method("prunevid", retention=0.5).reduce(vt)
    assert 0 < p.num_tokens <= round(0.5 * frames * 16 + 0.5)
