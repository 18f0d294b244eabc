"""The smoke profile through a real Slurm: envs/slurm-local.sh starts a one-node cluster (root,
apt-get), the workflow runs with `--profile profiles/smoke --profile profiles/slurm`, every job goes
through sbatch, and the results equal a local smoke run's: every claim's result (verdict, measured
value, reason, evidence; not the provenance timestamp) and the DETERMINISTIC files byte for byte.
Claims measured from wall-clock timings differ between any two runs: they are only checked to have
run in both.

Deselected by default (marker `slurm`); run with `python -m pytest -m slurm tests/workflow/test_slurm.py`
(.ci/run does). Time: see .ci/run."""
from __future__ import annotations

import importlib.util
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
# Files that carry no timing, timestamp, host or provenance block: equal bytes expected. They
# include the tiny model's trained weights and its accuracy grid (seeded, one torch thread).
# Left out: claims/*.json and analytic/flops.json (provenance timestamps), README_table.md and
# REPORT.md (they print the cpu timing claim's measured value), figures (PDF dates), timings.
DETERMINISTIC = ("results/analytic/*.csv", "results/analytic/exact_vs_paper.md", "results/tables/*",
                 "results/cpu/accuracy.csv", "results/cpu/model/model.safetensors",
                 "results/holitom/analytic/sweeps.csv", "results/holitom/cpu/sweeps.csv",
                 "results/holitom/cpu/frames_sweep.json")
# Claims measured from wall-clock timings: two runs on one machine differ, so only "it ran" is compared.
TIMED_RESULTS = ("results/cpu/efficiency", "results/gpu/", "results/bench/")
RUN_TIMEOUT = 2400  # s per smoke run; the 2-core CI machine needs ~6 min when idle


@pytest.fixture(scope="module")
def local_slurm():
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail('the slurm executor plugin is not installed: pip install -e ".[slurm]"')
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


def _claims(workdir) -> tuple[dict[str, dict], dict[str, str]]:
    """(untimed claim id -> its result without the provenance timestamp/commit, timed id -> verdict)."""
    rows = json.loads((workdir / "results" / "claims" / "all.json").read_text())
    untimed, timed = {}, {}
    for r in rows:
        if str(r.get("evidence", {}).get("result_file", "")).startswith(TIMED_RESULTS):
            timed[r["id"]] = r["verdict"]
        else:
            untimed[r["id"]] = {**{k: v for k, v in r.items() if k != "provenance"},
                                "config_hash": r["provenance"]["config_hash"]}
    return untimed, timed


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
    jobs = re.findall(r"^rule (\S+):$", out, flags=re.M)  # every job but local target rules (`all`)
    assert "100%) done" in out, out[-3000:]
    assert len(submitted) == len(jobs) > 10, f"{len(submitted)} sbatch submissions for {len(jobs)} jobs"

    local_claims, local_timed = _claims(local)
    cluster_claims, cluster_timed = _claims(cluster)
    assert len(local_claims) > 100 and local_timed, "expected both untimed and timed claims in the smoke run"
    differ = sorted(c for c in local_claims if cluster_claims.get(c) != local_claims[c])
    assert not differ and set(cluster_claims) == set(local_claims), f"claims that differ: {differ}"
    assert set(cluster_timed) == set(local_timed)
    assert all(v in ("confirmed", "refuted") for v in [*local_timed.values(), *cluster_timed.values()]), \
        (local_timed, cluster_timed)
    local_files, cluster_files = _deterministic_files(local), _deterministic_files(cluster)
    assert len(local_files) >= 5 and set(cluster_files) == set(local_files), sorted(local_files)
    differ = [name for name in local_files if cluster_files[name] != local_files[name]]
    assert not differ, f"deterministic files differ between the local and the slurm run: {differ}"
