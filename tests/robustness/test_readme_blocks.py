"""Every ```python / ```bash block of README.md runs here, or is skipped for a stated reason.

A block that needs what CPU CI does not have (a GPU, local checkpoints, an install, a full workflow
run) is matched by a marker below; every other block runs (python blocks in one fresh interpreter
each, bash blocks line by line with ``bash -e``) and must exit 0. A new README block with none of
the markers is therefore run, so an example cannot rot silently.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: substring of a block -> why it does not run in the test suite
NOT_RUN_HERE = {
    "envs/install.sh": "creates a virtual environment and installs packages",
    "--device cuda": "needs a CUDA device",
    "replicate/gpu/device_run.sh": "the device script: runs on a lent GPU machine (its CPU dry run is tests/harness/test_device_run.py)",
    "/data/": "needs a local checkpoint / video at /data",
    "snakemake --cores all": "a whole workflow run (tests/workflow covers the smoke profile)",
    "snakemake --cores 1 results/claims/": "a workflow run (tests/workflow covers claim targets)",
}


def readme_blocks() -> list[tuple[str, str, int]]:
    text = (REPO / "README.md").read_text()
    out = []
    for m in re.finditer(r"^```(python|bash)\n(.*?)^```", text, flags=re.S | re.M):
        out.append((m.group(1), m.group(2), text[:m.start()].count("\n") + 1))
    return out


BLOCKS = readme_blocks()


def test_readme_has_blocks_and_some_run():
    runnable = [b for b in BLOCKS if not any(k in b[1] for k in NOT_RUN_HERE)]
    assert len(BLOCKS) >= 5 and len(runnable) >= 3


@pytest.mark.parametrize("lang,code,line", BLOCKS, ids=[f"{b[0]}-line{b[2]}" for b in BLOCKS])
def test_readme_block_runs(lang, code, line):
    reasons = [why for key, why in NOT_RUN_HERE.items() if key in code]
    if reasons:
        pytest.skip(f"README.md line {line}: {reasons[0]}")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    if lang == "python":
        cmd = [sys.executable, "-c", code]
    else:  # `python -m x` in the README means this interpreter
        script = "set -e\n" + re.sub(r"(?m)^python ", f"{sys.executable} ", code)
        cmd = ["bash", "-c", script]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"README.md line {line} ({lang}) failed:\n{proc.stderr[-3000:]}"
