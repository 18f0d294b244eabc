"""Run this repository's Snakefile in a subprocess (the most isolated way, see environment.md):
the virtualenv's bin first on PATH so the notebook directive finds its kernel, one torch thread."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def snakemake(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    # The timeout guards against a hang, not speed: a smoke run takes ~3 min alone and 7-10 min
    # on a loaded 2-core box.
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
