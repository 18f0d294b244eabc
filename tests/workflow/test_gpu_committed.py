"""The workflow takes the gpu tier's results from a committed GPU run where no CUDA device is present
(a TEST FIXTURE written into a temporary folder: tests/replicate/test_committed_measurements.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from workflow_cli import REPO, snakemake

pytestmark = pytest.mark.workflow
sys.path.insert(0, str(REPO / "tests" / "replicate"))


def test_a_gpu_claim_is_planned_from_the_committed_run(tmp_path):
    from test_committed_measurements import write_fixture

    target = "results/claims/holitom-ttft-ov7b-r10.json"
    proc = snakemake("-n", "--cores", "1", "--directory", str(tmp_path / "wf"), target)
    assert proc.returncode == 0 and "gpu_from_measured" not in proc.stdout   # nothing committed: not run
    write_fixture(tmp_path / "measured" / "fixture-gpu")
    proc = snakemake("-n", "--cores", "1", "--directory", str(tmp_path / "wf"), target,
                     "--config", f'paths={{"gpu_measurements": "{tmp_path / "measured"}"}}')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rule gpu_from_measured:" in proc.stdout and "rule gpu_efficiency:" not in proc.stdout
    assert str(Path(tmp_path / "measured" / "fixture-gpu" / "measurements.jsonl")) in proc.stdout
