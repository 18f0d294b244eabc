"""Set-up shared by the two training loops (``replicate.synthvqa.train``: the tiny SynthVideoQA
model; ``replicate.stts_train``: the STTS scorer): the thread count for a run, the learning-rate
schedule and atomic ``torch.save``."""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import torch

from replicate.io import atomic_path


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads, restoring the caller's count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def warmup_cosine_lr(step: int, steps: int, lr: float, warmup: int, min_ratio: float,
                     progress: Optional[float] = None) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``lr`` to ``min_ratio * lr``.

    ``progress`` None: the decay runs over steps ``warmup..steps``; a fraction of the run in [0, 1]
    (e.g. the share of a time budget used) places the decay by that instead."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if progress is None:
        t = (step - warmup) / max(1, steps - warmup)
    else:
        w = warmup / steps
        t = min(1.0, max(0.0, (progress - w) / max(1e-9, 1 - w)))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` to a temporary sibling renamed onto ``path``: never a half-written checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
