# Shared helpers for the rule files (functions only; included first by the Snakefile).
import re

CONDA_ENV = str(REPO / "envs" / "environment.yaml")


def claim_inputs(wildcards):
    """Result files of the tiers that can run on this machine (others would never be built here)."""
    EVALUATORS.load_plugins(EVALUATOR_PLUGINS)
    runnable = {t for t, s in TIERS.summary(config).items() if s["runnable"]}
    return sorted({p for t in runnable for p in TIER_RESULTS[t]}
                  | set(EVALUATORS.inputs_for_tiers(runnable)))


def claim_id_pattern():
    return "|".join(re.escape(i) for i in CLAIM_IDS)
