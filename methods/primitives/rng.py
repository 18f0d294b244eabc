"""Deterministic random sources: every stochastic primitive takes an explicit generator."""
from __future__ import annotations

import torch


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed`` (same seed, same stream)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    device = torch.device(device)
    if device.type == "meta":  # no generator lives there; a CPU one draws for CPU-computed tensors
        device = torch.device("cpu")  # (replicate.harness.device_emulation computes "meta" on the CPU)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen
