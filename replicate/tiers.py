"""Which tiers can run here, and the exact reason when one cannot.

- analytic: always (cost model only).
- cpu: the tiny-model pipeline on SynthVideoQA; runs on any machine when enabled. Claims of this tier
  whose evaluator is not registered yet are "not-run" with that reason (see verify.py).
- gpu: needs ``config['gpu']`` and a CUDA device (``torch.cuda.is_available()``, asked only once
  ``gpu`` is on where the workflow parses its rules: ``summary``).
- paper: needs, per claim, a local checkpoint (``paths.checkpoints.<model or setting.checkpoint>``)
  and every benchmark of the claim (``paths.datasets.<benchmark>``) present on disk.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

TIERS = ("analytic", "cpu", "gpu", "paper")
NO_CUDA = "no CUDA device on this machine (torch.cuda.is_available() is False)"
GPU_OFF = "gpu tier disabled by config (gpu: false); run with --profile profiles/gpu"


@dataclass(frozen=True)
class TierStatus:
    tier: str
    runnable: bool
    reason: str | None = None


@lru_cache(maxsize=1)
def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def tier_status(tier: str, config: Mapping[str, Any], claim: Mapping[str, Any] | None = None, *,
                cuda: bool | None = None) -> TierStatus:
    """Whether `tier` can run under `config` (for `claim` where the needs are per claim)."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; allowed: {TIERS}")
    if not config.get("tiers", {}).get(tier, True):
        return TierStatus(tier, False, f"{tier} tier disabled in the config (tiers.{tier}: false)")
    if tier in ("analytic", "cpu"):
        return TierStatus(tier, True)
    if tier == "gpu":
        has_cuda = cuda_available() if cuda is None else cuda
        if not has_cuda:
            suffix = "" if config.get("gpu") else "; config gpu: false"
            return TierStatus(tier, False, NO_CUDA + suffix)
        if not config.get("gpu"):
            return TierStatus(tier, False, GPU_OFF)
        return TierStatus(tier, True)
    return _paper_status(config, claim)


def _paper_status(config: Mapping[str, Any], claim: Mapping[str, Any] | None) -> TierStatus:
    if claim is None:
        return TierStatus("paper", True)
    setting = claim.get("setting", {})
    paths = config.get("paths", {})
    missing: list[str] = []
    ckpt = setting.get("checkpoint") or setting.get("model")
    needs = [("checkpoints", ckpt, "checkpoint")] + [("datasets", b, "dataset") for b in setting.get("benchmarks", [])]
    if setting.get("baseline_checkpoint"):
        needs.insert(1, ("checkpoints", setting["baseline_checkpoint"], "baseline checkpoint"))
    for section, name, what in needs:
        value = paths.get(section, {}).get(name, "")
        key = f"paths.{section}.{name}"
        if not value:
            missing.append(f"no {what} for {name}: config key {key} is empty")
        elif not Path(value).exists():
            missing.append(f"{what} path {value} (config key {key}) does not exist")
        elif section == "checkpoints" and not (Path(value) / "config.json").is_file():
            missing.append(f"checkpoint path {value} (config key {key}) has no config.json (not an HF checkpoint dir)")
    if missing:
        return TierStatus("paper", False, "; ".join(missing))
    return TierStatus("paper", True)


def summary(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Machine-level status of every tier (paper: whether any path is configured). The workflow reads
    it while it parses its rules: with ``gpu: false`` it does not probe CUDA (that imports torch);
    a claim's own status (``tier_status``, in the verify job) still names what is missing."""
    out = {}
    for tier in TIERS:
        gpu_off = tier == "gpu" and not config.get("gpu") and config.get("tiers", {}).get("gpu", True)
        st = TierStatus(tier, False, GPU_OFF) if gpu_off else tier_status(tier, config)
        out[tier] = {"runnable": st.runnable, "reason": st.reason}
    return out
