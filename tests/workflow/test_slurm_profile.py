"""profiles/slurm without a cluster: the settings it needs are named when missing, every rule that
runs a job declares its resources, every gpu rule is routed to the GPU partition, and a dry run
through the slurm executor gives every job the partition (the smoke + slurm layering included)."""
from __future__ import annotations

import re

import pytest
from slurm_profile import REPO, REQUIRED, cluster_env, load_profile, rule_resources, snakemake_with_env

pytestmark = pytest.mark.workflow

SETTINGS = {"VIDEOPRUNE_SLURM_PARTITION": "cpu-part", "VIDEOPRUNE_SLURM_ACCOUNT": "proj42",
            "VIDEOPRUNE_SLURM_GPU_PARTITION": "gpu-part"}


@pytest.mark.parametrize("missing", REQUIRED)
def test_a_missing_cluster_setting_is_named(missing):
    settings = {k: v for k, v in SETTINGS.items() if k != missing}
    with pytest.raises(Exception, match=f"environment variable {missing} is not set"):
        load_profile(settings)


def test_missing_settings_stop_snakemake_naming_the_variable(tmp_path):
    proc = snakemake_with_env("-n", "--profile", str(REPO / "profiles" / "slurm"), "--directory", str(tmp_path),
                     env=cluster_env())
    assert proc.returncode != 0
    assert "environment variable VIDEOPRUNE_SLURM_PARTITION is not set" in proc.stdout + proc.stderr


def test_account_none_drops_the_account_and_gres_replaces_gpus():
    profile = load_profile({**SETTINGS, "VIDEOPRUNE_SLURM_ACCOUNT": "none",
                            "VIDEOPRUNE_SLURM_GPU_GRES": "gpu:a100:1", "VIDEOPRUNE_SLURM_STATUS": "squeue"})
    assert profile["slurm-no-account"] is True and "slurm_account" not in profile["default-resources"]
    assert profile["slurm-status-command"] == "squeue"
    gpu = profile["set-resources"]["gpu_efficiency"]
    assert gpu == {"slurm_partition": "gpu-part", "gres": "gpu:a100:1", "gpu": 0}
    plain = load_profile(SETTINGS)
    assert plain["default-resources"]["slurm_account"] == "proj42" and "slurm-no-account" not in plain
    assert "slurm-status-command" not in plain and "gres" not in plain["set-resources"]["gpu_efficiency"]
    # paper_shard's GPU count varies per cell (the 72B asks for several): the GRES's type, the rule's count
    assert profile["set-resources"]["paper_shard"] == {"slurm_partition": "gpu-part", "gpu_model": "a100"}
    assert plain["set-resources"]["paper_shard"] == {"slurm_partition": "gpu-part"}
    bare = load_profile({**SETTINGS, "VIDEOPRUNE_SLURM_GPU_GRES": "gpu:1"})
    assert bare["set-resources"]["paper_shard"] == {"slurm_partition": "gpu-part"}  # --gpus=<n> from the rule


def test_every_rule_declares_resources_and_gpu_rules_go_to_the_gpu_partition(tmp_path):
    resources = rule_resources(tmp_path)
    undeclared = sorted(r for r, res in resources.items() if not {"mem_mb", "runtime"} <= set(res))
    assert not undeclared, f"rules without mem_mb/runtime (sbatch --mem/-t): {undeclared}"
    gpu_rules = sorted(r for r, res in resources.items() if res.get("gpu") not in (None, "None", "0"))
    assert gpu_rules, "no rule declares gpu=1; the GPU routing would be untested"
    routed = load_profile(SETTINGS)["set-resources"]
    unrouted = [r for r in gpu_rules if routed.get(r, {}).get("slurm_partition") != "gpu-part"]
    assert not unrouted, f"gpu rules missing from GPU_RULES in profiles/slurm/config.yaml: {unrouted}"


def _job_resources(dry_run_output: str) -> dict[str, list[str]]:
    """rule -> the `resources:` lines of its jobs in a dry run."""
    jobs: dict[str, list[str]] = {}
    rule = None
    for line in dry_run_output.splitlines():
        if m := re.match(r"^(?:local)?rule (\S+):$", line):
            rule = m.group(1)
        elif rule and line.strip().startswith("resources:"):
            jobs.setdefault(rule, []).append(line)
    return jobs


def test_dry_run_through_the_slurm_executor_routes_every_job(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason='needs pip install -e ".[slurm]"')
    gpu_target = "results/gpu/efficiency/summary.json"  # named: no CUDA here, so `all` would skip it
    proc = snakemake_with_env("-n", "--profile", str(REPO / "profiles" / "smoke"), "--profile", str(REPO / "profiles" / "slurm"),
                     "--directory", str(tmp_path), "all", gpu_target,
                     env=cluster_env(**SETTINGS, VIDEOPRUNE_SLURM_GPU_GRES="gpu:1"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    jobs = _job_resources(out)
    assert "cpu_train" in jobs and "gpu_efficiency" in jobs, sorted(jobs)
    for rule, lines in jobs.items():
        partition = "gpu-part" if rule == "gpu_efficiency" else "cpu-part"
        for line in lines:
            assert f"slurm_partition={partition}" in line and "slurm_account=proj42" in line, (rule, line)
    assert "gres=gpu:1" in jobs["gpu_efficiency"][0] and "runtime=120" in jobs["cpu_train"][0]
