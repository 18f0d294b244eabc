"""Accuracy of predictions on MCQ samples, overall and per category."""
from __future__ import annotations

import numbers
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from .base import MCQSample
from .prompts import parse_letter
from .registry import get_benchmark

Prediction = int | str | None


def prediction_index(pred: Prediction, sample: MCQSample) -> int | None:
    """An int is an option index (out of range -> None); text is parsed with ``parse_letter``."""
    if pred is None:
        return None
    if isinstance(pred, bool):
        raise TypeError(f"{sample.sample_id}: prediction {pred!r} is a bool, expected an index or text")
    if isinstance(pred, numbers.Integral):  # also numpy integers
        pred = int(pred)
        return pred if 0 <= pred < len(sample.options) else None
    if isinstance(pred, str):
        return parse_letter(pred, len(sample.options))
    raise TypeError(f"{sample.sample_id}: prediction {pred!r} must be an int index, text or None")


def _acc(correct: int, n: int) -> float | None:
    return 100.0 * correct / n if n else None


def score(
    samples: Sequence[MCQSample],
    predictions: Sequence[Prediction] | Mapping[str, Prediction],
) -> dict[str, Any]:
    """Accuracy in percent (as the papers' tables report it).

    ``predictions`` align with ``samples`` (a sequence) or map ``sample_id`` to a prediction. A
    prediction that names no valid option counts as wrong (lmms-eval's VideoMME/MLVU scorers do the
    same; its LongVideoBench scorer draws a random letter instead, which we avoid to stay
    deterministic) and is counted in ``n_unparsed``.

    Returns ``accuracy``, ``headline_accuracy`` (the number each benchmark reports: the mean over
    tasks for MVBench and MLVU, ``accuracy`` otherwise), ``per_category`` ({meta key: {value:
    {"accuracy", "n"}}}), ``n``, ``n_correct``, ``n_unparsed`` and ``n_skipped`` (samples the
    loader left out, from ``samples.skipped`` when present).
    """
    if isinstance(predictions, Mapping):
        missing = [s.sample_id for s in samples if s.sample_id not in predictions]
        if missing:
            raise KeyError(f"no prediction for {len(missing)} sample(s), e.g. {missing[:3]}")
        preds = [predictions[s.sample_id] for s in samples]
    else:
        if len(predictions) != len(samples):
            raise ValueError(f"{len(predictions)} predictions for {len(samples)} samples")
        preds = list(predictions)
    names = sorted({s.benchmark for s in samples})
    if len(names) > 1:
        raise ValueError(f"score one benchmark at a time; got samples of {names}")
    bench = get_benchmark(names[0]) if names else None

    n_correct = n_unparsed = 0
    cat: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    keys = bench.category_keys if bench else ()
    for s, p in zip(samples, preds):
        idx = prediction_index(p, s)
        n_unparsed += idx is None
        hit = int(idx == s.answer_index)
        n_correct += hit
        for k in keys:
            if k in s.meta:
                c = cat[k][str(s.meta[k])]
                c[0] += hit
                c[1] += 1
    per_category = {
        k: {v: {"accuracy": _acc(c, n), "n": n} for v, (c, n) in sorted(vals.items())} for k, vals in cat.items()
    }
    accuracy = _acc(n_correct, len(samples))
    headline = accuracy
    if bench is not None and bench.headline == "macro" and keys and keys[0] in per_category:
        groups = per_category[keys[0]].values()
        headline = sum(g["accuracy"] for g in groups) / len(groups)
    return {
        "benchmark": names[0] if names else None,
        "accuracy": accuracy,
        "headline_accuracy": headline,
        "per_category": per_category,
        "n": len(samples),
        "n_correct": n_correct,
        "n_unparsed": n_unparsed,
        "n_skipped": len(getattr(samples, "skipped", ())),
    }
