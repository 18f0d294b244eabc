"""The smoke profile through a real Slurm: envs/slurm-local.sh starts a one-node cluster (root,
apt-get), the workflow runs with `--profile profiles/smoke --profile profiles/slurm`, every job goes
through sbatch, and the results equal a local smoke run's: every claim's verdict and measured value,
and the deterministic files byte for byte (DETERMINISTIC below; timings, timestamps, hosts and
provenance blocks differ between any two runs and are left out).

Deselected by default (marker `slurm`); run with `python -m pytest -m slurm tests/workflow/test_slurm.py`
(.ci/run does). Time: see .ci/run."""
from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
from slurm_profile import REPO, cluster_env, snakemake_with_env

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

SCRIPT = REPO / "envs" / "slurm-local.sh"
# the local cluster: one partition for everything, no accounts, no slurmdbd (so squeue, not sacct)
LOCAL_CLUSTER = {"VIDEOPRUNE_SLURM_PARTITION": "local", "VIDEOPRUNE_SLURM_ACCOUNT": "none",
                 "VIDEOPRUNE_SLURM_GPU_PARTITION": "local", "VIDEOPRUNE_SLURM_STATUS": "squeue"}
# Files that carry no timing, timestamp, host or run-specific provenance: equal bytes expected.
DETERMINISTIC = ("results/analytic/*.csv", "results/tables/*", "results/claims/README_table.md")
RUN_TIMEOUT = 2400  # s per smoke run; the 2-core CI machine needs ~6 min when idle


@pytest.fixture(scope="module")
def local_slurm():
    was_running = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 0
    start = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    assert start.returncode == 0, f"envs/slurm-local.sh start failed:\n{start.stdout}{start.stderr}"
    yield
    if not was_running:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=120)


def _run(label: str, *args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    began = time.monotonic()
    proc = snakemake_with_env(*args, env=env, timeout=RUN_TIMEOUT)
    seconds = time.monotonic() - began
    print(f"{label}: rc {proc.returncode}, {seconds:.0f} s")
    assert proc.returncode == 0, f"{label} failed:\n{(proc.stdout + proc.stderr)[-5000:]}"
    return proc, seconds


def _verdicts(workdir) -> dict[str, tuple]:
    rows = json.loads((workdir / "results" / "claims" / "all.json").read_text())
    return {r["id"]: (r["verdict"], r.get("measured")) for r in rows}


def _deterministic_files(workdir) -> dict[str, bytes]:
    files = {}
    for pattern in DETERMINISTIC:
        files |= {str(p.relative_to(workdir)): p.read_bytes() for p in sorted(workdir.glob(pattern)) if p.is_file()}
    return files


def test_smoke_profile_through_slurm_equals_the_local_run(local_slurm, tmp_path):
    smoke, slurm = str(REPO / "profiles" / "smoke"), str(REPO / "profiles" / "slurm")
    local, cluster = tmp_path / "local", tmp_path / "slurm"
    _run("local smoke", "--profile", smoke, "--cores", "2", "--directory", str(local), env=cluster_env())
    # --config gpu=False: the slurm profile turns the gpu tier on; the local smoke run has it off, and
    # the config (hash) must be the same for the results to be comparable
    proc, _ = _run("smoke through slurm", "--profile", smoke, "--profile", slurm, "--config", "gpu=False",
                   "--slurm-init-seconds-before-status-checks", "5", "--directory", str(cluster),
                   env=cluster_env(**LOCAL_CLUSTER))
    out = proc.stdout + proc.stderr
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", out)
    finished = re.search(r"(\d+) of (\d+) steps \(100%\) done", out)
    assert finished, out[-3000:]
    assert len(submitted) == int(finished.group(2)) > 10, f"{len(submitted)} sbatch submissions for {finished.group(0)}"

    assert _verdicts(cluster) == _verdicts(local)
    local_files, cluster_files = _deterministic_files(local), _deterministic_files(cluster)
    assert len(local_files) >= 5 and set(cluster_files) == set(local_files), sorted(local_files)
    differ = [name for name in local_files if cluster_files[name] != local_files[name]]
    assert not differ, f"deterministic files differ between the local and the slurm run: {differ}"
