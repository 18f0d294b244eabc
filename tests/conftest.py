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


def pytest_collection_modifyitems(config, items):
    """Tests marked ``molmo2`` are skipped, with the reason, where the installed transformers cannot
    build a Molmo2 (CI's floor environment runs the others at 5.17 and these at 5.24)."""
    from methods.versions import MOLMO2_TRANSFORMERS_FLOOR, molmo2_supported, transformers_version

    if molmo2_supported():
        return
    skip = pytest.mark.skip(reason=f"Molmo2 needs transformers >= {MOLMO2_TRANSFORMERS_FLOOR}, "
                                   f"found {transformers_version()}")
    for item in items:
        if item.get_closest_marker("molmo2") is not None:
            item.add_marker(skip)
