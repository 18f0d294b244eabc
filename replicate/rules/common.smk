# Shared constants and helpers of the rule files (included first by the Snakefile, so no rule file
# depends on the order the others are included in). Config values: replicate/config.yaml (what
# differs) over the schema's defaults (replicate.configuration.with_defaults), validated: every key
# is present, so no rule restates a default.
import re

CONDA_ENV = str(REPO / "envs" / "environment.yaml")
# Every figure a job writes is labelled with the run's scale unless it is a full run (jobs inherit
# the environment; a job run elsewhere re-parses this file)
from replicate.scale import export_scale

export_scale(config)

# cpu tier (cpu.smk trains and grids; holitom.smk reuses the model and the grid's cells)
CPU = config["cpu"]
EFF = config["efficiency"]
CPU_MODEL = "results/cpu/model"
_MODEL_FILES = (("metrics", "metrics.json"), ("config", "config.json"), ("weights", "model.safetensors"),
                ("synth", "synthvqa.json"))
CPU_MODEL_FILES = {k: f"{CPU_MODEL}/{f}" for k, f in _MODEL_FILES}
# the LLaVA-Video-layout model of the cpu tier (cpu.video)
CPU_VIDEO_MODEL = "results/cpu/video/model"
CPU_VIDEO_MODEL_FILES = {k: f"{CPU_VIDEO_MODEL}/{f}" for k, f in _MODEL_FILES}


wildcard_constraints:
    cpu_method="[a-z0-9-]+",
    cpu_rtag="full|r[0-9]+\\.[0-9]+",


def runnable_tiers():
    return {t for t, s in TIERS.summary(config).items() if s["runnable"]}


def runnable_targets(per_tier):
    """The files of ``per_tier`` (tier -> paths) whose tier can run on this machine."""
    return sorted({p for t in runnable_tiers() for p in per_tier[t]})


def claim_inputs(wildcards):
    """Result files of the tiers that can run on this machine (others would never be built here)."""
    runnable = runnable_tiers()
    return sorted(set(runnable_targets(TIER_RESULTS)) | set(EVALUATORS.inputs_for_tiers(runnable)))


def single_claim_inputs(wildcards):
    """What one claim needs: the (cheap) analytic results, which also carry the predictions shown
    as evidence on gpu claims, plus its own evaluator's inputs if its tier can run here. Verifying
    one analytic claim must not train the tiny model or run the cpu grid."""
    claim = CLAIMS_BY_ID[wildcards.claim_id]
    needed = set(TIER_RESULTS["analytic"])
    evaluator = EVALUATORS.get(claim.get("evaluator"))
    if evaluator is not None and claim["tier"] in runnable_tiers():
        needed |= set(evaluator.inputs)
    return sorted(needed)


def claim_id_pattern():
    return "|".join(re.escape(i) for i in CLAIM_IDS)


def report_assets(wildcards):
    """The figures and tables of one report category that this machine's default run builds
    (REPORT_STATIC: replicate/rules/claims.smk)."""
    from replicate.browsable import assets_for

    files = [f for f in {*REPORT_STATIC, *runnable_targets(TIER_TARGETS)} if not f.startswith("results/report/")]
    found = assets_for(wildcards.category, files)
    return found["figures"] + found["tables"]


def results_page_figures(wildcards):
    """Every PNG figure this machine's default run builds (rule results_page embeds them)."""
    files = {*REPORT_STATIC, *runnable_targets(TIER_TARGETS)}
    return sorted(f for f in files if f.endswith(".png") and not f.startswith("results/report/"))
