"""Helpers for the slurm-profile tests: the profile's settings (environment variables), its list of
gpu rules, and every rule's declared resources as Snakemake parses them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yte

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
REQUIRED = ("VIDEOPRUNE_SLURM_PARTITION", "VIDEOPRUNE_SLURM_ACCOUNT", "VIDEOPRUNE_SLURM_GPU_PARTITION")
OPTIONAL = ("VIDEOPRUNE_SLURM_GPU_GRES", "VIDEOPRUNE_SLURM_STATUS")

# Runs in a subprocess (Snakefile parsing mutates sys.path and globals): rule -> declared resources,
# for rules that run a job (target-only rules such as `all` have no job to submit).
_DUMP_RESOURCES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import OutputSettings, ResourceSettings
def shown(resource):
    try:
        return repr(resource.value)
    except ValueError:  # a function of the job (e.g. tmpdir): declared, value known per job only
        return "<per job>"
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(resource_settings=ResourceSettings(), snakefile=Path(sys.argv[1]), workdir=Path(sys.argv[2]))
    rules = {r.name: {k: shown(v) for k, v in r.resources.items() if not k.startswith("_")}
             for r in wf._workflow.rules if not getattr(r, "norun", False)}
print("RESOURCES=" + json.dumps(rules))
"""


def cluster_env(**settings: str) -> dict[str, str]:
    """The current environment without any VIDEOPRUNE_SLURM_* variable, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED + OPTIONAL}
    return {**env, **settings}


def load_profile(settings: dict[str, str]) -> dict:
    """profiles/slurm/config.yaml rendered (yte) under `settings` as the environment."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(cluster_env(**settings))
        with open(PROFILE) as fh:
            return yte.process_yaml(fh, require_use_yte=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def rule_resources(workdir: Path) -> dict[str, dict[str, str]]:
    proc = subprocess.run([sys.executable, "-c", _DUMP_RESOURCES, str(REPO / "Snakefile"), str(workdir)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESOURCES=")), None)
    assert proc.returncode == 0 and line, (proc.stdout + proc.stderr)[-3000:]
    return json.loads(line.removeprefix("RESOURCES="))


def snakemake_with_env(*args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    """Like workflow_cli.snakemake, with the environment given (the profile reads its settings there)."""
    env = {**env, "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
