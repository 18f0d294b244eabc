"""What a claim evaluator takes and returns: ``evaluator(claim, ctx: Context) -> Measurement``.

An evaluator reads the result files a rule wrote (never recomputes silently) and returns the
measured value with its evidence; ``Context`` gives it the results directory and the config, and
caches the frames it reads. The evaluators are listed in ``replicate.evaluators``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional


@dataclass
class Measurement:
    measured: float
    evidence: dict[str, Any] = field(default_factory=dict)


class UndeclaredResult(RuntimeError):
    """An evaluator read a file that is not an input of the verify rule (a bug in the rules: a
    missing or stale file would then never be rebuilt before the verdict)."""


@dataclass
class Context:
    """What an evaluator may read: the results directory and the config; cached frames. Every file
    is read through ``replicate.io`` (its content digest checked) and, when ``declared`` is given
    (the verify rule's inputs), must be one of them."""
    results_root: Path
    config: Mapping[str, Any]
    cache: dict[str, Any] = field(default_factory=dict)
    declared: Optional[frozenset] = None

    def path(self, rel: str) -> Path:
        return self.results_root / rel

    def _checked(self, rel: str) -> Path:
        if self.declared is not None and str(rel) not in self.declared:
            raise UndeclaredResult(f"an evaluator read {rel!r}, which is not an input of the verify rule; add it to "
                                   f"the evaluator's inputs or TIER_RESULTS so a missing one is rebuilt first")
        return self.path(rel)

    def csv(self, rel: str):
        if rel not in self.cache:
            from replicate.io import read_csv

            self.cache[rel] = read_csv(self._checked(rel))
        return self.cache[rel]

    def json(self, rel: str):
        if rel not in self.cache:
            from replicate.io import read_json

            self.cache[rel] = read_json(self._checked(rel))
        return self.cache[rel]
