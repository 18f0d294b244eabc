"""Fixtures shared by the benchmark tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def onednn_calls(monkeypatch) -> list:
    """Counts the calls of oneDNN's inner product through ``methods.primitives.matmul_nt`` (one
    entry per call), so a test can tell whether a path really used it; skips where PyTorch has none."""
    from methods.primitives import similarity

    kernel = similarity._ONEDNN_LINEAR
    if kernel is None:
        pytest.skip("this PyTorch build has no oneDNN inner product")
    calls: list = []

    def counting(*args):
        calls.append(1)
        return kernel(*args)

    monkeypatch.setattr(similarity, "_ONEDNN_LINEAR", counting)
    return calls
