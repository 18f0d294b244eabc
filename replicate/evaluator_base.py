"""What a claim evaluator takes and returns: ``evaluator(claim, ctx: Context) -> Measurement``.

An evaluator reads the result files a rule wrote (never recomputes silently) and returns the
measured value with its evidence; ``Context`` gives it the results directory and the config, and
caches the frames it reads. The evaluators are listed in ``replicate.evaluators``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


@dataclass
class Measurement:
    measured: float
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What an evaluator may read: the results directory and the config; cached frames."""
    results_root: Path
    config: Mapping[str, Any]
    cache: dict[str, Any] = field(default_factory=dict)

    def path(self, rel: str) -> Path:
        return self.results_root / rel

    def csv(self, rel: str):
        if rel not in self.cache:
            import pandas as pd

            self.cache[rel] = pd.read_csv(self.path(rel))
        return self.cache[rel]

    def json(self, rel: str):
        if rel not in self.cache:
            import json

            self.cache[rel] = json.loads(self.path(rel).read_text())
        return self.cache[rel]
