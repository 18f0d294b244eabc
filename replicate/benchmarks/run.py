"""Run a predictor over benchmark samples, and write the result where the workflow expects it.

``evaluate_benchmark`` only computes; ``write_result`` is the one place that touches disk and does
so atomically (temporary file in the same folder, then ``os.replace``), so an interrupted or failed
run never leaves a half-written result that a later run would trust.
"""
from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from replicate.io import write_json

from .base import BENCHMARKS, MCQSample
from .scoring import Prediction, prediction_index, score

TIERS = ("analytic", "cpu", "gpu", "paper")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def evaluate_benchmark(
    predict_fn: Callable[[MCQSample], Prediction],
    samples: Sequence[MCQSample],
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Call ``predict_fn`` on every sample (an option index, the model's text, or None) and score.

    Returns ``{"benchmark", "metrics": score(...), "samples": [per-sample records]}``; each record
    has sample_id, prediction (as returned, text kept for auditing), pred_index, answer_index and
    correct. Exceptions from ``predict_fn`` propagate: a crashed model is not a wrong answer.
    """
    preds: list[Prediction] = []
    records = []
    bench = samples[0].benchmark if len(samples) else None
    for s in tqdm(samples, desc=f"eval {bench}", disable=not progress, leave=False):
        p = predict_fn(s)
        idx = prediction_index(p, s)
        if isinstance(p, numbers.Integral):
            p = int(p)  # numpy ints are not JSON-serialisable
        preds.append(p)
        records.append(
            {
                "sample_id": s.sample_id,
                "prediction": p,
                "pred_index": idx,
                "answer_index": s.answer_index,
                "correct": idx == s.answer_index,
            }
        )
    return {"benchmark": bench, "metrics": score(samples, preds), "samples": records}


def _check_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError(f"{kind} {value!r} is not a valid path component (letters, digits, . _ + - only)")
    return value


def retention_label(retention: float | None) -> str:
    """'r0.15' for 0.15, 'r1.0' for 1 (the unpruned model); None means 'full' (no method)."""
    if retention is None:
        return "full"
    if isinstance(retention, bool) or not isinstance(retention, (int, float)) or not math.isfinite(retention):
        raise ValueError(f"retention must be a number in (0, 1] or None, got {retention!r}")
    if not 0 < retention <= 1:
        raise ValueError(f"retention must be in (0, 1], got {retention!r}")
    return f"r{round(float(retention), 6)!r}"


def result_path(
    results_dir: Path | str,
    tier: str,
    model: str,
    method: str,
    retention: float | None,
    benchmark: str,
) -> Path:
    """``<results_dir>/eval/<tier>/<model>/<method>/<r0.15>/<benchmark>.json``, the same for the same args."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; allowed: {', '.join(TIERS)}")
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; allowed: {', '.join(BENCHMARKS)}")
    return (
        Path(results_dir) / "eval" / tier / _check_name("model", model) / _check_name("method", method)
        / retention_label(retention) / f"{benchmark}.json"
    )


def write_result(result: dict[str, Any], path: Path | str) -> Path:
    """Write ``result`` as JSON to ``path`` atomically; on any failure the old file (if any) stays."""
    return write_json(path, result)
