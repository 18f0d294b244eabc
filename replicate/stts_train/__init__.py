"""STTS training: the scorer (alone or end to end with the model) on the LM loss through the soft
attention bias plus 0.5 x the temporal auxiliary loss (papers.md §1.3). ``python -m replicate.stts_train``."""
from .loop import STTSTrainConfig, load_scorer, train  # noqa: F401
