"""STTS training: the scorer (alone or end to end with the model) on the LM loss through the soft
attention bias plus 0.5 x the temporal auxiliary loss (docs/sources.md#stts-training).
``python -m replicate.stts_train``. Names are imported lazily: the workflow reads
``replicate.stts_train.compare``'s variants while it parses its rules, without torch."""
from __future__ import annotations

_LAZY = {"STTSTrainConfig": "loop", "load_scorer": "loop", "train": "loop"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
