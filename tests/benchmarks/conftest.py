"""Fixtures for the benchmark-loader tests: tiny fake datasets written into tmp_path."""
from __future__ import annotations

import warnings

import pytest

from replicate.benchmarks import IncompleteBenchmarkWarning, load_benchmark, make_fixture


@pytest.fixture
def fixture_root(tmp_path):
    """make(name, n=3) -> root of a freshly written fake copy of benchmark `name`."""

    def make(name: str, n: int = 3):
        return make_fixture(name, tmp_path / name, n=n)

    return make


@pytest.fixture
def load_quiet():
    return _load_quiet


def _load_quiet(name, root, **kw):
    """load_benchmark without the expected 'sub-tasks absent' warning of the 2-task fixtures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteBenchmarkWarning)
        return load_benchmark(name, root, **kw)
