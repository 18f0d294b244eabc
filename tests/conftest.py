"""Shared pytest configuration. Markers (slow, gpu, workflow) are declared in pyproject.toml;
the default run deselects `slow` and `gpu`."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Keep CPU tests deterministic and light on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
